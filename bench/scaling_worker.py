"""Subprocess of bench/test_scaling.py and scripts/million.py: builds one model, then runs training
epochs (and, for motifcore, evolution steps and evaluations) on request, so each configuration's
peak memory (VmHWM) is its own.

Protocol (one JSON object per line on stdout): after start-up the worker prints its counts and
memory; then for every line on stdin:

* ``epoch`` runs one training epoch and prints ``{"epoch_s", "loss"}``;
* ``evolve`` (motifcore) runs one SET evolution step of every layer (``--zeta``) and prints
  ``{"evolve_s", "replaced"}``;
* ``evaluate`` (motifcore) evaluates ``--eval-samples`` random samples with the default
  ``batch_size="auto"`` and prints ``{"eval_s", "chunk", "inference_bytes", "accuracy"}``;
* ``release`` (motifcore) frees the training workspace and prints the resident memory before and
  after (``{"rss_before_mib", "rss_after_mib", "workspace_mib"}``);
* ``stats`` prints the memory high-water mark and the resident memory; ``quit`` (or end of input)
  exits.

Run by hand: ``python bench/scaling_worker.py --impl motifcore --hidden 10000 --motif 1`` then type
``epoch``. :class:`Worker` is the client side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List


class Worker:
    """Runs this script in a subprocess and talks to it (``ask("epoch")`` -> the answer's dict)."""

    def __init__(self, args: List[str], nice: int = 0) -> None:
        import motifcore

        env = dict(os.environ)
        pkg_root = str(Path(motifcore.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = pkg_root + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [sys.executable, str(Path(__file__).resolve()), *args]
        if nice:
            cmd = ["nice", "-n", str(nice), *cmd]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, bufsize=1, env=env)
        self.ready = self._read()

    def _read(self) -> Dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"scaling worker died (exit {self.proc.wait()}):\n{err[-4000:]}")
        return json.loads(line)

    def ask(self, cmd: str) -> Dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer

    def close(self) -> None:
        try:
            if self.proc.poll() is None and self.proc.stdin is not None:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def _status_mib() -> Dict[str, float]:
    out: Dict[str, float] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(rest.split()[0]) / 1024.0  # kB -> MiB
    return out


def _say(obj: Dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _import_motifcore() -> Any:
    """The compiled module is a symlink into a build tree another process may be relinking: retry."""
    import importlib

    for attempt in range(10):
        try:
            return importlib.import_module("motifcore")
        except ImportError:
            if attempt == 9:
                raise
            for name in [k for k in sys.modules if k.startswith("motifcore")]:
                del sys.modules[name]
            time.sleep(3.0)
    raise AssertionError("unreachable")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", choices=("motifcore", "torch-dense"), default="motifcore")
    ap.add_argument("--hidden", type=int, required=True)
    ap.add_argument("--motif", type=int, default=1)
    ap.add_argument("--features", type=int, default=3312)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--samples", type=int, default=136)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epsilon", type=float, default=20.0)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--zeta", type=float, default=0.3, help="fraction of blocks an evolution step replaces")
    ap.add_argument("--eval-samples", type=int, default=1000)
    ap.add_argument("--eval-memory", type=int, default=0, help="bytes of inference panels (0: the model's default)")
    a = ap.parse_args()

    import numpy as np

    sizes = [a.features] + [a.hidden] * a.layers + [a.classes]
    rng = np.random.default_rng(a.seed)
    X = rng.standard_normal((a.samples, a.features)).astype(np.float32)
    y = rng.integers(0, a.classes, size=a.samples).astype(np.int64)

    if a.impl == "motifcore":
        motifcore = _import_motifcore()
        mem0 = _status_mib()
        t0 = time.perf_counter()
        net = motifcore.MotifMLP(sizes, motif=a.motif, epsilon=a.epsilon, seed=a.seed, num_threads=a.threads)
        init_s = time.perf_counter() - t0
        counts = {"blocks": net.n_blocks, "edges": net.n_edges, "params": net.n_params,
                  "macs_per_sample": net.macs_per_sample}
        epoch_no = [0]

        def epoch() -> float:
            epoch_no[0] += 1
            return net.train_epoch(X, y, batch_size=a.batch, lr=a.lr, seed=epoch_no[0])

        if a.eval_memory:
            net.eval_memory = a.eval_memory
        erng = np.random.default_rng(a.seed + 1)
        X_eval = erng.standard_normal((a.eval_samples, a.features)).astype(np.float32)
        y_eval = erng.integers(0, a.classes, size=a.eval_samples).astype(np.int64)

        def evolve() -> Dict[str, Any]:
            t = time.perf_counter()
            replaced = net.evolve(a.zeta, seed=epoch_no[0])
            return {"evolve_s": time.perf_counter() - t, "replaced": int(sum(replaced))}

        def evaluate() -> Dict[str, Any]:
            t = time.perf_counter()
            _, acc = net.evaluate(X_eval, y_eval)
            chunk = net.eval_chunk()
            return {"eval_s": time.perf_counter() - t, "chunk": chunk, "accuracy": acc,
                    "inference_bytes": net.inference_bytes(min(chunk, a.eval_samples))}

        def release() -> Dict[str, Any]:
            before, ws = _status_mib()["VmRSS"], net.workspace_bytes
            net.release_workspace()
            return {"rss_before_mib": before, "rss_after_mib": _status_mib()["VmRSS"], "workspace_mib": ws / 2**20}

        extra: Dict[str, Any] = {"evolve": evolve, "evaluate": evaluate, "release": release}
    else:
        import torch
        torch.set_num_threads(a.threads)
        sys.path.insert(0, __file__.rsplit("/", 1)[0])
        import references as bl
        mem0 = _status_mib()
        t0 = time.perf_counter()
        model = bl.torch_dense_mlp(torch, sizes, seed=a.seed)
        trainer = bl.TorchTrainer(torch, model, lr=a.lr)
        init_s = time.perf_counter() - t0
        n_w = sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
        counts = {"blocks": n_w, "edges": n_w, "params": n_w + sum(sizes[1:]), "macs_per_sample": n_w}
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        gen = np.random.default_rng(a.seed + 1)

        def epoch() -> float:
            order = torch.from_numpy(gen.permutation(a.samples))
            total = 0.0
            for s in range(0, a.samples, a.batch):
                idx = order[s:s + a.batch]
                total += trainer.step(Xt[idx], yt[idx]) * len(idx)
            return total / a.samples

        extra = {}   # the commands above are motifcore's
    mem1 = _status_mib()
    _say({"ready": True, "init_s": init_s, "rss_import_mib": mem0["VmRSS"], "rss_after_init_mib": mem1["VmRSS"],
          "hwm_after_init_mib": mem1["VmHWM"], "sizes": sizes, **counts})
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "epoch":
            t = time.perf_counter()
            loss = float(epoch())
            _say({"epoch_s": time.perf_counter() - t, "loss": loss})
        elif cmd in extra:
            _say(extra[cmd]())
        elif cmd == "stats":
            mem = _status_mib()
            _say({"hwm_mib": mem["VmHWM"], "rss_mib": mem["VmRSS"]})
        elif cmd in ("quit", ""):
            break
        else:
            _say({"error": f"unknown command {cmd!r}"})


if __name__ == "__main__":
    main()
