"""One training step of a sparse MLP in PyTorch: motifcore.torch.MotifLinear against the engine's
fused MotifMLP.train_step, SparseLab's SparseLinear and SparseProp's SparseLinear (issue 20).

The step: forward, softmax cross-entropy, backward, SGD (momentum 0.9, weight decay 5e-4,
lr 0.01) of ``784-3000-3000-3000-10`` at density 0.1 in every layer, batch 128, m = 1 (every
library's layer is edge-sparse). MotifLinear, MotifMLP and SparseProp hold the same pattern and
weights (MotifLinear through ``from_mlp``, SparseProp through ``bench/baselines.py``); SparseLab
draws its own pattern at the same density. The torch paths step with ``torch.optim.SGD``.

At each thread count, the implementations run interleaved (``repeats`` rounds of ``steps`` steps
each, after ``warmup`` steps); each row is the best round's mean step time. Each round starts after
a pause (``--settle-ms``) longer than the spin of torch's idle OpenMP threads after the previous
round's last op, which would otherwise run beside it. Run::

    python scripts/torch_layers.py                   # 1 and 2 threads, the paper network
    python scripts/torch_layers.py --sizes 784-1000-1000-10 --threads 1 --repeats 3
    python scripts/torch_layers.py --omp-wait-policy passive   # torch's idle OpenMP threads sleep

Three MotifLinear rows: ``torch.optim.SGD`` with torch's ops on ``threads`` threads (the plain
setup), the setup docs/torch.md recommends for any torch optimizer (``SGD(fused=True)``,
``torch.set_num_threads(1)``: the engine's pool runs the layers on ``threads`` threads, and torch's
OpenMP team, which spins after each of its parallel ops, never competes with it for the cores), and
``motifcore.torch.SGDInBackward`` (the same SGD made inside each layer's backward by the engine, as
``train_step`` makes it; torch on one thread); then the last two again with the layers in a
``motifcore.torch.MotifSequential`` (what ``from_mlp`` returns: the whole run of layers in one engine
call per direction) instead of an ``nn.Sequential``. Also prints where a
MotifLinear step goes (forward, loss, backward, optimizer, zero_grad) and the issue's target
ratios, in wall time and in the process's CPU time (steadier at 1 thread on a busy machine). No
assertions: a benchmark, not a test. On a shared machine the numbers are indicative only.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Callable, Dict, List

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))  # references.py

LR, MOMENTUM, WD = 0.01, 0.9, 5e-4
RECOMMENDED = "MotifLinear + SGD(fused=True), torch 1 thr"
IN_BACKWARD = "MotifLinear + SGDInBackward, torch 1 thr"
SEQ_FUSED = "MotifSequential + SGD(fused=True), torch 1 thr"
SEQ_IN_BACKWARD = "MotifSequential + SGDInBackward, torch 1 thr"


def build(torch: Any, sizes: List[int], density: float, threads: int, seed: int = 0) -> Dict[str, Callable[..., Any]]:
    """Step functions ``f(x_np, y_np, x_t, y_t)`` of every available implementation."""
    import references as bl
    from motifcore import MotifMLP
    from motifcore.torch import from_mlp

    model = MotifMLP(sizes, motif=1, density=density, seed=seed, num_threads=threads)
    steps: Dict[str, Callable[..., Any]] = {}
    steps["MotifMLP.train_step"] = lambda xn, yn, xt, yt: model.train_step(xn, yn, lr=LR, momentum=MOMENTUM,
                                                                           weight_decay=WD)
    def layers() -> Any:   # the MotifLinear layers in a plain nn.Sequential: one autograd node per layer
        return torch.nn.Sequential(*from_mlp(model, num_threads=threads))

    # MotifLinear as a user would first write it: torch.optim.SGD, torch's ops on torch's threads
    steps["MotifLinear + SGD"] = _torch_step(torch, layers())
    # the setup docs/torch.md recommends: torch's own ops (loss, optimizer) on one thread, so that
    # the engine's pool and torch's OpenMP team never wait on the same cores, and SGD's fused
    # kernel (one pass over the parameters instead of a few)
    steps[RECOMMENDED] = _torch_step(torch, layers(), fused=True)
    steps[RECOMMENDED].torch_threads = 1  # type: ignore[attr-defined]
    # motifcore.torch.SGDInBackward: the same SGD, made inside each MotifLinear's backward by the engine
    from motifcore.torch import SGDInBackward

    steps[IN_BACKWARD] = _torch_step(torch, layers(), opt_class=SGDInBackward)
    steps[IN_BACKWARD].torch_threads = 1  # type: ignore[attr-defined]
    # the same layers in a motifcore.torch.MotifSequential (what from_mlp returns): one engine call
    # per direction for the whole run of layers, no row-major tensors between them
    steps[SEQ_FUSED] = _torch_step(torch, from_mlp(model, num_threads=threads), fused=True)
    steps[SEQ_FUSED].torch_threads = 1  # type: ignore[attr-defined]
    steps[SEQ_IN_BACKWARD] = _torch_step(torch, from_mlp(model, num_threads=threads), opt_class=SGDInBackward)
    steps[SEQ_IN_BACKWARD].torch_threads = 1  # type: ignore[attr-defined]
    try:
        import sparselab

        mods: List[Any] = []
        for i in range(len(sizes) - 1):
            mods.append(sparselab.SparseLinear(sizes[i], sizes[i + 1], sparsity=1.0 - density))
            if i < len(sizes) - 2:
                mods.append(torch.nn.ReLU())
        steps["sparselab.SparseLinear"] = _torch_step(torch, torch.nn.Sequential(*mods))
    except ImportError:
        print("sparselab not installed: skipped")
    try:
        steps["sparseprop SparseLinear"] = _torch_step(torch, bl.sparseprop_mlp(torch, model))
    except ImportError:
        print("sparseprop not installed: skipped")
    return steps


def _torch_step(torch: Any, net: Any, opt_class: Any = None, **opt_args: Any) -> Callable[..., float]:
    opt = (opt_class or torch.optim.SGD)(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD, **opt_args)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(xn: Any, yn: Any, xt: Any, yt: Any) -> float:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xt), yt)
        loss.backward()
        opt.step()
        return float(loss.detach())

    step.net, step.opt = net, opt  # type: ignore[attr-defined]
    return step


def breakdown(torch: Any, step: Any, xt: Any, yt: Any, n: int) -> Dict[str, float]:
    """Milliseconds per phase of a torch step (best of ``n``)."""
    net, opt = step.net, step.opt
    loss_fn = torch.nn.CrossEntropyLoss()
    best: Dict[str, float] = {}
    for _ in range(n):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        t1 = time.perf_counter()
        out = net(xt)
        t2 = time.perf_counter()
        loss = loss_fn(out, yt)
        t3 = time.perf_counter()
        loss.backward()
        t4 = time.perf_counter()
        opt.step()
        t5 = time.perf_counter()
        for k, v in (("zero_grad", t1 - t0), ("forward", t2 - t1), ("loss", t3 - t2), ("backward", t4 - t3),
                     ("optimizer", t5 - t4)):
            best[k] = min(best.get(k, np.inf), 1e3 * v)
    return best


def main(argv: Any = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="784-3000-3000-3000-10")
    p.add_argument("--density", type=float, default=0.1)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    # After its last parallel op torch's OpenMP team spins (default wait policy): about 5 ms of CPU
    # after a 2-thread matmul on this machine (2026-12-06). Without a pause that spin lands in the
    # next implementation's round, on the core its second thread needs; the engine's pool also counts
    # the wait as stalls, which can start a trial of a reduced team (cpp/parallel.cpp).
    p.add_argument("--settle-ms", type=float, default=20.0,
                   help="pause before each timed round (ms), longer than torch's OpenMP spin after an op")
    p.add_argument("--omp-wait-policy", choices=["active", "passive"], default=None,
                   help="set OMP_WAIT_POLICY for torch's OpenMP runtime (before torch is imported); "
                        "passive: idle OpenMP threads sleep instead of spinning (docs/torch.md, Threads)")
    args = p.parse_args(argv)

    if args.omp_wait_policy is not None:
        if "torch" in sys.modules:
            raise RuntimeError("--omp-wait-policy must be set before torch is imported (run the script directly)")
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy
    import references as bl
    import torch

    sizes = [int(s) for s in args.sizes.split("-")]
    rng = np.random.default_rng(0)
    xn = rng.random((args.batch, sizes[0]), dtype=np.float32)
    yn = rng.integers(0, sizes[-1], args.batch)
    xt, yt = torch.from_numpy(xn), torch.from_numpy(yn)
    print(f"training step of {args.sizes}, density {args.density}, batch {args.batch}, SGD momentum "
          f"(best of {args.repeats} interleaved rounds of {args.steps} steps; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})")
    for t in args.threads:
        torch.set_num_threads(t)
        bl.set_openmp_threads(t)
        steps = build(torch, sizes, args.density, t)
        for f in steps.values():
            torch.set_num_threads(getattr(f, "torch_threads", t))
            for _ in range(args.warmup):
                f(xn, yn, xt, yt)
        best = {k: np.inf for k in steps}
        cpu = {k: np.inf for k in steps}
        for _ in range(args.repeats):
            for name, f in steps.items():
                torch.set_num_threads(getattr(f, "torch_threads", t))
                bl.set_openmp_threads(getattr(f, "torch_threads", t))
                time.sleep(args.settle_ms * 1e-3)  # the previous round's idle OpenMP threads: asleep by now
                t0, c0 = time.perf_counter(), time.process_time()
                for _ in range(args.steps):
                    f(xn, yn, xt, yt)
                best[name] = min(best[name], (time.perf_counter() - t0) / args.steps * 1e3)
                cpu[name] = min(cpu[name], (time.process_time() - c0) / args.steps * 1e3)
            torch.set_num_threads(t)
            bl.set_openmp_threads(t)
        ml = best[RECOMMENDED]
        print(f"\nthreads = {t}")
        # CPU ms: the process's CPU time per step (every thread, spinning included); at 1 thread it
        # is less disturbed than the wall time by other jobs taking the cores, so on a busy machine
        # its ratios are the steadier ones
        print(f"  {'implementation':<44}{'ms / step':>10}{'/ recommended MotifLinear':>27}{'CPU ms':>9}{'ratio':>7}")
        for name, ms in best.items():
            print(f"  {name:<44}{ms:>10.1f}{ms / ml:>27.2f}{cpu[name]:>9.1f}{cpu[name] / cpu[RECOMMENDED]:>7.2f}")
        ours = {"plain": "MotifLinear + SGD", "recommended": RECOMMENDED, "SGDInBackward": IN_BACKWARD,
                "MotifSequential fused SGD": SEQ_FUSED, "MotifSequential SGDInBackward": SEQ_IN_BACKWARD}
        peers = [k for k in best if k.startswith(("sparselab", "sparseprop"))]
        for label, t_of in (("targets", best), ("in CPU time", cpu)):
            ts = t_of["MotifMLP.train_step"]
            print(f"  {label}: MotifLinear / train_step " + ", ".join(
                f"{t_of[k] / ts:.2f} ({tag})" for tag, k in ours.items()) + ", <= 1.25")
            for peer in peers:
                print(f"    {peer} / MotifLinear " + ", ".join(
                    f"{t_of[peer] / t_of[k]:.2f} ({tag})" for tag, k in ours.items() if tag != "plain"))
        for name in ("MotifLinear + SGD", RECOMMENDED, IN_BACKWARD, SEQ_IN_BACKWARD):
            torch.set_num_threads(getattr(steps[name], "torch_threads", t))
            parts = breakdown(torch, steps[name], xt, yt, args.repeats)
            print(f"  {name} by phase (ms, best of each): " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items()))
        torch.set_num_threads(t)


if __name__ == "__main__":
    main()
