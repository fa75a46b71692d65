"""Where a ``MotifLinear`` training step goes beyond the engine's fused ``MotifMLP.train_step``
(issue 20; docs/torch.md, "Speed"): four ways to run one SGD step of ``784-3000-3000-3000-10`` at
density 0.1, batch 128, m = 1, interleaved in one process, best of ``--repeats`` rounds of 3 steps,
wall and process CPU time, with torch on one thread:

* ``train_step``: the engine's fused step;
* ``chain, engine SGD``: the engine's row-major layer calls chained from Python, torch's
  cross-entropy, the engine's own SGD on each layer;
* ``chain, handoff, engine SGD``: the same, each layer taking the previous layer's output panel and
  the next layer's input-gradient panel instead of converting rows (``forward_handoff`` /
  ``backward_handoff``, as ``MotifLinear`` calls them);
* ``chain, torch fused SGD``: the same calls with the block gradients written into torch tensors
  (``Layer.backward_into``) and ``torch.optim.SGD(fused=True)``;
* ``MotifLinear (recommended)``: ``motifcore.torch`` layers through autograd with the fused SGD;
* ``chain, handoff, update in backward``: the handoff chain with each layer's SGD update made inside
  its backward (``backward_handoff(update=...)``);
* ``MotifLinear + SGDInBackward``: the layers through autograd with ``SGDInBackward``;
* ``MotifSequential + SGDInBackward``: the same layers in the ``MotifSequential`` that ``from_mlp``
  returns (one autograd node and one engine call per direction for the run). The two MotifLinear
  rows before it hold the layers in a plain ``nn.Sequential``.

It also prints minor page faults and system CPU time per step. Timings are only meaningful on a
quiet machine; on a busy one, quote ratios in CPU time and say so.

    python scripts/torch_overhead.py --threads 1 --repeats 7
"""

from __future__ import annotations

import argparse
import resource
import time
from typing import Callable, Dict, Optional

import numpy as np
import torch
from motifcore import MotifMLP
from motifcore.torch import SGDInBackward, from_mlp

SIZES = [784, 3000, 3000, 3000, 10]
LR, MOMENTUM, DECAY = 0.01, 0.9, 5e-4


