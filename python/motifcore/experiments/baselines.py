"""The baselines experiment: the Motif-SET paper's Tables 7 and 8 re-measured on motifcore
(``motifcore baselines``; design in docs/baselines.md).

Every row is trained with the same recipe (the default ``motifcore`` recipe and its network: hidden
layers at the density, output layer dense) with the evolution its name says (SET and Motif-SET rows
with SET's own schedule, ``evolution="set-epoch"``, as the paper's rows; RigL and DSR rows with their updaters,
static rows with none) on the same data and
measured the same way: test accuracy, unique parameters, the paper's parameter convention, bytes
(fp32 CSR, an ``np.savez`` of the inference arrays, Deep Compression with and without Huffman),
median seconds per training epoch, total training wall time to the final model (including the
dense source or teacher a row needs) and batch-1 latency. Each (row, seed) is stored as
``OUT/runs/<row>__s<seed>.json`` the moment it finishes, and every training saves a checkpoint
each epoch under ``OUT/checkpoints/``, so running the same command again resumes where it stopped.

Rows that need methods this build does not have (RigL, DSR, ERK densities) are reported as
``unavailable`` instead of failing the experiment.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._internal.io import PathLike, atomic_write
from ..analysis.estimate import measure_latency
from ..baselines import compress, distill, prune
from ..defaults import resolve_recipe
from ..nn import MotifMLP
from ..train.callbacks import Checkpoint
from ..train.checkpoint import load_model, save_checkpoint
from ..train.distillation import KD
from ..train.trainer import Trainer, TrainingDivergedError
from .config import RunConfig
from .run import load_data

__all__ = ["PAPER", "ROWS", "BaselineSpec", "available_rows", "run_baselines"]

# The paper's Tables 7 and 8, Fashion-MNIST columns (Chen, Liu & Ziabari, 2025): params (M),
# accuracy (%), seconds per epoch. Its params mix three conventions and several of its numbers
# were not measured (docs/baselines.md).
PAPER: dict[str, dict[str, float]] = {
    "prune75-ft": {"params_m": 5.10, "acc": 73.30, "s_epoch": 21.05},
    "kd-paper": {"params_m": 5.10, "acc": 73.30, "s_epoch": 21.06},
    "motif2": {"params_m": 5.10, "acc": 73.30, "s_epoch": 47.69},
    "set1": {"params_m": 20.38, "acc": 76.10, "s_epoch": 84.12},
    "dsr1": {"params_m": 20.38, "acc": 74.70, "s_epoch": 65.91},
    "dc-prune": {"params_m": 20.38, "acc": 75.17, "s_epoch": 71.98},
}


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, text.encode())


@dataclass(frozen=True)
class Row:
    name: str
    table: int                 #: 7 or 8
    label: str
    needs: str | None = None   #: a method that must exist in this build ("rigl", "dsr", "erk")


ROWS: dict[str, Row] = {r.name: r for r in [
    Row("dense", 7, "dense MLP (source and teacher)"),
    Row("prune75-ft", 7, "one-shot global 75 % + fine-tune (paper-literal)"),
    Row("prune-ft", 7, "one-shot global, matched unique params + fine-tune"),
    Row("prune-lrr", 7, "one-shot global, matched + LR rewinding"),
    Row("prune-wr", 7, "one-shot global, matched + weight rewinding"),
    Row("prune-iter", 7, "iterative global (cosine schedule), matched"),
    Row("prune-layer-ft", 7, "one-shot layer-wise (uniform), matched + fine-tune"),
    Row("kd-paper", 7, "distilled dense student, paper width"),
    Row("kd-matched", 7, "distilled dense student, matched unique params"),
    Row("motif2", 7, "Motif-SET m = 2"),
    Row("motif2-kd", 7, "Motif-SET m = 2 + KD"),
    Row("set1", 8, "SET m = 1"),
    Row("static1", 8, "static sparse m = 1 (uniform)"),
    Row("static2", 8, "static sparse m = 2 (uniform)"),
    Row("static1-erk", 8, "static sparse m = 1 (ERK)", needs="erk"),
    Row("dsr1", 8, "DSR m = 1", needs="dsr"),
    Row("dsr2", 8, "Motif-DSR m = 2", needs="dsr"),
    Row("rigl1", 8, "RigL m = 1 (uniform)", needs="rigl"),
    Row("rigl1-erk", 8, "RigL m = 1 (ERK)", needs="rigl+erk"),
    Row("rigl2", 8, "Motif-RigL m = 2", needs="rigl"),
    Row("dc-prune", 8, "Deep Compression: matched pruning + trained quantization + Huffman"),
    Row("dc-set1", 8, "SET m = 1 + trained quantization + Huffman"),
    Row("dc-motif2", 8, "Motif-SET m = 2 + trained quantization + Huffman"),
]}


@dataclass(frozen=True)
class BaselineSpec:
    """Settings of one baselines experiment (stored as ``OUT/spec.json``)."""

    dataset: str = "fashion-mnist"
    hidden: tuple[int, ...] = (3000, 3000, 3000)
    limit_train: int | None = None
    data_seed: int = 0
    data_dir: str | None = None
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 20               #: sparse-from-scratch and KD rows
    epochs_pre: int = 10           #: dense source
    epochs_ft: int = 10            #: retraining after one-shot pruning ("ft")
    rewind_epoch: int = 1          #: k of "lrr" and "wr"
    rounds: int = 4                #: iterative pruning rounds
    epochs_round: int = 2          #: retraining epochs after each round
    density: float = 0.1           #: density of the sparse-from-scratch rows
    #: matched-parameter pruning keeps the output layer dense (as open_lth's LeNet setting): global
    #: magnitude pruning at ~2.5 % otherwise leaves the small output weights almost empty
    exclude_output: bool = True
    temperature: float = 4.0
    lam: float = 0.9
    bits: int = 5
    index_bits: int = 5
    epochs_q: int = 2              #: centroid fine-tuning epochs
    latency_repeats: int = 1000
    latency_warmup: int = 50
    threads: int | None = None
    rows: tuple[str, ...] = tuple(ROWS)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("hidden", "seeds", "rows"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BaselineSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for k in ("hidden", "seeds", "rows"):
            if k in kw:
                kw[k] = tuple(kw[k])
        return cls(**kw).checked()

    def checked(self) -> BaselineSpec:
        unknown = [r for r in self.rows if r not in ROWS]
        if unknown:
            raise ValueError(f"unknown rows {unknown}; known: {', '.join(ROWS)}")
        for name in ("epochs", "epochs_pre", "epochs_ft", "rounds", "epochs_round", "epochs_q", "bits",
                     "index_bits", "latency_repeats"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if not 0 <= self.rewind_epoch < self.epochs_pre:
            raise ValueError(f"rewind_epoch must be in [0, epochs_pre={self.epochs_pre})")
        if not self.seeds:
            raise ValueError("seeds must not be empty")
        if not 0 < self.density <= 1:
            raise ValueError(f"density must be in (0, 1], got {self.density}")
        return self

    def run_config(self, **kw: Any) -> RunConfig:
        # input_clip 0: the inputs of the committed baseline records (standardised, not clipped)
        base = {"dataset": self.dataset, "hidden": self.hidden, "limit_train": self.limit_train,
                "data_seed": self.data_seed, "data_dir": self.data_dir, "threads": self.threads, "input_clip": 0.0}
        return RunConfig(**{**base, **kw})


def _method_available(needs: str | None, sizes: Sequence[int]) -> str | None:
    """None if every method in ``needs`` exists in this build, else why not."""
    for method in (needs or "").split("+"):
        if not method:
            continue
        if method == "erk":
            if "distribution" not in inspect.signature(MotifMLP.__init__).parameters:
                return "ERK layer densities (MotifMLP(distribution='erk')) are not in this build"
        else:
            try:
                Trainer(MotifMLP(list(sizes[:1]) + [4, 2], density=0.5, num_threads=1), epochs=1,
                        evolution=method, progress=False)
            except (ValueError, TypeError):
                return f"evolution={method!r} is not in this build"
    return None


def available_rows(spec: BaselineSpec) -> dict[str, str | None]:
    """Each row of ``spec`` with None (available) or the reason it cannot run in this build."""
    return {r: _method_available(ROWS[r].needs, [8]) for r in spec.rows}


# ------------------------------------------------------------------------------------------------
# one experiment
# ------------------------------------------------------------------------------------------------

#: the optimizer settings a baselines experiment records (OUT/training.json) and trains every row with
#: (the distilled rows without label smoothing: the Trainer drops the recipe's beside ``distill``)
_RESOLVED = ("optimizer", "lr", "weight_decay", "momentum", "betas", "eps", "max_grad_norm", "dropout",
             "label_smoothing")


@dataclass
class _Ctx:
    spec: BaselineSpec
    out: Path
    X: np.ndarray
    y: np.ndarray
    Xt: np.ndarray
    yt: np.ndarray
    sizes: list[int]
    progress: bool
    cache: dict[str, Any] = field(default_factory=dict)

    def ckpt(self, name: str) -> Path:
        return self.out / "checkpoints" / f"{name}.npz"

    @functools.cached_property
    def training(self) -> dict[str, Any]:
        """The recipe's optimizer settings as every row trains with them. The learning rate is
        resolved once, for the sparse-from-scratch network (at its hidden fan-in, width x density),
        and given to every row: the dense source, a pruned or distilled model and the sparse rows
        train at the same rate, as the paper's tables compare them."""
        cfg = self.spec.run_config()
        given = {k: v for k, v in cfg.trainer_kwargs().items() if k in _RESOLVED}
        r = resolve_recipe(cfg.recipe, given, max(self.sizes[1:-2], default=0) * self.spec.density)
        return {**{k: r[k] for k in _RESOLVED}, "betas": list(r["betas"]), "recipe": cfg.recipe}

    def kwargs(self, seed: int, **over: Any) -> dict[str, Any]:
        """Trainer settings of the default recipe for ``seed`` (overrides on top): the optimizer's
        settings of :attr:`training` as resolved there (a rate given to the Trainer would otherwise
        leave the decay at the recipe's unscaled value). Label smoothing is left to the Trainer,
        which resolves the same recipe value, and none for a row that distils."""
        kw = self.spec.run_config(seed=seed).trainer_kwargs()
        kw = {k: v for k, v in kw.items() if v is not None or k in over}
        for k in _RESOLVED:
            if k != "label_smoothing":
                kw.setdefault(k, tuple(self.training[k]) if k == "betas" else self.training[k])
        kw.update(over)
        return kw


