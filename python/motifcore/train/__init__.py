"""Training: the Trainer loop, History and callbacks, schedules, named recipes, checkpoints."""

from ..defaults import DEFAULT_RECIPE, RECIPES, recipe
from .callbacks import Callback, Checkpoint, EarlyStopping, JSONLLogger, RestoreBest
from .checkpoint import CheckpointData, load_checkpoint, load_model, read_metadata, save_checkpoint
from .distillation import KD
from .history import History
from .schedules import EvolutionSchedule, LRSchedule, evolution_schedule, lr_schedule
from .trainer import Trainer, TrainingDivergedError

__all__ = ["DEFAULT_RECIPE", "RECIPES", "Callback", "Checkpoint", "CheckpointData", "EarlyStopping",
           "EvolutionSchedule", "History", "KD", "JSONLLogger", "LRSchedule", "RestoreBest", "Trainer",
           "TrainingDivergedError", "evolution_schedule", "load_checkpoint", "load_model", "lr_schedule",
           "read_metadata", "recipe", "save_checkpoint"]
