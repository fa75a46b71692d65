"""`motifcore train`."""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import math
import sys
from pathlib import Path
from typing import Any

from .._internal import motif_spec
from .._internal.io import FolderLock, FolderLockedError, atomic_write_json, slug
from .._version import __version__
from ..defaults import (
    BATCH_SIZE,
    BIAS_MODES,
    BLOCK_GRAD,
    BLOCK_GRADS,
    DEFAULT_RECIPE,
    DENSITY,
    DISTRIBUTIONS,
    EPOCHS,
    EVOLUTIONS,
    EVOLVE_LAYER_SETS,
    LR_SCHEDULES,
    MIN_STEPS,
    OPTIMIZERS,
    OUTPUT_MOTIFS,
    RECIPES,
    REGROW_MODES,
)
from ..experiments.config import RunConfig
from ..experiments.run import Run, execute
from ..nn import build_info
from ..report.curves import plot_runs
from ..train.callbacks import Checkpoint, JSONLLogger
from ..train.checkpoint import read_metadata, stored_before_set_annealed
from ..train.curriculum import parse_motif_schedule
from ._common import (
    EXIT_INTERRUPTED,
    MAX_CLI_SEED,
    RUN_FILES,
    UsageError,
    check_output_folder,
    float_in,
    fmt,
    int_min,
    parse_hidden,
    warmup_arg,
)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    t = sub.add_parser("train", help="train a model on a dataset",
                       description="Train a Motif-SET MLP with a named recipe (default 'motifcore'; 'paper' is the "
                                   "Motif-SET paper's) and write config.json, metrics.jsonl, checkpoint.npz and "
                                   "summary.json into --out. Flags given explicitly override the recipe.")
    t.add_argument("--dataset", help="fashion-mnist, mnist, digits, cifar10, skf:<NAME>, npz:<path>, csv:<path>")
    t.add_argument("--data-dir", help="folder searched first for the dataset files")
    t.add_argument("--hidden", nargs="+", metavar="W",
                   help="hidden widths, '3000 3000 3000' or '3000,3000,3000' (default: 3000 3000 3000)")
    t.add_argument("--motif", nargs="+", metavar="M",
                   help="motif size of the hidden layers (output layer m=1), or one per layer, e.g. "
                        "'2,2,1,1' (default: 1)")
    t.add_argument("--output-motif", choices=OUTPUT_MOTIFS,
                   help="output layer of a single --motif m: one (m = 1) or divisible (m x m blocks when m divides "
                        "the number of classes, else 1: the paper's Table 4 network) (default: one)")
    t.add_argument("--bias", choices=BIAS_MODES,
                   help="one bias per output neuron, or one per output motif (the paper's wording) "
                        "(default: neuron)")
    t.add_argument("--motif-schedule", metavar="F:M,...",
                   help="motif-size curriculum: FRACTION:MOTIF stages, e.g. '0:1,0.5:2,0.8:4' (m = 1 for the first "
                        "half of the run, 2 from 50%%, 4 from 80%%); the first stage starts at 0 and each motif is a "
                        "multiple of the one before; the model is regrouped at each switch (docs/curriculum.md)")
    t.add_argument("--motif-keep-norm", action="store_true", default=None,
                   help="with --motif-schedule: rescale each regrouped layer's weights to the Frobenius norm it "
                        "had before the switch")
    t.add_argument("--density", type=float_in(0, 1, lo_open=True),
                   help=f"block density, spread over the layers by --distribution (default: {DENSITY})")
    t.add_argument("--epsilon", type=float_in(0, math.inf, lo_open=True),
                   help="SET epsilon density parameterisation (overrides --density)")
    t.add_argument("--epochs", type=int_min(1),
                   help=f"training epochs (default: {EPOCHS}, or more on small data so that the run "
                        f"takes at least {MIN_STEPS} steps; the paper uses 300)")
    t.add_argument("--recipe", choices=tuple(RECIPES),
                   help=f"named settings for every training flag not given, and the network layout "
                        f"(default: {DEFAULT_RECIPE}; see motifcore.defaults)")
    t.add_argument("--batch-size", type=int_min(1), help=f"batch size (default: {BATCH_SIZE})")
    t.add_argument("--optimizer", choices=OPTIMIZERS, help="optimizer (recipe default)")
    t.add_argument("--lr", type=float_in(0, math.inf, lo_open=True),
                   help="peak learning rate (default: the recipe's; motifcore: 3e-3, scaled down for hidden layers "
                        "with more than 100 incoming edges per neuron)")
    t.add_argument("--momentum", type=float_in(0, 1, hi_open=True), help="SGD momentum (default: 0.9)")
    t.add_argument("--weight-decay", type=float_in(0, math.inf),
                   help="weight decay (default: the recipe's: motifcore 0.1 decoupled (AdamW), raised as the "
                        "learning rate is scaled down for wide hidden layers (0.3 at 1e-3), paper 5e-4 L2; with "
                        "--optimizer other than the recipe's: 5e-4 L2 for sgd/adam, 0.1 for adamw)")
    t.add_argument("--max-grad-norm", type=float_in(0, math.inf),
                   help="clip each step's gradient to this global L2 norm, 0 = off (recipe default)")
    t.add_argument("--lr-schedule", choices=LR_SCHEDULES,
                   help="learning-rate schedule: cosine (warmup and decay counted in optimizer steps), "
                        "cosine-epoch (the same counted in epochs, one lr per epoch), constant or step "
                        "(default: cosine)")
    t.add_argument("--warmup", type=warmup_arg,
                   help="lr warmup of 'cosine' and 'cosine-epoch': epochs (an integer) or a fraction of the run "
                        "such as 0.05 (recipe default)")
    t.add_argument("--block-grad", choices=BLOCK_GRADS,
                   help="gradient of a block weight: sum (the exact gradient, the sum over the block's edges) or "
                        "paper (that sum times 1/m, the paper's equation; not the same as lr/m under momentum and "
                        "weight decay) (default: sum)")
    t.add_argument("--step-size", type=int_min(1),
                   help="'step' schedule: epochs between lr decays (default: 30)")
    t.add_argument("--gamma", type=float_in(0, 1, lo_open=True),
                   help="'step' schedule: lr decay factor (default: 0.1)")
    t.add_argument("--evolution", choices=tuple(EVOLUTIONS),
                   help="how the block pattern changes: " + "; ".join(
                       f"{name} ({e.summary})" for name, e in EVOLUTIONS.items()).replace("%", "%%")
                   + " (default: the recipe's)")
    t.add_argument("--distribution", choices=DISTRIBUTIONS,
                   help="how --density is spread over the layers: output-dense (hidden layers at --density, the "
                        "output layer dense, so every hidden neuron has a path to the loss), uniform (every layer "
                        "at --density, the paper's network) or erk (Erdos-Renyi-Kernel: denser small layers, same "
                        "total) (default: the recipe's: output-dense, uniform for --recipe paper)")
    t.add_argument("--regrow", choices=REGROW_MODES,
                   help="value of regrown blocks: a fresh He-uniform draw, zero, uniform within the "
                        "largest pruned |weight|, or normal (N(0, sigma^2), sigma the std of the He "
                        "initialisation: the paper's Algorithm 3) (default: the evolution's own, else he)")
    t.add_argument("--evolve-layers", choices=EVOLVE_LAYER_SETS,
                   help="weight layers that evolution changes: all, hidden (all but the output layer) or input "
                        "(the first layer only) (default: the evolution's own, else all)")
    t.add_argument("--dropout", type=float_in(0, 1, hi_open=True),
                   help="dropout rate (recipe default)")
    t.add_argument("--label-smoothing", type=float_in(0, 1, hi_open=True), metavar="E",
                   help="train against (1 - E) onehot(y) + E / n_classes (recipe default: motifcore 0.2, paper 0)")
    t.add_argument("--input-clip", type=float_in(0, math.inf, hi_open=True), metavar="C",
                   help="clip the standardised inputs to [-C, C]; 0: not clipped (recipe default: motifcore 3, "
                        "paper 0)")
    t.add_argument("--eval-every", type=int_min(1),
                   help="evaluate on the test split every N epochs (default: 1)")
    t.add_argument("--seed", type=int_min(0, MAX_CLI_SEED), help="seed of init, shuffling, evolution (default: 0)")
    t.add_argument("--data-seed", type=int_min(0, MAX_CLI_SEED),
                   help="seed of the 2:1 train/test split of datasets without an official one and of the --limit-train "
                        "subset (default: --seed, so the split is that of motifcore.datasets.load(name, seed=S))")
    t.add_argument("--threads", type=int_min(1), help="engine threads (default: all)")
    t.add_argument("--limit-train", type=int_min(1), metavar="N",
                   help="train on a seeded random subset of N samples (quick runs)")
    t.add_argument("--checkpoint-every", type=int_min(1), metavar="N",
                   help="write checkpoint.npz every N epochs (default: 1)")
    t.add_argument("--out", help="output folder (default: runs/<dataset>-m<motif>-<timestamp>)")
    t.add_argument("--resume", metavar="PATH",
                   help="continue the run saved in this checkpoint.npz (its settings are reused)")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (without it, train refuses an --out that holds one)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=run)
    return t