def _fit(ctx: _Ctx, name: str, make: Callable[[], Trainer], distill_kd: KD | None = None,
         callbacks: Sequence[Any] = ()) -> Trainer:
    """Train (or resume) the run checkpointed under ``name``; returns its finished trainer."""
    path = ctx.ckpt(name)
    cb = [*callbacks, Checkpoint(path, extra={"baselines_run": name})]
    if path.exists():
        over = {"distill": distill_kd} if distill_kd is not None else {}
        trainer = Trainer.from_checkpoint(path, callbacks=cb, progress=ctx.progress, num_threads=ctx.spec.threads,
                                          **over)
    else:
        trainer = make()
        trainer.callbacks.extend(cb)
    trainer.progress = ctx.progress
    trainer.fit(ctx.X, ctx.y, ctx.Xt, ctx.yt)
    return trainer


def _train_seconds(trainer: Trainer) -> tuple[float, float | None]:
    """(total train + mask-update seconds, median seconds per epoch) of a trainer's history."""
    rows = trainer.history.rows
    tt = [r["train_time"] for r in rows if r.get("train_time") is not None]
    total = float(sum(tt) + sum(r.get("evolution_time") or 0.0 for r in rows))
    return total, (float(np.median(tt)) if tt else None)


def _model(ctx: _Ctx, motif: Any, density: Any, seed: int, hidden: Sequence[int] | None = None,
           erk: bool = False) -> MotifMLP:
    sizes = [ctx.sizes[0], *(hidden or ctx.sizes[1:-1]), ctx.sizes[-1]]
    extra = {"distribution": "erk"} if erk else {}     # layer densities of RigL's ERK rule
    return MotifMLP(sizes, motif=motif, density=density, seed=seed, num_threads=ctx.spec.threads, **extra)