def steps(nt: int) -> Dict[str, Callable[[], None]]:
    model = MotifMLP(SIZES, motif=1, density=0.1, seed=0, num_threads=nt)
    rng = np.random.default_rng(0)
    xn = rng.random((128, SIZES[0]), dtype=np.float32)
    yn = rng.integers(0, SIZES[-1], 128)
    xt, yt = torch.from_numpy(xn), torch.from_numpy(yn)
    loss = torch.nn.CrossEntropyLoss()

    def engine_step() -> None:
        model.train_step(xn, yn, lr=LR, momentum=MOMENTUM, weight_decay=DECAY)

    def forward_and_loss(mods: list) -> np.ndarray:
        """The engine's row-major forward through ``mods``, torch's loss; dL/dlogits."""
        a = xn
        for m in mods:
            a = m._core.forward(a, nt)
        logits = torch.from_numpy(a).requires_grad_()
        loss(logits, yt).backward()
        return logits.grad.numpy()

    mods_c = list(from_mlp(model, num_threads=nt))

    def chain_engine_sgd() -> None:
        g = forward_and_loss(mods_c)
        for i in range(len(mods_c) - 1, -1, -1):
            g = mods_c[i]._core.backward(g, nt, i > 0)
        for m in mods_c:
            m._core.sgd_step(LR, MOMENTUM, DECAY, nt)

    def chain(update: Optional[Dict[str, object]]) -> Callable[[], None]:
        """The handoff chain on its own layers: each layer takes the previous layer's output panel
        and the next layer's input-gradient panel; the engine's SGD after the backward, or the
        ``update`` made inside each layer's backward."""
        mods = list(from_mlp(model, num_threads=nt))

        def step() -> None:
            a, prev, stamp = xn, None, 0
            for m in mods:
                a, stamp, _ = m._core.forward_handoff(a, nt, prev, stamp)
                prev = m._core
            logits = torch.from_numpy(a).requires_grad_()
            loss(logits, yt).backward()
            g, nxt, stamp = logits.grad.numpy(), None, 0
            for i in range(len(mods) - 1, -1, -1):
                g, stamp, _ = mods[i]._core.backward_handoff(g, None, None, nt, i > 0, nxt, stamp, update=update)
                nxt = mods[i]._core
            if update is None:
                for m in mods:
                    m._core.sgd_step(LR, MOMENTUM, DECAY, nt)
        return step

    chain_handoff = chain(None)
    chain_update_in_backward = chain({"optimizer": "sgd", "lr": LR, "momentum": MOMENTUM, "weight_decay": DECAY})

    net_t = from_mlp(model, num_threads=nt)
    mods_t = list(net_t)
    opt_t = torch.optim.SGD(net_t.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=DECAY, fused=True)

    def chain_torch_sgd() -> None:
        g = forward_and_loss(mods_t)
        for i in range(len(mods_t) - 1, -1, -1):
            m = mods_t[i]
            gw = torch.empty(m.n_blocks, dtype=torch.float32)
            gb = torch.empty(m.out_features, dtype=torch.float32)
            g = m._core.backward_into(g, gw.numpy(), gb.numpy(), nt, i > 0)
            m.weight.grad, m.bias.grad = gw, gb
        opt_t.step()
        for m in mods_t:
            m.weight.grad = m.bias.grad = None

    net_m = torch.nn.Sequential(*from_mlp(model, num_threads=nt))     # one autograd node per layer
    opt_m = torch.optim.SGD(net_m.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=DECAY, fused=True)

    def motiflinear() -> None:
        opt_m.zero_grad(set_to_none=True)
        loss(net_m(xt), yt).backward()
        opt_m.step()

    net_b = torch.nn.Sequential(*from_mlp(model, num_threads=nt))
    opt_b = SGDInBackward(net_b.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=DECAY)

    def motiflinear_in_backward() -> None:
        opt_b.zero_grad(set_to_none=True)
        loss(net_b(xt), yt).backward()
        opt_b.step()

    net_s = from_mlp(model, num_threads=nt)                           # a MotifSequential: one node for the run
    opt_s = SGDInBackward(net_s.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=DECAY)

    def motifsequential_in_backward() -> None:
        opt_s.zero_grad(set_to_none=True)
        loss(net_s(xt), yt).backward()
        opt_s.step()

    return {"train_step": engine_step, "chain, engine SGD": chain_engine_sgd,
            "chain, handoff, engine SGD": chain_handoff, "chain, handoff, update in backward": chain_update_in_backward,
            "chain, torch fused SGD": chain_torch_sgd, "MotifLinear (recommended)": motiflinear,
            "MotifLinear + SGDInBackward": motiflinear_in_backward,
            "MotifSequential + SGDInBackward": motifsequential_in_backward}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1, help="engine threads (torch runs on one)")
    p.add_argument("--repeats", type=int, default=7, help="interleaved rounds of 3 steps")
    a = p.parse_args()
    torch.set_num_threads(1)
    fs = steps(a.threads)
    for f in fs.values():
        for _ in range(2):
            f()
    wall = {k: float("inf") for k in fs}
    cpu = {k: float("inf") for k in fs}
    for _ in range(a.repeats):
        for k, f in fs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(3):
                f()
            wall[k] = min(wall[k], (time.perf_counter() - t0) / 3 * 1e3)
            cpu[k] = min(cpu[k], (time.process_time() - c0) / 3 * 1e3)
    faults = {}
    for k, f in fs.items():
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(10):
            f()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        faults[k] = ((r1.ru_minflt - r0.ru_minflt) / 10, (r1.ru_stime - r0.ru_stime) / 10 * 1e3)
    print("minor page faults per step, system CPU ms per step:", faults)
    print(f"engine threads {a.threads}, torch threads 1, best of {a.repeats} interleaved rounds of 3 steps "
          "(wall; process CPU time)")
    ts, cs = wall["train_step"], cpu["train_step"]
    for k in fs:
        print(f"  {k:<34}{wall[k]:8.2f} ms {wall[k] / ts:6.3f}x   cpu {cpu[k]:8.2f} ms {cpu[k] / cs:6.3f}x")


if __name__ == "__main__":
    main()