DEFAULT_HIDDEN = [3000, 3000, 3000]
#: flags that define the run; --resume reuses the stored ones and refuses these
_TRAIN_RUN_FLAGS = ("dataset", "hidden", "motif", "motif_schedule", "motif_keep_norm", "output_motif", "bias",
                    "density", "epsilon", "epochs", "recipe", "batch_size", "lr", "lr_schedule", "warmup", "block_grad",
                    "step_size", "gamma", "optimizer",
                    "momentum", "weight_decay", "max_grad_norm", "evolution", "distribution", "regrow",
                    "evolve_layers", "dropout", "label_smoothing", "eval_every", "seed", "data_seed", "limit_train",
                    "checkpoint_every", "input_clip")


def _default_out(dataset: str, motif: Any) -> Path:
    """``runs/<dataset>-m<motif>-<timestamp>``; ``motif`` is a motif spec or a ready label."""
    if ":" in dataset:                       # npz:/data/x.npz -> npz-x
        kind, arg = dataset.split(":", 1)
        dataset = f"{kind}-{Path(arg).stem}"
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    tag = motif if isinstance(motif, str) else motif_spec.label(motif)
    base = Path("runs") / f"{slug(dataset)}-m{tag}-{stamp}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def _no_evolution_note(r: Run) -> str | None:
    """A line saying that the run's evolution schedule changes no block (too few steps for its
    interval, e.g. a short run of "set" or "input-cosine"), or None."""
    t = r.trainer
    if t.updater is not None:
        return None
    sched = t.evolution_schedule_for(int(r.facts["n_train"]))
    if sched.name == "none" or sched.evolution_epochs():
        return None
    steps = sched.steps_per_epoch * t.epochs
    return (f"note: the evolution {sched.name!r} changes no block in this run ({steps} optimizer steps, too few "
            f"for its schedule {sched.params}): the pattern stays as initialised (--evolution set-epoch "
            "evolves after every epoch)")