def _dense(ctx: _Ctx) -> dict[str, Any]:
    """The dense source (seed of the first seed): trained once, with its epoch-k state kept."""
    if "dense" in ctx.cache:
        return ctx.cache["dense"]
    spec, seed = ctx.spec, ctx.spec.seeds[0]
    k_path = ctx.ckpt(f"dense-e{spec.rewind_epoch}")

    class _KeepK:
        def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
            if epoch == spec.rewind_epoch:
                save_checkpoint(k_path, trainer.model)

    def make() -> Trainer:
        m = _model(ctx, 1, 1.0, seed)
        if spec.rewind_epoch == 0:
            save_checkpoint(k_path, m)
        return Trainer(m, epochs=spec.epochs_pre, **ctx.kwargs(seed, evolution="none"))

    t = _fit(ctx, "dense", make, callbacks=[_KeepK()])
    total, med = _train_seconds(t)
    ctx.cache["dense"] = {"trainer": t, "total_s": total, "median_s": med, "kwargs": ctx.kwargs(seed, evolution="none"),
                          "state_k": load_model(k_path, num_threads=spec.threads).get_state()}
    return ctx.cache["dense"]


def _grid(ctx: _Ctx) -> int:
    s = ctx.sizes
    return sum(a * b for a, b in zip(s[:-1], s[1:]))


