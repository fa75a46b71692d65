"""Type stub of the compiled engine motifcore._core (see bindings/)."""

from typing import Dict, List, Tuple

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]

def build_info() -> Dict[str, str]: ...
def set_simd_level(level: str) -> None: ...
def simd_level() -> str: ...
def max_num_threads() -> int: ...
def target_blocks(n_in: int, n_out: int, m_in: int = 1, m_out: int = 1, density: float = 0.1,
                  epsilon: float = 0.0) -> int: ...

class Layer:
    n_in: int
    n_out: int
    m_in: int
    m_out: int
    G_in: int
    G_out: int
    input_copies: int
    activation: str
    bias_mode: str
    n_blocks: int
    n_bias: int
    n_edges: int
    indptr: I64
    indices: I32
    weights: F32
    bias: F32
    weight_velocity: F32
    bias_velocity: F32
    weight_sq: F32
    bias_sq: F32
    grad_weights: F32
    grad_bias: F32
    def __init__(self, n_in: int, n_out: int, m_in: int = 1, m_out: int = 1, density: float = 0.1,
                 epsilon: float = 0.0, bias: str = "neuron", activation: str = "linear",
                 seed: int = 0, input_copies: int = 1) -> None: ...
    def set_weights(self, weights: F32) -> None: ...
    def set_bias(self, bias: F32) -> None: ...
    def set_state(self, indptr: I64, indices: I32, weights: F32, bias: F32, weight_velocity: F32,
                  bias_velocity: F32, weight_sq: F32 = ..., bias_sq: F32 = ...) -> None: ...
    def forward(self, x: F32, num_threads: int = 1) -> F32: ...
    def backward(self, grad_out: F32, num_threads: int = 1) -> F32: ...
    def to_dense(self) -> F32: ...
    def prune_regrow(self, zeta: float, seed: int, regrow: str = "he") -> Tuple[int, float]: ...
    def sgd_step(self, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4,
                 num_threads: int = 1) -> None: ...
    def optimizer_step(self, optimizer: str, lr: float, momentum: float = 0.9, beta1: float = 0.9,
                       beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
                       grad_scale: float = 1.0, t: int = 1, num_threads: int = 1) -> None: ...
    def grad_sq_norm(self, num_threads: int = 1) -> float: ...

class Network:
    layers: List[Layer]
    num_threads: int
    dropout_seed: int
    step: int
    def __init__(self, layers: List[Layer], num_threads: int) -> None: ...
    def train_step(self, X: F32, y: I64, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4,
                   dropout: float = 0.0, optimizer: str = "sgd", beta1: float = 0.9, beta2: float = 0.999,
                   eps: float = 1e-8, max_grad_norm: float = 0.0) -> float: ...
    def train_epoch(self, X: F32, y: I64, order: I64, batch_size: int, lrs: F32, momentum: float = 0.9,
                    weight_decay: float = 5e-4, dropout: float = 0.0, optimizer: str = "sgd", beta1: float = 0.9,
                    beta2: float = 0.999, eps: float = 1e-8, max_grad_norm: float = 0.0) -> float: ...
    def logits(self, X: F32, chunk: int = 256) -> F32: ...
    def evaluate(self, X: F32, y: I64, chunk: int = 256) -> Tuple[float, int]: ...