def _printer(total: int | None) -> Any:
    """Prints one line per epoch; ``total`` defaults to the trainer's epochs."""
    from tqdm.auto import tqdm

    from ..train.callbacks import Callback

    class EpochPrinter(Callback):
        def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> bool | None:
            n = total or trainer.epochs
            line = (f"epoch {epoch:>{len(str(n))}}/{n}  loss {logs['train_loss']:.4f}  "
                    f"test_loss {fmt(logs['val_loss'])}  test_acc {fmt(logs['val_accuracy'])}  "
                    f"{logs['train_time']:.2f} s/epoch")
            if logs.get("zeta"):
                line += f"  (evolved zeta={logs['zeta']:.3f}, {sum(logs['pruned'])} blocks)"
            if logs.get("motif_switch"):
                sw = logs["motif_switch"]
                line += (f"  (motif {sw['from']} -> {sw['to']}: {sum(sw['blocks_before']):,} -> "
                         f"{sum(sw['blocks']):,} blocks)")
            tqdm.write(line, file=sys.stdout)
            sys.stdout.flush()
            return None

    return EpochPrinter()


def _config_from_args(args: argparse.Namespace) -> RunConfig:
    if args.dataset is None:
        raise UsageError("train needs --dataset (or --resume PATH)")
    hidden = parse_hidden(args.hidden) if args.hidden else list(DEFAULT_HIDDEN)
    try:
        motif = motif_spec.parse(args.motif, len(hidden) + 1, collapse_uniform=False) if args.motif else 1
    except (ValueError, TypeError) as exc:
        raise UsageError(f"argument --motif: {exc}") from None
    schedule = None
    if args.motif_schedule is not None:
        try:
            schedule = parse_motif_schedule(args.motif_schedule)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"argument --motif-schedule: {exc}") from None
        first = schedule.stages[0][1]
        if args.motif and motif != first:
            raise UsageError(f"argument --motif-schedule: the schedule starts at m = {first} but --motif is "
                             f"{' '.join(args.motif)}; drop --motif or make it {first}")
        if args.evolution == "dsr":
            raise UsageError("argument --motif-schedule: not with --evolution dsr (DSR's prune count is a block "
                             "count of its first update, which a motif switch changes)")
        motif = first
    elif args.motif_keep_norm:
        raise UsageError("argument --motif-keep-norm: only with --motif-schedule")
    seed = args.seed or 0
    recipe_name = args.recipe or DEFAULT_RECIPE
    distribution = args.distribution
    if distribution is None and args.epsilon is None:
        distribution = RECIPES[recipe_name]["distribution"]
    if args.output_motif == "divisible" and not isinstance(motif, int):
        raise UsageError("argument --output-motif: 'divisible' applies to one --motif size; a per-layer --motif "
                         "list sets the output layer itself")
    if isinstance(args.warmup, int) and args.epochs is not None and args.warmup >= args.epochs:
        raise UsageError(f"argument --warmup: {args.warmup} epochs of warmup in a run of {args.epochs} epochs; "
                         "give at most epochs-1, or a fraction such as 0.05")
    return RunConfig(
        dataset=args.dataset, hidden=tuple(hidden), motif=motif_spec.to_json(motif),
        output_motif=args.output_motif or "one", bias=args.bias or "neuron", density=args.density,
        epsilon=args.epsilon, distribution=distribution, seed=seed,
        data_seed=seed if args.data_seed is None else args.data_seed,
        limit_train=args.limit_train, epochs=args.epochs, recipe=recipe_name,
        input_clip=RECIPES[recipe_name]["input_clip"] if args.input_clip is None else args.input_clip,
        batch_size=args.batch_size, lr=args.lr, lr_schedule=args.lr_schedule, warmup=args.warmup,
        step_size=args.step_size or 30, gamma=0.1 if args.gamma is None else args.gamma, optimizer=args.optimizer,
        momentum=args.momentum, weight_decay=args.weight_decay, max_grad_norm=args.max_grad_norm,
        block_grad=args.block_grad or BLOCK_GRAD, dropout=args.dropout, label_smoothing=args.label_smoothing,
        evolution=args.evolution, regrow=args.regrow,
        evolve_layers=args.evolve_layers, motif_schedule=schedule.stages if schedule is not None else None,
        motif_keep_norm=bool(args.motif_keep_norm),
        eval_every=args.eval_every or 1, checkpoint_every=args.checkpoint_every or 1, data_dir=args.data_dir,
        threads=args.threads)


