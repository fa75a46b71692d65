"""Global magnitude pruning of a trained model, one-shot or iterative, and its three retraining
modes: fine-tuning (``"ft"``), learning-rate rewinding (``"lrr"``, Renda et al., 2020) and weight
rewinding (``"wr"``, Frankle et al., 2020).

The source is usually a dense MLP, ``MotifMLP(sizes, motif=1, density=1.0)``, but any model works:
pruning ranks every active block of every chosen layer by ``|K|`` and keeps the largest. The pruned
model is a truly sparse :class:`MotifMLP` (its pattern is compacted), so retraining costs in
proportion to the kept blocks, and every later round of iterative pruning is cheaper than the last.

Optimizer state is fresh after pruning and rewinding (momentum and Adam moments zero, step counter
0), as in the reference implementations of these methods.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._internal.io import PathLike
from ..nn import MotifMLP
from ..train.callbacks import Checkpoint
from ..train.trainer import Trainer

__all__ = ["MODES", "global_magnitude_prune", "iterative_densities", "iterative_prune", "keep_largest", "retrainer",
           "rewind"]

#: retraining modes after pruning
MODES = ("ft", "lrr", "wr")


def iterative_densities(density: float, rounds: int) -> list[float]:
    """Kept fraction after each of ``rounds`` pruning rounds that end at ``density``:
    ``d_t = density ** ((1 - cos(pi t / K)) / 2)``, t = 1..K (sparsity ``s_t = 1 - d_t`` rises
    from 0 to ``1 - density``, geometric in density). This is the motif paper's cosine schedule with
    the sign of the cosine corrected: as printed it starts at the final sparsity and ends at 0."""
    d = float(density)
    if not (math.isfinite(d) and 0 < d <= 1):
        raise ValueError(f"density must be in (0, 1], got {density}")
    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
        raise ValueError(f"rounds must be an integer >= 1, got {rounds!r}")
    k = int(rounds)
    out = [d ** ((1.0 - math.cos(math.pi * t / k)) / 2.0) for t in range(1, k + 1)]
    out[-1] = d
    return out


def _fresh_layer_state(state: dict[str, np.ndarray], i: int, keep: np.ndarray | None) -> None:
    """Compact layer i of a get_state() dict to the blocks where `keep` is true (all if None) and
    zero its optimizer state."""
    indptr, indices = state[f"layer{i}.indptr"], state[f"layer{i}.indices"]
    weights = state[f"layer{i}.weights"]
    if keep is not None:
        rows = np.repeat(np.arange(indptr.shape[0] - 1), np.diff(indptr))
        counts = np.bincount(rows[keep], minlength=indptr.shape[0] - 1)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        indices, weights = indices[keep], weights[keep]
    state[f"layer{i}.indptr"], state[f"layer{i}.indices"] = indptr, indices
    state[f"layer{i}.weights"] = weights
    state[f"layer{i}.weight_velocity"] = np.zeros_like(weights)
    state[f"layer{i}.bias_velocity"] = np.zeros_like(state[f"layer{i}.bias"])
    state.pop(f"layer{i}.weight_sq", None)
    state.pop(f"layer{i}.bias_sq", None)


def _install(model: MotifMLP, state: dict[str, np.ndarray]) -> None:
    """Set a compacted state (fresh optimizer, step 0) and record the new densities in the config,
    so a checkpoint of the pruned model is rebuilt at its own size."""
    state["step"] = np.array(0, dtype=np.uint64)
    model.set_state(state)
    model.config["density"] = [layer.density for layer in model.layers]


def keep_largest(model: MotifMLP, density: float, layers: Sequence[int]) -> list[int]:
    """Prune each layer in ``layers`` in place to its ``max(1, round(density * G_out * G_in))``
    active blocks of largest ``|K|`` (ties: the lower position stays), keeping their weights and
    optimizer state (the structure experiments' layer-wise pruning between retraining steps); a
    layer that has no more blocks than that is left as it is. Returns the blocks kept per layer.
    Unlike :func:`global_magnitude_prune` nothing is reset."""
    if not isinstance(model, MotifMLP):
        raise TypeError(f"model must be a MotifMLP, got {type(model).__name__}")
    d = float(density)
    if not (math.isfinite(d) and 0 < d <= 1):
        raise ValueError(f"density must be in (0, 1], got {density!r}")
    kept = []
    for i in layers:
        layer = model.layers[i]
        g_out, g_in = layer.groups
        n_keep = max(1, int(round(d * g_out * g_in)))
        if n_keep < layer.n_blocks:
            K = layer.weights
            mask = np.zeros(K.size, dtype=bool)
            mask[np.argsort(-np.abs(K), kind="stable")[:n_keep]] = True
            layer.keep_where(mask)
        kept.append(layer.n_blocks)
    return kept


def global_magnitude_prune(model: MotifMLP, *, density: float | None = None, sparsity: float | None = None,
                           exclude_output: bool = False, scope: str = "global") -> list[int]:
    """Prune ``model`` in place to ``density`` (or ``1 - sparsity``) of the block grid of the chosen
    layers, keeping the blocks of largest ``|K|`` over all of them together; returns the blocks
    kept per layer.

    The number kept is ``round(density * sum(G_out * G_in))`` over the chosen layers (all layers,
    or all but the output layer with ``exclude_output=True``, as in open_lth's LeNet setting);
    ties in ``|K|`` keep the earlier (layer, position). Biases are untouched; the optimizer state
    is reset (momentum and Adam moments zero, step 0). A target above the current number of
    blocks, or one that would leave a layer without blocks, raises ValueError.

    ``scope="layer"`` ranks each chosen layer on its own instead and keeps
    ``round(density * G_out * G_in)`` blocks in every one (uniform layer-wise pruning): at high
    sparsity global ranking can starve a layer whose weights are small (a wide layer's init bound
    is small), layer-wise ranking cannot.
    """
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    if not isinstance(model, MotifMLP):
        raise TypeError(f"model must be a MotifMLP, got {type(model).__name__}")
    if (density is None) == (sparsity is None):
        raise ValueError("give exactly one of density and sparsity")
    d = float(density) if density is not None else 1.0 - float(sparsity)  # type: ignore[arg-type]
    if not (math.isfinite(d) and 0 < d <= 1):
        raise ValueError(f"density must be in (0, 1] (sparsity in [0, 1)), got density {d}")
    layers = model.layers
    chosen = list(range(len(layers) - 1 if exclude_output else len(layers)))
    if not chosen:
        raise ValueError("exclude_output=True leaves no layer to prune in a one-layer model")
    grids = [layers[i].groups[0] * layers[i].groups[1] for i in chosen]
    n_keep = int(round(d * sum(grids)))
    current = sum(layers[i].n_blocks for i in chosen)
    if n_keep > current or (scope == "layer" and any(round(d * g) > layers[i].n_blocks
                                                     for g, i in zip(grids, chosen))):
        raise ValueError(f"density {d} keeps {n_keep} blocks, but the pruned layers hold only {current}")
    state = model.get_state()
    mags = [np.abs(state[f"layer{i}.weights"]) for i in chosen]
    if scope == "layer":
        keeps = []
        for mag, g in zip(mags, grids):
            keep = np.zeros(mag.shape[0], dtype=bool)
            keep[np.lexsort((np.arange(mag.shape[0]), -mag))[:int(round(d * g))]] = True
            keeps.append(keep)
    else:
        mag = np.concatenate(mags)
        layer_id = np.concatenate([np.full(m.shape[0], j, dtype=np.int64) for j, m in enumerate(mags)])
        pos = np.concatenate([np.arange(m.shape[0], dtype=np.int64) for m in mags])  # CSR order = position order
        order = np.lexsort((pos, layer_id, -mag))          # |K| descending, then layer, then position
        keep_all = np.zeros(mag.shape[0], dtype=bool)
        keep_all[order[:n_keep]] = True
        keeps = np.split(keep_all, np.cumsum([m.shape[0] for m in mags])[:-1])
    for i, keep in zip(chosen, keeps):
        if not keep.any():
            hint = "" if exclude_output else ", pass exclude_output=True"
            why = " (global ranking favours layers of larger weights)" if scope == "global" else ""
            raise ValueError(f"density {d} would leave layer {i} without blocks{why}; prune less{hint}"
                             + (" or use scope='layer'" if scope == "global" else ""))
        _fresh_layer_state(state, i, keep)
    for i in range(len(layers)):
        if i not in chosen:
            _fresh_layer_state(state, i, None)
    _install(model, state)
    return [layers[i].n_blocks for i in range(len(layers))]


def _flat_positions(indptr: np.ndarray, indices: np.ndarray, g_in: int) -> np.ndarray:
    rows = np.repeat(np.arange(indptr.shape[0] - 1, dtype=np.int64), np.diff(indptr))
    return rows * g_in + indices.astype(np.int64)


def rewind(model: MotifMLP, state: Mapping[str, Any]) -> None:
    """Weight rewinding: give every surviving block of ``model`` its weight in ``state`` (a
    :meth:`MotifMLP.get_state` of the same network at an earlier point, e.g. the end of epoch
    ``k`` of the dense run) and every bias its value there, bit for bit; the pattern of ``model``
    is kept and its optimizer state reset (step 0). ValueError if a surviving block is not active
    in ``state``."""
    if not isinstance(model, MotifMLP):
        raise TypeError(f"model must be a MotifMLP, got {type(model).__name__}")
    new = model.get_state()
    for i, layer in enumerate(model.layers):
        try:
            old_ptr = np.asarray(state[f"layer{i}.indptr"], dtype=np.int64)
            old_idx = np.asarray(state[f"layer{i}.indices"])
            old_w = np.asarray(state[f"layer{i}.weights"], dtype=np.float32)
            old_b = np.asarray(state[f"layer{i}.bias"], dtype=np.float32)
        except KeyError as e:
            raise ValueError(f"rewind state is missing the entry {e.args[0]!r}") from None
        g_out, g_in = layer.groups
        if old_ptr.shape != (g_out + 1,) or old_b.shape != new[f"layer{i}.bias"].shape:
            raise ValueError(f"rewind state of layer {i} is for a network of another shape")
        old_pos = _flat_positions(old_ptr, old_idx, g_in)
        cur_pos = _flat_positions(new[f"layer{i}.indptr"], new[f"layer{i}.indices"], g_in)
        at = np.searchsorted(old_pos, cur_pos)
        ok = at < old_pos.shape[0]
        ok[ok] = old_pos[at[ok]] == cur_pos[ok]
        if not ok.all():
            raise ValueError(f"layer {i}: {int((~ok).sum())} surviving blocks are not active in the rewind state")
        new[f"layer{i}.weights"] = old_w[at]
        new[f"layer{i}.bias"] = old_b.copy()
        _fresh_layer_state(new, i, None)
    _install(model, new)


def retrainer(model: MotifMLP, mode: str, *, epochs: int, rewind_epoch: int = 1,
              rewind_state: Mapping[str, Any] | None = None, callbacks: Sequence[Any] | None = None,
              **trainer_kwargs: Any) -> Trainer:
    """The :class:`Trainer` that retrains a pruned ``model`` (pattern fixed: ``evolution="none"``).

    * ``"ft"``: a fresh run of ``epochs`` epochs with its own cosine schedule, no warmup;
    * ``"lrr"``: the original run's schedule replayed from the end of epoch ``rewind_epoch``:
      ``epochs`` is the original run's length, training covers epochs ``rewind_epoch + 1 ..
      epochs`` with their original learning rates and sample orders (same ``seed``);
    * ``"wr"``: as ``"lrr"`` after :func:`rewind` to ``rewind_state`` (the state saved at the end
      of epoch ``rewind_epoch``).

    ``trainer_kwargs`` are the original run's Trainer settings (recipe, lr, seed, ...). Call
    ``fit`` on the result; its checkpoints resume like any run.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    kw = dict(trainer_kwargs)
    if kw.get("evolution") not in (None, "none"):
        raise ValueError("a pruned model is retrained on its fixed pattern: evolution must be 'none'")
    kw["evolution"] = "none"
    if mode == "ft":
        kw.setdefault("warmup", 0)
        return Trainer(model, epochs=epochs, callbacks=callbacks, **kw)
    if isinstance(rewind_epoch, bool) or not isinstance(rewind_epoch, (int, np.integer)) \
            or not 0 <= rewind_epoch < epochs:
        raise ValueError(f"rewind_epoch must be an integer in [0, epochs={epochs}), got {rewind_epoch!r}")
    if mode == "wr":
        if rewind_state is None:
            raise ValueError("mode 'wr' needs rewind_state (the model state at the end of epoch rewind_epoch)")
        rewind(model, rewind_state)
    trainer = Trainer(model, epochs=epochs, callbacks=callbacks, **kw)
    trainer.epoch = int(rewind_epoch)
    trainer.evolved_through = int(rewind_epoch)
    return trainer


def iterative_prune(model: MotifMLP, X: Any, y: Any, X_val: Any = None, y_val: Any = None, *, density: float,
                    rounds: int, epochs_per_round: int, exclude_output: bool = False, scope: str = "global",
                    checkpoint_dir: PathLike | None = None, callbacks: Sequence[Any] | None = None,
                    **trainer_kwargs: Any) -> tuple[MotifMLP, list[Trainer]]:
    """Prune ``model`` in ``rounds`` rounds down to ``density`` (:func:`iterative_densities`),
    fine-tuning ``epochs_per_round`` epochs (``"ft"``) after each; returns the final model and
    the round trainers (their histories hold the times).

    With ``checkpoint_dir`` each round is checkpointed every epoch as ``round<r>.npz`` and a new
    call resumes where the last one stopped, bit for bit (the returned model is then the one
    restored from the checkpoints, not ``model``).
    """
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    trainers: list[Trainer] = []
    for r, d in enumerate(iterative_densities(density, rounds), 1):
        path = folder / f"round{r}.npz" if folder is not None else None
        cbs = [*(callbacks or []), *([Checkpoint(path)] if path is not None else [])]
        if path is not None and path.exists():
            trainer = Trainer.from_checkpoint(path, callbacks=cbs, progress=trainer_kwargs.get("progress", True),
                                              num_threads=model.num_threads)
        else:
            global_magnitude_prune(model, density=d, exclude_output=exclude_output, scope=scope)
            trainer = retrainer(model, "ft", epochs=epochs_per_round, callbacks=cbs, **trainer_kwargs)
        trainer.fit(X, y, X_val, y_val)
        model = trainer.model
        trainers.append(trainer)
    return model, trainers