def _measure(ctx: _Ctx, model: MotifMLP, convention: str) -> dict[str, Any]:
    loss, acc = model.evaluate(ctx.Xt, ctx.yt)
    paper = {"dense": model.dense_params - sum(ctx.sizes[1:]), "nonzeros": model.n_blocks,
             "grid": int(sum(layer.groups[0] * layer.groups[1] for layer in model.layers))}[convention]
    lat = measure_latency(model.predict_proba, ctx.Xt, batch_size=1, repeats=ctx.spec.latency_repeats,
                          warmup=ctx.spec.latency_warmup)
    threads = model.num_threads
    model.num_threads = 1                       # and on one thread (the paper's edge-device setting)
    lat1 = measure_latency(model.predict_proba, ctx.Xt, batch_size=1, repeats=ctx.spec.latency_repeats,
                           warmup=ctx.spec.latency_warmup)
    model.num_threads = threads
    return {"test_accuracy": acc, "test_loss": loss, "unique_params": model.n_params, "active_blocks": model.n_blocks,
            "paper_params": paper, "paper_convention": convention, "edges": model.n_edges,
            "csr_fp32_bytes": compress.csr_bytes(model),
            "savez_bytes": compress.inference_bytes(model),
            "latency_batch1_s": lat.seconds_per_sample,
            "latency_batch1_p90_s": float(np.percentile(lat.batch_times, 90)) / lat.batch_size,
            "latency_batch1_1thread_s": lat1.seconds_per_sample, "latency_threads": threads}


def _scratch(ctx: _Ctx, name: str, seed: int, motif: int, evolution: str, erk: bool = False,
             kd: KD | None = None) -> tuple[Trainer, dict[str, Any]]:
    spec = ctx.spec

    def make() -> Trainer:
        m = _model(ctx, motif, spec.density, seed, erk=erk)
        # each method brings its own layers and regrowth (motifcore.defaults.EVOLUTIONS): SET and the
        # updaters change every layer
        over: dict[str, Any] = {"evolution": evolution}
        return Trainer(m, epochs=spec.epochs, distill=kd, **ctx.kwargs(seed, **over))

    t = _fit(ctx, f"{name}__s{seed}", make, kd)
    total, med = _train_seconds(t)
    return t, {"total_train_s": total, "median_s_per_epoch": med, "epochs": spec.epochs}