def run(args: argparse.Namespace) -> int:
    progress = not args.no_progress
    resume_from = args.resume
    if resume_from:
        given = [f"--{f.replace('_', '-')}" for f in _TRAIN_RUN_FLAGS if getattr(args, f) is not None]
        if given:
            raise UsageError(f"--resume reuses the run's own settings; drop {', '.join(given)}")
        meta = read_metadata(resume_from)
        config = RunConfig.from_checkpoint_extra(meta.get("extra"))
        if config is None or meta.get("trainer") is None:
            raise UsageError(f"{resume_from} was not written by 'motifcore train'; resume it with "
                             "motifcore.Trainer.from_checkpoint")
        config = config.replace(threads=args.threads,
                                data_dir=config.data_dir if args.data_dir is None else args.data_dir)
        if config.evolution == "set" and stored_before_set_annealed(meta["trainer"].get("evolution")):
            config = config.replace(evolution="set-epoch")     # what it trains with (docs/training.md)
        out = Path(args.out) if args.out else Path(resume_from).resolve().parent
        total = int(meta["trainer"]["epochs"])
    else:
        config = _config_from_args(args)
        label = config.motif if config.motif_schedule is None else "+".join(str(m) for _, m in config.motif_schedule)
        out = Path(args.out) if args.out else _default_out(config.dataset, label)
        total = None
    check_output_folder(out)
    created = out
    while not created.parent.exists():       # the top folder this run creates (removed if it never starts)
        created = created.parent
    fresh = not out.exists()
    try:       # the folder is ours until this process ends (released by the kernel, however it ends)
        lock = FolderLock(out).acquire()
    except FolderLockedError as exc:
        raise UsageError(str(exc)) from None
    try:
        return _run_locked(args, config, out, total, resume_from, progress)
    finally:
        lock.release()
        if fresh and [p.name for p in out.iterdir()] == [FolderLock.NAME]:   # a run that never started
            (out / FolderLock.NAME).unlink(missing_ok=True)
            for folder in (out, *out.parents):
                try:
                    folder.rmdir()               # only empty folders, up to the one this run made
                except OSError:
                    break
                if folder == created:
                    break


