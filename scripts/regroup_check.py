"""How much of a trained network a motif switch keeps: test accuracy right after
``MotifMLP.regroup``, before any further training (docs/curriculum.md).

Trains ``784-H-H-H-10`` at m = 1 on Fashion-MNIST with the default recipe for ``--epochs`` of a
``--of``-epoch run (the state a curriculum switching at that point would regroup), then regroups
copies of it into each of ``--targets`` with the density budget and with every covered block kept,
each with and without ``keep_norm``, and prints the test accuracy of each copy. One seed; seconds
are not measured.

    MOTIFCORE_DATA=/path/to/data python scripts/regroup_check.py --hidden 1000 --epochs 5 --of 10
"""

from __future__ import annotations

import argparse
import json
import sys

import motifcore as mc
from motifcore.train.callbacks import Callback


class _StopAt(Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch, logs):  # type: ignore[no-untyped-def]
        return epoch >= self.epoch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=5, help="epochs trained at m = 1 before the switch")
    p.add_argument("--of", type=int, default=10, help="length of the run the schedules are laid out for")
    p.add_argument("--targets", nargs="+", type=int, default=[2, 4])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    X, y, Xt, yt = mc.datasets.load("fashion-mnist")
    sizes = [X.shape[1], args.hidden, args.hidden, args.hidden, 10]
    model = mc.MotifMLP(sizes, motif=1, seed=args.seed, num_threads=args.threads)
    trainer = mc.Trainer(model, epochs=args.of, seed=args.seed, progress=False, callbacks=[_StopAt(args.epochs)])
    trainer.fit(X, y, Xt, yt)
    state = model.get_state()
    out = {"sizes": sizes, "trained_epochs": args.epochs, "of": args.of, "seed": args.seed,
           "m1_accuracy": model.evaluate(Xt, yt)[1], "after_switch": []}
    print(f"m = 1 after {args.epochs} of {args.of} epochs: test accuracy {out['m1_accuracy']:.4f}")
    for target in args.targets:
        for budget in ("density", "covered"):
            for keep_norm in (False, True):
                copy = mc.MotifMLP(sizes, motif=1, seed=args.seed, num_threads=args.threads)
                copy.set_state(state)
                report = copy.regroup(target, budget=budget, keep_norm=keep_norm)
                acc = copy.evaluate(Xt, yt)[1]
                out["after_switch"].append({"m": target, "budget": budget, "keep_norm": keep_norm, "accuracy": acc,
                                            "blocks": copy.n_blocks, "scale": [r["scale"] for r in report]})
                print(f"m = 1 -> {target}, budget {budget:8s} keep_norm {keep_norm!s:5s}: test accuracy {acc:.4f} "
                      f"({copy.n_blocks:,} blocks)")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