def _teacher(ctx: _Ctx) -> tuple[KD, float]:
    if "kd" not in ctx.cache:
        d = _dense(ctx)
        z = distill.teacher_logits(d["trainer"].model, ctx.X)
        ctx.cache["kd"] = KD(z, ctx.spec.temperature, ctx.spec.lam)
    return ctx.cache["kd"], _dense(ctx)["total_s"]


def _pruned(ctx: _Ctx, name: str, seed: int, mode: str, density: float,
            exclude_output: bool, scope: str = "global") -> tuple[Trainer, dict[str, Any]]:
    spec, d = ctx.spec, _dense(ctx)

    def make() -> Trainer:
        m = load_model(ctx.ckpt("dense"), num_threads=spec.threads)
        prune.global_magnitude_prune(m, density=density, exclude_output=exclude_output, scope=scope)
        kw = {**d["kwargs"], "seed": seed}
        if mode == "ft":
            return prune.retrainer(m, "ft", epochs=spec.epochs_ft, **kw)
        return prune.retrainer(m, mode, epochs=spec.epochs_pre, rewind_epoch=spec.rewind_epoch,
                               rewind_state=d["state_k"], **kw)

    t = _fit(ctx, f"{name}__s{seed}", make)
    total, med = _train_seconds(t)
    return t, {"total_train_s": total + d["total_s"], "median_s_per_epoch": med, "source_s": d["total_s"],
               "epochs": len(t.history)}


def _iterative(ctx: _Ctx, seed: int, density: float) -> tuple[Trainer, dict[str, Any]]:
    spec, d = ctx.spec, _dense(ctx)
    model = load_model(ctx.ckpt("dense"), num_threads=spec.threads)
    model, trainers = prune.iterative_prune(
        model, ctx.X, ctx.y, ctx.Xt, ctx.yt, density=density, rounds=spec.rounds, epochs_per_round=spec.epochs_round,
        exclude_output=spec.exclude_output, checkpoint_dir=ctx.out / "checkpoints" / f"prune-iter__s{seed}",
        **{**d["kwargs"], "seed": seed, "progress": ctx.progress})
    times = [_train_seconds(t) for t in trainers]
    meds = [m for _, m in times if m is not None]
    return trainers[-1], {"total_train_s": d["total_s"] + sum(s for s, _ in times),
                          "median_s_per_epoch": float(np.median(meds)) if meds else None,
                          "source_s": d["total_s"], "epochs": spec.rounds * spec.epochs_round}


def _deep_compression(ctx: _Ctx, name: str, seed: int, source: MotifMLP, source_s: float) -> dict[str, Any]:
    """Weight sharing with trained centroids (``epochs_q`` epochs, constant lr) and coding."""
    spec = ctx.spec

    def make() -> Trainer:
        m = MotifMLP(source.sizes, motif=[tuple(x) for x in source.config["motif"]], density=source.config["density"],
                     num_threads=spec.threads)
        m.set_state(source.get_state())
        t0 = time.perf_counter()
        compress.quantize_model(m, spec.bits, trainable=True)
        ctx.cache[f"{name}-kmeans_s"] = time.perf_counter() - t0
        return Trainer(m, epochs=spec.epochs_q, **ctx.kwargs(seed, evolution="none", lr_schedule="constant",
                                                             warmup=0))

    t = _fit(ctx, f"{name}__s{seed}", make)
    s, med = _train_seconds(t)
    t0 = time.perf_counter()
    r = compress.compress_model(t.model, spec.bits, spec.index_bits)
    code_s = time.perf_counter() - t0
    return {"trainer": t, "total_train_s": source_s + s + code_s + ctx.cache.get(f"{name}-kmeans_s", 0.0),
            "median_s_per_epoch": med, "source_s": source_s, "dc_bytes_fixed": r["dc_bytes_fixed"],
            "dc_bytes_huffman": r["dc_bytes_huffman"], "compression_huffman": r["compression_huffman"],
            "epochs": spec.epochs_q}