def _run_locked(args: argparse.Namespace, config: RunConfig, out: Path, total: int | None, resume_from: Any,
                progress: bool) -> int:
    existing = [f for f in RUN_FILES if (out / f).exists()]
    same_run = bool(resume_from) and out.resolve() == Path(resume_from).resolve().parent
    if existing and not same_run and not args.overwrite:
        raise UsageError(f"{out} already holds a run ({', '.join(existing)}); choose another --out, continue it "
                         "with --resume, or pass --overwrite to replace it")

    started: dict[str, Any] = {}

    def on_start(r: Run) -> None:
        started["run"] = r
        out.mkdir(parents=True, exist_ok=True)     # only now: a run that fails to start writes nothing
        if args.overwrite and not same_run:
            for f in existing:                     # --overwrite: no file of the old run survives
                (out / f).unlink(missing_ok=True)
        print(r.model.summary())
        if resume_from:
            print(f"resuming {r.config.dataset} from epoch {r.trainer.epoch}/{r.trainer.epochs} -> {out}")
            return
        config_json = {"command": "train", "run": {**r.config.to_dict(), **r.facts}, "trainer": r.trainer.config,
                       "model": r.model.config, "threads": r.model.num_threads, "out": str(out),
                       "motifcore_version": __version__, "build_info": build_info(),
                       "argv": sys.argv[1:] if args.argv is None else list(args.argv)}
        atomic_write_json(out / "config.json", config_json)
        print(f"training on {r.facts['n_train']} samples of {r.config.dataset} for {r.trainer.epochs} epochs "
              f"({r.model.num_threads} threads) -> {out}")
        note = _no_evolution_note(r)
        if note:
            print(note)

    callbacks = [JSONLLogger(out / "metrics.jsonl"),
                 Checkpoint(out / "checkpoint.npz", every=config.checkpoint_every, extra={"run": config.to_dict()}),
                 _printer(total)]
    try:
        r = execute(config, callbacks=callbacks, progress=progress, on_start=on_start, resume_from=resume_from)
    except KeyboardInterrupt:
        ck = out / "checkpoint.npz"
        hint = (f"continue with: motifcore train --resume {ck}" if ck.exists()
                else "no checkpoint was written yet")
        epoch = started["run"].trainer.epoch if "run" in started else 0
        print(f"motifcore: interrupted after epoch {epoch}; {hint}", file=sys.stderr)
        return EXIT_INTERRUPTED
    m = r.metrics
    summary = {
        "dataset": r.config.dataset, "epochs_completed": m["epochs_completed"], "epochs": m["epochs"],
        "stopped_early": m["stopped_early"], "final_accuracy": m["test_accuracy"], "final_loss": m["test_loss"],
        "final_train_loss": m["final_train_loss"], "best_accuracy": m["best_test_accuracy"],
        "best_epoch": m["best_epoch"], "mean_seconds_per_epoch": m["mean_s_per_epoch"],
        "total_train_seconds": m["total_train_s"], "total_evolution_seconds": m["total_evolution_s"],
        "total_switch_seconds": m["total_switch_s"], "motif_schedule": r.trainer.config["motif_schedule"],
        "motif_keep_norm": r.trainer.config["motif_keep_norm"],
        "unique_params": m["unique_params"], "edges": m["edges"], "active_blocks": m["active_blocks"],
        "block_macs_per_sample": m["block_macs_per_sample"], "dense_equivalent_params": m["dense_params"],
        "sizes": r.model.sizes, "motif": r.model.config["motif"], "n_train": r.facts["n_train"],
        "n_test": r.facts["n_test"],
    }
    atomic_write_json(out / "summary.json", summary)
    print(f"final test accuracy {fmt(summary['final_accuracy'])}, best {fmt(summary['best_accuracy'])} "
          f"(epoch {summary['best_epoch']}), {fmt(summary['mean_seconds_per_epoch'], '.3f')} s/epoch "
          f"(training only); unique params {summary['unique_params']:,}, edges {summary['edges']:,}, "
          f"block MACs/sample {summary['block_macs_per_sample']:,}")
    print(f"wrote {out}/{{config.json, metrics.jsonl, checkpoint.npz, summary.json}}")
    if importlib.util.find_spec("matplotlib") is not None:      # the curves are a bonus, not a requirement
        print(f"wrote {plot_runs([out], out / 'curves.png')}")
    return 0
