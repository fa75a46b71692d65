"""Command line: ``motifcore train | evaluate | info`` (also ``python -m motifcore``).

User mistakes (unknown dataset, bad flag values, missing files) print ONE line on stderr starting
with ``motifcore: error:`` and exit with status 2; set ``MOTIFCORE_DEBUG=1`` to get the traceback.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from .recipes import DEFAULT_RECIPE, RECIPES, recipe

__all__ = ["main"]

DEFAULT_EPOCHS = 30
DEFAULT_HIDDEN = [3000, 3000, 3000]
_EXIT_USAGE = 2
_EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A user mistake reported as one ``motifcore: error:`` line."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line (no usage dump) and never calls sys.exit itself
    in a way that escapes :func:`main`."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


# ------------------------------------------------------------------------------------------------
# argument types
# ------------------------------------------------------------------------------------------------


def _int_min(minimum: int, what: str) -> Any:
    def parse(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {s!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {v}")
        return v
    return parse


def _float_in(lo: float, hi: float, what: str, lo_open: bool = False, hi_open: bool = False) -> Any:
    def parse(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {s!r}") from None
        ok = math.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
        if not ok:
            lb, rb = ("(" if lo_open else "["), (")" if hi_open else "]")
            hs = "inf" if hi == math.inf else f"{hi:g}"
            raise argparse.ArgumentTypeError(f"must be in {lb}{lo:g}, {hs}{rb}, got {s}")
        return v
    return parse


def _tokens(values: Sequence[str]) -> list[str]:
    return [t for v in values for t in re.split(r"[,\s]+", v.strip()) if t]


def _parse_hidden(values: Sequence[str]) -> list[int]:
    out = []
    for t in _tokens(values):
        try:
            v = int(t)
        except ValueError:
            raise UsageError(f"argument --hidden: widths must be integers, got {t!r}") from None
        if v < 1:
            raise UsageError(f"argument --hidden: widths must be >= 1, got {v}")
        out.append(v)
    if not out:
        raise UsageError("argument --hidden: give at least one width")
    return out


def _parse_motif(values: Sequence[str], n_layers: int) -> int | list[Any]:
    """``2`` (hidden layers, output m = 1) or one entry per layer; ``AxB`` is (m_out, m_in)."""
    items: list[Any] = []
    for t in _tokens(values):
        try:
            if "x" in t.lower():
                a, b = t.lower().split("x")
                m: Any = (int(a), int(b))
                ok = m[0] >= 1 and m[1] >= 1
            else:
                m = int(t)
                ok = m >= 1
        except ValueError:
            raise UsageError(f"argument --motif: expected a positive integer or AxB, got {t!r}") from None
        if not ok:
            raise UsageError(f"argument --motif: motif sizes must be >= 1, got {t!r}")
        items.append(m)
    if not items:
        raise UsageError("argument --motif: give a motif size")
    if len(items) == 1 and isinstance(items[0], int):
        return items[0]
    if len(items) != n_layers:
        raise UsageError(f"argument --motif: {len(items)} per-layer motif sizes for {n_layers} layers "
                         f"(give one size, or exactly {n_layers})")
    return items


def _motif_tag(motif: int | list[Any]) -> str:
    if isinstance(motif, int):
        return str(motif)
    return "-".join(f"{m[0]}x{m[1]}" if isinstance(m, tuple) else str(m) for m in motif)


def _dataset_tag(name: str) -> str:
    if ":" in name:
        kind, arg = name.split(":", 1)
        name = f"{kind}-{Path(arg).stem}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


# ------------------------------------------------------------------------------------------------
# parser
# ------------------------------------------------------------------------------------------------

_TRAIN_RUN_FLAGS = ("dataset", "hidden", "motif", "density", "epsilon", "epochs", "recipe", "batch_size", "lr",
                    "lr_schedule", "warmup", "step_size", "gamma", "optimizer", "momentum", "weight_decay",
                    "max_grad_norm", "schedule", "regrow", "evolve_layers", "dropout", "eval_every", "seed",
                    "limit_train", "checkpoint_every")
DEFAULT_MIN_STEPS = 1000


def _warmup(s: str) -> int | float:
    """'5' -> 5 epochs; '0.05' -> 5 % of the run's steps."""
    try:
        return int(s)
    except ValueError:
        pass
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer (epochs) or a fraction in [0, 1), got {s!r}") from None
    if not (0.0 <= v < 1.0):
        raise argparse.ArgumentTypeError(f"a fractional warmup must be in [0, 1), got {s}")
    return v