def _run_row(ctx: _Ctx, row: str, seed: int) -> dict[str, Any]:
    spec = ctx.spec
    if "matched" not in ctx.cache:
        # density (of the pruned layers' grid) whose kept blocks equal Motif-SET m = 2's block count
        blocks, grid = _model(ctx, 2, spec.density, 0).n_blocks, _grid(ctx)
        out = ctx.sizes[-2] * ctx.sizes[-1] if spec.exclude_output else 0
        if blocks <= out:
            raise ValueError(f"the matched-parameter rows keep the output layer dense ({out} weights), which is "
                             f"already more than Motif-SET m = 2's {blocks} blocks on {'-'.join(map(str, ctx.sizes))}"
                             "; use wider hidden layers or a higher --density")
        ctx.cache["matched"] = (blocks - out) / (grid - out)
    matched = ctx.cache["matched"]
    if row == "dense":
        d = _dense(ctx)
        return {**_measure(ctx, d["trainer"].model, "dense"), "total_train_s": d["total_s"],
                "median_s_per_epoch": d["median_s"], "epochs": spec.epochs_pre}
    if row.startswith("prune") and row != "prune-iter":
        mode = row.rsplit("-", 1)[1]
        literal = row == "prune75-ft"         # the paper's: global over all layers, 75 %
        dens = 0.25 if literal else matched
        t, info = _pruned(ctx, row, seed, mode, dens, spec.exclude_output and not literal,
                          "layer" if row == "prune-layer-ft" else "global")
        return {**_measure(ctx, t.model, "nonzeros"), **info, "density": dens}
    if row == "prune-iter":
        t, info = _iterative(ctx, seed, matched)
        return {**_measure(ctx, t.model, "nonzeros"), **info, "density": matched}
    if row in ("kd-paper", "kd-matched"):
        kd, teacher_s = _teacher(ctx)
        n_in, n_out, n_h = ctx.sizes[0], ctx.sizes[-1], len(ctx.sizes) - 2
        m2 = _model(ctx, 2, spec.density, 0)
        if row == "kd-paper":   # the paper matches weights-only params to m = 2's block grid
            target = sum(layer.groups[0] * layer.groups[1] for layer in m2.layers)
            h = distill.matched_width(target, n_in, n_out, n_h, biases=False)
        else:
            h = distill.matched_width(m2.n_params, n_in, n_out, n_h)
        t, info = _kd_student(ctx, row, seed, h, kd)
        return {**_measure(ctx, t.model, "dense"), **info, "total_train_s": info["total_train_s"] + teacher_s,
                "width": h, "source_s": teacher_s}
    if row == "motif2-kd":
        kd, teacher_s = _teacher(ctx)
        t, info = _scratch(ctx, row, seed, 2, "set-epoch", kd=kd)
        return {**_measure(ctx, t.model, "grid"), **info, "total_train_s": info["total_train_s"] + teacher_s,
                "source_s": teacher_s}
    if row.startswith("dc-"):
        if row == "dc-prune":
            src, info = _pruned(ctx, "prune-ft", seed, "ft", matched, spec.exclude_output)
            conv = "nonzeros"
        else:
            src, info = _scratch(ctx, row[3:], seed, 1 if row == "dc-set1" else 2, "set-epoch")
            conv = "grid"
        dc = _deep_compression(ctx, row, seed, src.model, info["total_train_s"])
        t = dc.pop("trainer")
        return {**_measure(ctx, t.model, conv), **dc}
    motif, evolution = _SCRATCH[row]
    t, info = _scratch(ctx, row, seed, motif, evolution, erk=row.endswith("-erk"))
    return {**_measure(ctx, t.model, "grid"), **info}


#: sparse-from-scratch rows: (motif size, evolution); Motif-SET is SET's evolution on motif blocks
_SCRATCH: dict[str, tuple[int, str]] = {
    "motif2": (2, "set-epoch"), "set1": (1, "set-epoch"), "static1": (1, "none"), "static2": (2, "none"),
    "static1-erk": (1, "none"), "dsr1": (1, "dsr"), "dsr2": (2, "dsr"), "rigl1": (1, "rigl"),
    "rigl1-erk": (1, "rigl"), "rigl2": (2, "rigl")}


