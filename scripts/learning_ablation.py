"""Issue 22's ablation: one candidate change at a time against the default recipe, on every
development set, 3 seeds, a fixed budget.

Every candidate is the default as it was before issue 22 (``MotifSETClassifier`` with the
``motifcore`` recipe at lr 1e-3 and no input clipping, :data:`BASELINE`, pinned so that a rerun
measures the same thing after the defaults changed; the loaders' per-feature z-score) with
exactly one thing changed: the input preprocessing, the
learning rate, the optimizer (AdamW against Adam with L2 in the gradient), the warmup, dropout,
the batch size or the minimum number of steps (:data:`CANDIDATES` lists them; a few combinations of
single winners come last). The budgets are fixed:

* the scikit-feature sets (COIL20, Isolet, PCMAC, BASEHOCK, TOX-171, madelon), in full:
  ``MotifSETClassifier()``'s own budget (256-256 hidden, density 0.1, 20 epochs raised to at least
  1000 optimizer steps), on the seeded 2:1 split of ``datasets.load(name, seed=seed)``;
* Fashion-MNIST: a seeded subsample of ``--limit-train`` (default 10 000) training images (the
  preprocessing statistics are those of all 60 000, as ``motifcore train --limit-train`` does), the
  network of issue 22's MNIST check (``784-512-512-10``, density 0.1) for ``--fmnist-epochs``
  (default 6) epochs with no minimum of steps; scored on the full 10 000-image test set.

Each run's record (final test accuracy, fit seconds, final training loss, epochs, optimizer steps,
unique parameters, disconnected neurons at the end) is appended to a JSON-lines file as it finishes,
so an interrupted run resumes where it stopped; the table (mean ± sample std per set, mean delta
against the default, mean rank) is printed from that file. Run single-threaded:

    MOTIFCORE_DATA=../shared/data MOTIFCORE_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \\
        nice -n 19 python scripts/learning_ablation.py --out docs/results/learning/ablation/runs.jsonl
    python scripts/learning_ablation.py --out docs/results/learning/ablation/runs.jsonl --table-only

``--candidates a,b`` restricts (and orders) the candidates, ``--sets``/``--seeds`` the grid.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SETS = ["fashion-mnist", "skf:COIL20", "skf:Isolet", "skf:PCMAC", "skf:BASEHOCK", "skf:TOX-171", "skf:madelon"]
IMAGE_SETS = {"fashion-mnist", "mnist"}

#: name -> (input preprocessing, estimator settings that differ from the defaults, what it tests)
CANDIDATES: dict[str, tuple[str, dict[str, Any], str]] = {
    "default": ("zscore", {}, "the current default: per-feature z-score, motifcore recipe"),
    "prep-clip5": ("clip5", {}, "per-feature z-score clipped to [-5, 5]"),
    "prep-global": ("global", {}, "one global mean and standard deviation for all features"),
    "lr-3e-3": ("zscore", {"lr": 3e-3}, "lr 3e-3 (about 1e-3 / sqrt(density): sparse He weights are 1/sqrt(d) larger)"),
    "lr-2e-3": ("zscore", {"lr": 2e-3}, "lr 2e-3"),
    "adamw-0.01": ("zscore", {"optimizer": "adamw", "weight_decay": 0.01}, "AdamW, decoupled weight decay 0.01"),
    "adam-wd0": ("zscore", {"weight_decay": 0.0}, "Adam without weight decay"),
    "warmup-0": ("zscore", {"warmup": 0.0}, "no warmup (default 5 % of the steps)"),
    "dropout-0": ("zscore", {"dropout": 0.0}, "no dropout (default 0.2)"),
    "dropout-0.1": ("zscore", {"dropout": 0.1}, "dropout 0.1"),
    "batch-64": ("zscore", {"batch_size": 64}, "batch 64 (default 128): twice the steps per epoch"),
    "min-steps-500": ("zscore", {"min_steps": 500}, "at least 500 steps (default 1000; the small sets only)"),
    "static": ("zscore", {"evolution": "none"}, "no evolution (static sparse) on the same budget"),
    "prep-clip3": ("clip3", {}, "per-feature z-score clipped to [-3, 3]"),
    # combinations of the single changes that passed the rule (docs/results.md, section 5)
    "clip5+lr-3e-3": ("clip5", {"lr": 3e-3}, "clip5 and lr 3e-3"),
    "clip5+lr-3e-3+adamw": ("clip5", {"lr": 3e-3, "optimizer": "adamw", "weight_decay": 0.01},
                            "clip5, lr 3e-3 and AdamW 0.01"),
    "clip3+lr-3e-3": ("clip3", {"lr": 3e-3}, "clip3 and lr 3e-3"),
    # round two: single changes on top of the new default (clip3+lr-3e-3)
    "clip3+lr-3e-3+dropout-0.3": ("clip3", {"lr": 3e-3, "dropout": 0.3}, "the new default with dropout 0.3"),
    "clip3+lr-3e-3+dropout-0.5": ("clip3", {"lr": 3e-3, "dropout": 0.5}, "the new default with dropout 0.5"),
    # round three: decoupled weight decay on top of the default (L2 in Adam's gradient collapses
    # the incoming weights of rarely active neurons to zero on wide layers: docs/results.md)
    "clip3+lr-3e-3+adamw": ("clip3", {"lr": 3e-3, "optimizer": "adamw", "weight_decay": 0.01},
                            "the new default with AdamW 0.01"),
    "clip3+lr-3e-3+adamw-0.05": ("clip3", {"lr": 3e-3, "optimizer": "adamw", "weight_decay": 0.05},
                                 "the new default with AdamW 0.05"),
    "clip3+lr-3e-3+adamw-0.1": ("clip3", {"lr": 3e-3, "optimizer": "adamw", "weight_decay": 0.1},
                                "the new default with AdamW 0.1"),
    "clip3+lr-3e-3+adamw-0.3": ("clip3", {"lr": 3e-3, "optimizer": "adamw", "weight_decay": 0.3},
                                "round three's default with AdamW 0.3"),
    "clip3+lr-3e-3+adamw-1": ("clip3", {"lr": 3e-3, "optimizer": "adamw", "weight_decay": 1.0},
                              "round three's default with AdamW 1.0"),
    # round four: label smoothing on round three's default (the estimator's networks keep lr 3e-3 and
    # so decay 0.1: the decay rule of motifcore.defaults.DECOUPLED changes only wider networks)
    "clip3+lr-3e-3+adamw-0.1+ls-0.1": ("clip3", {"lr": 3e-3, "optimizer": "adamw", "weight_decay": 0.1,
                                                 "label_smoothing": 0.1},
                                       "round three's default with label smoothing 0.1"),
    "clip3+lr-3e-3+adamw-0.1+ls-0.2": ("clip3", {"lr": 3e-3, "optimizer": "adamw", "weight_decay": 0.1,
                                                 "label_smoothing": 0.2},
                                       "round three's default with label smoothing 0.2 (round four's default)"),
    # round four: SET's regrown value, on round three's default (AdamW 0.1) with SET's own schedule
    # (then evolution="set", today "set-epoch")
    "default3+set": ("clip3", {"lr": 3e-3, "optimizer": "adamw", "weight_decay": 0.1, "evolution": "set-epoch"},
                     "round three's default with SET, regrown blocks drawn fresh (He-uniform)"),
    "default3+set-zero": ("clip3", {"lr": 3e-3, "optimizer": "adamw", "weight_decay": 0.1, "evolution": "set-epoch",
                                    "regrow": "zero"},
                          "round three's default with SET, regrown blocks starting at zero"),
    # round five: SET's prune and regrowth on the update schedule Evci et al. (2020) give every
    # dynamic sparse method (a cosine-decayed fraction from 0.3 every 100 steps, none in the last
    # quarter): what evolution="set" became (run as the "cosine" schedule on every layer with He
    # regrowth, the same thing, before it did)
    "default3+set-cosine": ("clip3", {"lr": 3e-3, "optimizer": "adamw", "weight_decay": 0.1,
                                      "evolution": "set"},
                            "round three's default with SET, its fraction annealed as RigL's (He-uniform regrowth)"),
}
#: candidates that change more than one thing
COMBINATIONS = ("clip5+lr-3e-3", "clip5+lr-3e-3+adamw", "clip3+lr-3e-3", "clip3+lr-3e-3+dropout-0.3",
                "clip3+lr-3e-3+dropout-0.5", "clip3+lr-3e-3+adamw", "clip3+lr-3e-3+adamw-0.05",
                "clip3+lr-3e-3+adamw-0.1", "clip3+lr-3e-3+adamw-0.3", "clip3+lr-3e-3+adamw-1",
                "clip3+lr-3e-3+adamw-0.1+ls-0.1", "clip3+lr-3e-3+adamw-0.1+ls-0.2", "default3+set",
                "default3+set-zero", "default3+set-cosine")

#: the recipe before issue 22 changed it (to lr 3e-3, inputs clipped to 3 std, AdamW 0.1): every
#: candidate starts here, so a rerun measures what the stored rows measured
BASELINE: dict[str, Any] = {"lr": 1e-3, "input_clip": 0.0, "optimizer": "adam", "weight_decay": 5e-4,
                             "label_smoothing": 0.0}
#: settings fixed per set (they win over a candidate's: the budget does not move)
FMNIST_BUDGET = {"hidden_sizes": (512, 512), "min_steps": 0}


def preprocess(kind: str, X: np.ndarray, Xt: np.ndarray, image: bool) -> tuple[np.ndarray, np.ndarray]:
    """Float32 copies of raw ``X``/``Xt`` preprocessed with training statistics; ``"zscore"`` is
    bit-for-bit what ``motifcore.datasets.load`` returns."""
    from motifcore.data.preprocess import zscore_features

    A, B = np.array(X, dtype=np.float32, order="C"), np.array(Xt, dtype=np.float32, order="C")
    if image:
        A /= np.float32(255.0)
        B /= np.float32(255.0)
    if kind in ("zscore", "clip5", "clip3"):
        zscore_features(A, B)
        if kind != "zscore":
            c = float(kind[4:])
            np.clip(A, -c, c, out=A)
            np.clip(B, -c, c, out=B)
    elif kind == "global":
        mean, std = float(A.mean(dtype=np.float64)), float(A.std(dtype=np.float64))
        std = std if std > 1e-8 else 1.0
        A = (A - np.float32(mean)) / np.float32(std)
        B = (B - np.float32(mean)) / np.float32(std)
    else:
        raise ValueError(f"unknown preprocessing {kind!r}")
    return np.ascontiguousarray(A, dtype=np.float32), np.ascontiguousarray(B, dtype=np.float32)


def settings(name: str, candidate: str, fmnist_epochs: int) -> tuple[str, dict[str, Any]]:
    """(preprocessing, estimator keyword arguments) of ``candidate`` on set ``name``."""
    prep, kw, _ = CANDIDATES[candidate]
    kw = {**BASELINE, **kw}
    if name == "fashion-mnist":
        kw.update(FMNIST_BUDGET, epochs=fmnist_epochs)
    return prep, kw


def run(X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray, kw: dict[str, Any],
        seed: int) -> dict[str, Any]:
    from motifcore import MotifSETClassifier

    clf = MotifSETClassifier(random_state=seed, n_jobs=1, **kw)
    t0 = time.perf_counter()
    clf.fit(X, y)
    dt = time.perf_counter() - t0
    last = clf.history_.rows[-1]
    return {"accuracy": float(clf.score(Xt, yt)), "fit_seconds": dt, "final_train_loss": clf.loss_curve_[-1],
            "epochs": clf.n_iter_, "steps": int(last["steps"]), "unique_params": int(clf.model_.n_params),
            "disconnected": last["disconnected"]}


def load_done(path: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    done: dict[tuple[str, str, int], dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done[(r["set"], r["candidate"], int(r["seed"]))] = r
    return done


def table(done: dict[tuple[str, str, int], dict[str, Any]], sets: list[str], candidates: list[str]) -> str:
    """Mean ± sample std per set; mean delta against ``default`` (points, over the sets both have);
    mean rank (1 = best mean on a set, over the candidates with all seeds on every set); sets where
    the candidate is below the default by more than the larger of the two sample stds."""
    lists: dict[tuple[str, str], list[float]] = {}
    for (s, c, _), r in sorted(done.items()):
        lists.setdefault((s, c), []).append(r["accuracy"] * 100)
    acc = {k: np.array(v) for k, v in lists.items()}
    complete = [c for c in candidates if all(len(acc.get((s, c), [])) >= 3 for s in sets)]
    ranks: dict[str, list[float]] = {c: [] for c in complete}
    for s in sets:
        means = {c: acc[(s, c)].mean() for c in complete}
        order = sorted(means, key=lambda c: -means[c])
        for c in complete:       # ties share the mean of their ranks
            tied = [i + 1 for i, o in enumerate(order) if means[o] == means[c]]
            ranks[c].append(float(np.mean(tied)))
    head = ["candidate"] + [s.replace("skf:", "") for s in sets] + ["mean Δ vs default", "mean rank",
                                                                     "sets worse by > 1 std"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for c in candidates:
        cells, deltas, worse = [], [], []
        for s in sets:
            a = acc.get((s, c))
            if a is None or not len(a):
                cells.append("-")
                continue
            sd = float(a.std(ddof=1)) if len(a) > 1 else 0.0     # sample std, as every page of docs/
            cells.append(f"{a.mean():.2f} ± {sd:.2f}" + ("" if len(a) >= 3 else f" (n={len(a)})"))
            d = acc.get((s, "default"))
            if d is not None and len(d):
                deltas.append(a.mean() - d.mean())
                sd_d = float(d.std(ddof=1)) if len(d) > 1 else 0.0
                if a.mean() < d.mean() - max(sd, sd_d):
                    worse.append(s.replace("skf:", ""))
        delta = f"{np.mean(deltas):+.2f}" if deltas and c != "default" else "-"
        rank = f"{np.mean(ranks[c]):.2f}" if c in ranks else "-"
        lines.append(f"| {c} | " + " | ".join(cells) + f" | {delta} | {rank} | {', '.join(worse) or '-'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--candidates", default=",".join(CANDIDATES))
    p.add_argument("--limit-train", type=int, default=10000, help="Fashion-MNIST training subsample")
    p.add_argument("--fmnist-epochs", type=int, default=6)
    p.add_argument("--out", default="learning_ablation.jsonl", help="JSON-lines records (appended, resumable)")
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args(argv)
    sets = [s for s in args.sets.split(",") if s]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    candidates = [c for c in args.candidates.split(",") if c]
    unknown = [c for c in candidates if c not in CANDIDATES]
    if unknown:
        p.error(f"unknown candidates {unknown}; known: {', '.join(CANDIDATES)}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = load_done(out)
    if not args.table_only:
        import motifcore as mc

        for c in candidates:
            for name in sets:
                for seed in seeds:
                    if (name, c, seed) in done:
                        continue
                    prep, kw = settings(name, c, args.fmnist_epochs)
                    # a candidate that is the default on this set (e.g. a minimum of steps the budget
                    # never reaches) is not run again: the record says whose run it is
                    same = next((c2 for c2 in candidates if c2 != c and (name, c2, seed) in done
                                 and settings(name, c2, args.fmnist_epochs) == (prep, kw)), None)
                    if same is not None:
                        rec = dict(done[(name, same, seed)], candidate=c, same_as=same)
                    else:
                        X, y, Xt, yt = mc.datasets.load(name, seed=seed, normalize=False)
                        X, Xt = preprocess(prep, X, Xt, name in IMAGE_SETS)
                        if name == "fashion-mnist":
                            X, y = mc.datasets.subsample(X, y, args.limit_train, seed)
                        rec = {"set": name, "candidate": c, "seed": seed, "preprocessing": prep,
                               "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()},
                               "n_train": int(X.shape[0]), "n_test": int(Xt.shape[0]),
                               **run(X, y, Xt, yt, kw, seed)}
                    with open(out, "a") as f:
                        f.write(json.dumps(rec) + "\n")
                    done[(name, c, seed)] = rec
                    print(f"{c:<14} {name:<16} seed {seed}: {rec['accuracy'] * 100:.2f} % "
                          f"({rec['fit_seconds']:.1f} s, loss {rec['final_train_loss']:.3f})", file=sys.stderr,
                          flush=True)
    print(table(done, sets, candidates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
