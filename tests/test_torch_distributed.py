"""MotifLinear under torch.distributed: 2 processes (gloo, CPU) with DistributedDataParallel and
SET, RigL, DSR or CHT steps in between train to the same weights and patterns as one process on the
global batch."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

WORKER = r'''
import json, sys
import numpy as np
import torch
import torch.distributed as dist
from motifcore.torch import CHT, DSR, MotifLinear, RigL, SET

rank, world, init, out, method = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
torch.set_num_threads(1)
net = torch.nn.Sequential(
    MotifLinear(20, 32, motif=2, density=0.3, activation="relu", seed=1, num_threads=1),
    MotifLinear(32, 4, density=0.5, seed=2, num_threads=1),
)
model = net
if world > 1:
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    model = torch.nn.parallel.DistributedDataParallel(net)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
if method == "set":
    evolution = SET(net, opt, zeta=0.3, interval=2, seed=3)
elif method == "rigl":
    evolution = RigL(model, opt, total_steps=12, alpha=0.4, interval=2, seed=3)
elif method == "cht":   # regrowth at positive scores only may shrink a layer: given the wrapper too
    evolution = CHT(model, opt, zeta=0.3, interval=2, seed=3)
else:   # DSR changes the block counts: it is given the DDP wrapper, whose buckets it rebuilds
    evolution = DSR(model, opt, total_steps=12, threshold=0.05, periods=(2,), starts=(0.0,), seed=3)
rng = np.random.default_rng(0)
GLOBAL = 32
counts = []
for step in range(9):
    X = torch.from_numpy(rng.standard_normal((GLOBAL, 20)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 4, GLOBAL))
    part = slice(rank * GLOBAL // world, (rank + 1) * GLOBAL // world)
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(X[part]), y[part]).backward()
    opt.step()
    evolution.step()
    counts.append([m.n_blocks for m in net])
torch.save({"state": net.state_dict(), "momentum": [opt.state[m.weight]["momentum_buffer"] for m in net],
            "updates": len(evolution.history), "counts": counts}, out)
if world > 1:
    dist.barrier()      # neither rank tears gloo down while the other still talks to it (a rank
    dist.destroy_process_group()    # once aborted in teardown: "terminate called without an active exception")
'''


@pytest.mark.parametrize("method", ["set", "rigl", "dsr", "cht"])
def test_ddp_two_processes_match_one_process(tmp_path, method):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    init = tmp_path / "init"
    env = dict(os.environ, MOTIFCORE_NUM_THREADS="1", OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, str(script), str(r), "2", str(init), str(tmp_path / f"rank{r}.pt"),
                               method], env=env) for r in range(2)]
    ref = subprocess.run([sys.executable, str(script), "0", "1", str(init), str(tmp_path / "single.pt"), method],
                         env=env, timeout=300)
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0, 0] and ref.returncode == 0
    single = torch.load(tmp_path / "single.pt")
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert single["updates"] == 4 and ranks[0]["updates"] == ranks[1]["updates"] == 4
    if method == "dsr":      # blocks moved between the layers: the DDP buckets were rebuilt
        assert len({tuple(c) for c in single["counts"]}) > 1
    assert ranks[0]["counts"] == ranks[1]["counts"] == single["counts"]
    for key, v in single["state"].items():
        # every rank holds the same pattern and weights (same decisions from the same state)
        assert torch.equal(ranks[0]["state"][key], ranks[1]["state"][key]), key
        if key.endswith(("indptr", "indices")):
            assert torch.equal(ranks[0]["state"][key], v), key
        else:
            np.testing.assert_allclose(ranks[0]["state"][key].numpy(), v.numpy(), rtol=1e-5, atol=1e-6, err_msg=key)
    for a, b in zip(ranks[0]["momentum"], single["momentum"]):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