def _kd_student(ctx: _Ctx, row: str, seed: int, h: int, kd: KD) -> tuple[Trainer, dict[str, Any]]:
    spec = ctx.spec

    def make() -> Trainer:
        m = _model(ctx, 1, 1.0, seed, hidden=[h] * (len(ctx.sizes) - 2))
        return Trainer(m, epochs=spec.epochs, distill=kd, **ctx.kwargs(seed, evolution="none"))

    t = _fit(ctx, f"{row}__s{seed}", make, kd)
    total, med = _train_seconds(t)
    return t, {"total_train_s": total, "median_s_per_epoch": med, "epochs": spec.epochs}


def run_baselines(spec: BaselineSpec, out_dir: PathLike, *, progress: bool = False,
                  log: Callable[[str], None] = print) -> dict[str, str | None]:
    """Run (or resume) every (row, seed) of ``spec`` into ``out_dir`` (one record per run in
    ``runs/``); returns, per row, why it has no record (unavailable method, failure) or None.
    :func:`motifcore.report.tables78.write_tables` makes the tables from the records."""
    spec = spec.checked()
    out = Path(out_dir)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    ignore = out / "checkpoints" / ".gitignore"       # large training state, never to be committed
    if not ignore.exists():
        atomic_write_text(ignore, "*\n")
    spec_path = out / "spec.json"
    if spec_path.exists():
        old = BaselineSpec.from_dict(json.loads(spec_path.read_text()))
        if dataclasses.replace(old, rows=spec.rows, latency_repeats=spec.latency_repeats,
                               latency_warmup=spec.latency_warmup, threads=spec.threads,
                               data_dir=spec.data_dir) != spec:
            raise ValueError(f"{out} holds an experiment with other settings ({spec_path}); use another folder")
    atomic_write_text(spec_path, json.dumps(spec.to_dict(), indent=1))
    X, y, Xt, yt, _ = load_data(spec.run_config())
    sizes = [int(X.shape[1]), *spec.hidden, int(max(y.max(), yt.max())) + 1]
    ctx = _Ctx(spec, out, X, y, Xt, yt, sizes, progress)
    # the recipe's training settings are part of the experiment: rows trained under another
    # default (an older motifcore) are not mixed with new ones
    training_path = out / "training.json"
    training = ctx.training
    if training_path.exists():
        if json.loads(training_path.read_text()) != training:
            raise ValueError(f"{out} holds rows trained with other settings ({training_path}: "
                             f"{training_path.read_text().strip()}); use another folder")
    elif any((out / "runs").glob("*.json")):
        raise ValueError(f"{out} holds rows trained before their training settings were recorded (an older "
                         "motifcore, whose default recipe differs); use another folder")
    atomic_write_text(training_path, json.dumps(training, indent=1))
    avail = available_rows(spec)
    notes: dict[str, str | None] = {r: (f"unavailable: {why}" if why else None) for r, why in avail.items()}
    for row in spec.rows:
        seeds = spec.seeds[:1] if row == "dense" else spec.seeds
        for seed in seeds:
            path = out / "runs" / f"{row}__s{seed}.json"
            if path.exists():
                continue
            rec: dict[str, Any] = {"row": row, "seed": seed, "table": ROWS[row].table, "label": ROWS[row].label}
            if avail[row] is not None:       # not stored: checked again on the next run
                log(f"{row} seed {seed}: unavailable: {avail[row]}")
                continue
            t0 = time.perf_counter()
            try:
                rec.update(_run_row(ctx, row, seed))
            except (ValueError, TrainingDivergedError) as exc:      # not stored: retried on the next run
                notes[row] = f"failed: {exc}"
                log(f"{row} seed {seed}: failed: {exc}")
                continue
            rec.update(status="ok", wall_s=time.perf_counter() - t0)
            atomic_write_text(path, json.dumps(rec, indent=1, default=float))
            log(f"{row} seed {seed}: accuracy {rec['test_accuracy']:.4f}, {rec['unique_params']:,} unique params")
    return notes