def _build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = _Parser(prog="motifcore", description="Sparse (SET / Motif-SET) MLP training on CPUs.")
    p.add_argument("--version", action="version", version=f"motifcore {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

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
    t.add_argument("--density", type=_float_in(0, 1, "--density", lo_open=True),
                   help="block density of every layer (default: 0.1)")
    t.add_argument("--epsilon", type=_float_in(0, math.inf, "--epsilon", lo_open=True),
                   help="SET epsilon density parameterisation (overrides --density)")
    t.add_argument("--epochs", type=_int_min(1, "--epochs"),
                   help=f"training epochs (default: {DEFAULT_EPOCHS}, or more on small data so that the run "
                        f"takes at least {DEFAULT_MIN_STEPS} steps; the paper uses 300)")
    t.add_argument("--recipe", choices=tuple(RECIPES),
                   help=f"named settings for every training flag not given (default: {DEFAULT_RECIPE}; "
                        "see motifcore.recipes)")
    t.add_argument("--batch-size", type=_int_min(1, "--batch-size"), help="batch size (default: 128)")
    t.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), help="optimizer (recipe default)")
    t.add_argument("--lr", type=_float_in(0, math.inf, "--lr", lo_open=True),
                   help="peak learning rate (recipe default)")
    t.add_argument("--momentum", type=_float_in(0, 1, "--momentum", hi_open=True), help="SGD momentum (default: 0.9)")
    t.add_argument("--weight-decay", type=_float_in(0, math.inf, "--weight-decay"),
                   help="weight decay (default: 5e-4)")
    t.add_argument("--max-grad-norm", type=_float_in(0, math.inf, "--max-grad-norm"),
                   help="clip each step's gradient to this global L2 norm, 0 = off (recipe default)")
    t.add_argument("--lr-schedule", choices=("cosine", "constant", "step"),
                   help="learning-rate schedule (default: cosine)")
    t.add_argument("--warmup", type=_warmup,
                   help="lr warmup of 'cosine': epochs (an integer) or a fraction of the run such as 0.05 "
                        "(recipe default)")
    t.add_argument("--step-size", type=_int_min(1, "--step-size"),
                   help="'step' schedule: epochs between lr decays (default: 30)")
    t.add_argument("--gamma", type=_float_in(0, 1, "--gamma", lo_open=True),
                   help="'step' schedule: lr decay factor (default: 0.1)")
    t.add_argument("--schedule", choices=("cosine", "paper", "set", "none"),
                   help="SET evolution schedule: cosine (every 100 steps, zeta from 0.3 decayed by a cosine, "
                        "none in the last quarter of the run), paper (zeta 0.2 every 10 epochs after a 5-epoch "
                        "warmup, i.e. after epochs 15, 25, ...; cosine decay over the last third), set (zeta 0.3 "
                        "after every epoch), none (static sparse). Never after the last epoch (recipe default)")
    t.add_argument("--regrow", choices=("zero", "he", "pruned"),
                   help="value of regrown blocks: zero, a fresh He-uniform draw, or uniform within the "
                        "largest pruned |weight| (recipe default)")
    t.add_argument("--evolve-layers", choices=("all", "hidden", "input"),
                   help="weight layers that evolution changes: all, hidden (all but the output layer) or input "
                        "(the first layer only) (recipe default)")
    t.add_argument("--dropout", type=_float_in(0, 1, "--dropout", hi_open=True),
                   help="dropout rate (recipe default)")
    t.add_argument("--eval-every", type=_int_min(1, "--eval-every"),
                   help="evaluate on the test split every N epochs (default: 1)")
    t.add_argument("--seed", type=_int_min(0, "--seed"), help="seed of init, shuffling, evolution (default: 0)")
    t.add_argument("--threads", type=_int_min(1, "--threads"), help="engine threads (default: all)")
    t.add_argument("--limit-train", type=_int_min(1, "--limit-train"), metavar="N",
                   help="train on a seeded random subset of N samples (quick runs)")
    t.add_argument("--checkpoint-every", type=_int_min(1, "--checkpoint-every"), metavar="N",
                   help="write checkpoint.npz every N epochs (default: 1)")
    t.add_argument("--out", help="output folder (default: runs/<dataset>-m<motif>-<timestamp>)")
    t.add_argument("--resume", metavar="PATH",
                   help="continue the run saved in this checkpoint.npz (its settings are reused)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("evaluate", help="evaluate a checkpoint on a dataset")
    e.add_argument("--checkpoint", required=True, help="checkpoint.npz to evaluate")
    e.add_argument("--dataset", help="dataset name (default: the one the run was trained on)")
    e.add_argument("--data-dir", help="folder searched first for the dataset files")
    e.add_argument("--split", choices=("test", "train"), default="test", help="split to score (default: test)")
    e.add_argument("--batch-size", type=_int_min(1, "--batch-size"), default=1024)
    e.add_argument("--threads", type=_int_min(1, "--threads"))
    e.add_argument("--json", action="store_true", help="print the result as JSON")

    i = sub.add_parser("info", help="build information, threads and datasets found")
    i.add_argument("--data-dir", help="folder searched first for datasets")
    i.add_argument("--json", action="store_true", help="print as JSON")
    from . import report as _report  # 'sweep' and 'report' live in their own modules
    from . import sweep as _sweep
    _sweep.add_cli(sub)
    _report.add_cli(sub)
    return p


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def _load_data(name: str, data_dir: str | None, seed: int) -> tuple[np.ndarray, ...]:
    from . import datasets

    return datasets.load(name, data_dir=data_dir, seed=seed)


def _subsample(X: np.ndarray, y: np.ndarray, limit: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if limit is None or limit >= X.shape[0]:
        return X, y
    idx = np.sort(np.random.default_rng(np.random.SeedSequence([seed, 0x11A17])).permutation(X.shape[0])[:limit])
    return np.ascontiguousarray(X[idx]), np.ascontiguousarray(y[idx])


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    os.replace(tmp, path)


def _default_out(dataset: str, motif: int | list[Any]) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{_dataset_tag(dataset)}-m{_motif_tag(motif)}-{stamp}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


def _fmt(v: float | None, spec: str = ".4f") -> str:
    return "-" if v is None else format(v, spec)


def _summary(trainer: Any, run: dict[str, Any]) -> dict[str, Any]:
    model, h = trainer.model, trainer.history
    best = h.best("val_accuracy")
    last = h.last or {}
    times = [t for t in h["train_time"] if t is not None]
    return {
        "dataset": run["dataset"],
        "epochs_completed": trainer.epoch,
        "epochs": trainer.epochs,
        "stopped_early": trainer.stopped_early,
        "final_accuracy": last.get("val_accuracy"),
        "final_loss": last.get("val_loss"),
        "final_train_loss": last.get("train_loss"),
        "best_accuracy": best["val_accuracy"] if best else None,
        "best_epoch": best["epoch"] if best else None,
        "mean_seconds_per_epoch": float(np.mean(times)) if times else None,
        "total_train_seconds": float(np.sum(times)) if times else 0.0,
        "total_evolution_seconds": float(np.sum([t or 0.0 for t in h["evolution_time"]])),
        "unique_params": model.n_params,
        "edges": model.n_edges,
        "active_blocks": model.n_blocks,
        "block_macs_per_sample": model.macs_per_sample,
        "dense_equivalent_params": model.dense_params,
        "sizes": model.sizes,
        "motif": model.config["motif"],
        "n_train": run["n_train"],
        "n_test": run["n_test"],
    }


def _printer(total: int) -> Any:
    from tqdm.auto import tqdm

    from .trainer import Callback

    class EpochPrinter(Callback):
        def on_epoch_end(self, trainer: Any, epoch: int, logs: dict[str, Any]) -> bool | None:
            line = (f"epoch {epoch:>{len(str(total))}}/{total}  loss {logs['train_loss']:.4f}  "
                    f"test_loss {_fmt(logs['val_loss'])}  test_acc {_fmt(logs['val_accuracy'])}  "
                    f"{logs['train_time']:.2f} s/epoch")
            if logs.get("zeta"):
                line += f"  (evolved zeta={logs['zeta']:.3f}, {sum(logs['pruned'])} blocks)"
            tqdm.write(line, file=sys.stdout)
            sys.stdout.flush()
            return None

    return EpochPrinter()


# ------------------------------------------------------------------------------------------------
# commands
# ------------------------------------------------------------------------------------------------


def _cmd_train(args: argparse.Namespace) -> int:
    from . import __version__, build_info
    from ._model import MotifMLP
    from .checkpoint import read_metadata
    from .trainer import Checkpoint, JSONLLogger, Trainer

    progress = not args.no_progress
    if args.resume:
        given = [f"--{f.replace('_', '-')}" for f in _TRAIN_RUN_FLAGS if getattr(args, f) is not None]
        if given:
            raise UsageError(f"--resume reuses the run's own settings; drop {', '.join(given)}")
        meta = read_metadata(args.resume)
        run = (meta.get("extra") or {}).get("cli")
        if not run or meta.get("trainer") is None:
            raise UsageError(f"{args.resume} was not written by 'motifcore train'; resume it with "
                             "motifcore.Trainer.from_checkpoint")
        if args.data_dir is not None:
            run["data_dir"] = args.data_dir
        out = Path(args.out) if args.out else Path(args.resume).resolve().parent
        X, y, Xt, yt = _load_data(run["dataset"], run["data_dir"], run["seed"])
        X, y = _subsample(X, y, run["limit_train"], run["seed"])
        out.mkdir(parents=True, exist_ok=True)
        callbacks = [JSONLLogger(out / "metrics.jsonl"),
                     Checkpoint(out / "checkpoint.npz", every=run["checkpoint_every"], extra={"cli": run}),
                     _printer(meta["trainer"]["epochs"])]
        trainer = Trainer.from_checkpoint(args.resume, callbacks=callbacks, progress=progress,
                                          num_threads=args.threads)
        print(trainer.model.summary())
        print(f"resuming {run['dataset']} from epoch {trainer.epoch}/{trainer.epochs} -> {out}")
    else:
        if args.dataset is None:
            raise UsageError("train needs --dataset (or --resume PATH)")
        hidden = _parse_hidden(args.hidden) if args.hidden else list(DEFAULT_HIDDEN)
        motif = _parse_motif(args.motif, len(hidden) + 1) if args.motif else 1
        seed = 0 if args.seed is None else args.seed
        X, y, Xt, yt = _load_data(args.dataset, args.data_dir, seed)
        n_total = X.shape[0]
        X, y = _subsample(X, y, args.limit_train, seed)
        n_classes = int(max(y.max(), yt.max())) + 1
        model = MotifMLP([X.shape[1], *hidden, n_classes], motif=motif,
                         density=0.1 if args.density is None else args.density, epsilon=args.epsilon,
                         seed=seed, num_threads=args.threads)
        out = Path(args.out) if args.out else _default_out(args.dataset, motif)
        out.mkdir(parents=True, exist_ok=True)
        run = {
            "dataset": args.dataset, "data_dir": args.data_dir, "hidden": hidden,
            "motif": [list(m) if isinstance(m, tuple) else m for m in motif] if isinstance(motif, list) else motif,
            "seed": seed, "limit_train": args.limit_train, "n_train": int(X.shape[0]),
            "n_train_available": int(n_total), "n_test": int(Xt.shape[0]),
            "checkpoint_every": args.checkpoint_every or 1,
        }
        recipe_name = args.recipe or DEFAULT_RECIPE
        batch = args.batch_size or recipe(recipe_name)["batch_size"]
        epochs = args.epochs or max(DEFAULT_EPOCHS, -(-DEFAULT_MIN_STEPS // -(-run["n_train"] // batch)))
        callbacks = [JSONLLogger(out / "metrics.jsonl"),
                     Checkpoint(out / "checkpoint.npz", every=run["checkpoint_every"], extra={"cli": run}),
                     _printer(epochs)]
        trainer = Trainer(
            model, epochs=epochs, recipe=recipe_name, batch_size=batch, lr=args.lr, optimizer=args.optimizer,
            momentum=args.momentum, weight_decay=args.weight_decay, max_grad_norm=args.max_grad_norm,
            lr_schedule=args.lr_schedule, warmup=args.warmup,
            step_size=args.step_size or 30, gamma=0.1 if args.gamma is None else args.gamma,
            dropout=args.dropout, evolution=args.schedule, regrow=args.regrow, evolve_layers=args.evolve_layers,
            eval_every=args.eval_every or 1, seed=seed, callbacks=callbacks, progress=progress)
        config = {"command": "train", "run": run, "trainer": trainer.config, "model": model.config,
                  "threads": model.num_threads, "out": str(out), "motifcore_version": __version__,
                  "build_info": build_info(),
                  "argv": sys.argv[1:] if args.argv is None else list(args.argv)}
        _write_json(out / "config.json", config)
        print(model.summary())
        print(f"training on {run['n_train']} samples of {args.dataset} for {trainer.epochs} epochs "
              f"({model.num_threads} threads) -> {out}")

    try:
        trainer.fit(X, y, Xt, yt)
    except KeyboardInterrupt:
        ck = out / "checkpoint.npz"
        hint = (f"continue with: motifcore train --resume {ck}" if ck.exists()
                else "no checkpoint was written yet")
        print(f"motifcore: interrupted after epoch {trainer.epoch}; {hint}", file=sys.stderr)
        return _EXIT_INTERRUPTED
    summary = _summary(trainer, run)
    _write_json(out / "summary.json", summary)
    print(f"final test accuracy {_fmt(summary['final_accuracy'])}, best {_fmt(summary['best_accuracy'])} "
          f"(epoch {summary['best_epoch']}), {_fmt(summary['mean_seconds_per_epoch'], '.3f')} s/epoch "
          f"(training only); unique params {summary['unique_params']:,}, edges {summary['edges']:,}, "
          f"block MACs/sample {summary['block_macs_per_sample']:,}")
    print(f"wrote {out}/{{config.json, metrics.jsonl, checkpoint.npz, summary.json}}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint

    ck = load_checkpoint(args.checkpoint, num_threads=args.threads)
    run = (ck.extra or {}).get("cli") or {}
    name = args.dataset or run.get("dataset")
    if name is None:
        raise UsageError(f"{args.checkpoint} does not record its dataset; pass --dataset")
    data_dir = args.data_dir if args.data_dir is not None else run.get("data_dir")
    X, y, Xt, yt = _load_data(name, data_dir, int(run.get("seed", 0)))
    Xe, ye = (Xt, yt) if args.split == "test" else (X, y)
    model = ck.model
    if Xe.shape[1] != model.n_features:
        raise UsageError(f"dataset {name} has {Xe.shape[1]} features, the checkpoint's model expects "
                         f"{model.n_features}")
    loss, acc = model.evaluate(Xe, ye, batch_size=args.batch_size)
    res = {"checkpoint": str(args.checkpoint), "dataset": name, "split": args.split, "n_samples": int(Xe.shape[0]),
           "accuracy": acc, "loss": loss, "epoch": ck.epoch}
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{name} ({args.split}, {Xe.shape[0]} samples): accuracy {acc:.4f}, loss {loss:.4f} "
              f"[checkpoint epoch {ck.epoch}]")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from . import __version__, build_info, datasets

    info = build_info()
    found = {k: (str(v) if v is not None else None) for k, v in datasets.available(args.data_dir).items()}
    env_threads = os.environ.get("MOTIFCORE_NUM_THREADS")
    if args.json:
        print(json.dumps({"version": __version__, "build_info": info, "cpu_count": os.cpu_count(),
                          "MOTIFCORE_NUM_THREADS": env_threads, "datasets": found}, indent=2))
        return 0
    print(f"motifcore {__version__}")
    for key, value in info.items():
        print(f"  {key}: {value}")
    print(f"  cpu_count: {os.cpu_count()}")
    print(f"  MOTIFCORE_NUM_THREADS: {env_threads or '(unset)'}")
    print("datasets:")
    for k, v in found.items():
        print(f"  {k:<16} {v or 'not found'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``motifcore`` command; returns the exit status."""
    parser = _build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help / --version
            return int(exc.code or 0)
        args.argv = None if argv is None else list(argv)
        if args.command is None:
            parser.print_help()
            return _EXIT_USAGE
        cmd = getattr(args, "func", None) or {"train": _cmd_train, "evaluate": _cmd_evaluate,
                                              "info": _cmd_info}[args.command]
        return cmd(args)
    except KeyboardInterrupt:
        print("motifcore: interrupted", file=sys.stderr)
        return _EXIT_INTERRUPTED
    except (UsageError, ValueError, TypeError, OSError, FloatingPointError) as exc:
        if os.environ.get("MOTIFCORE_DEBUG"):
            raise
        msg = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, FileNotFoundError) and exc.filename and str(exc.filename) not in msg:
            msg = f"{msg}: {exc.filename}"
        print(f"motifcore: error: {msg}", file=sys.stderr)
        return _EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
