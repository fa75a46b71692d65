"""Where a training step's time goes, kernel by kernel (GroupSum, SpMM, Expand, SDDMM, transposed
SpMM, optimizer, ...), for the paper network ``784-3000-3000-3000-10`` at density 0.1, batch 128,
m = 1, 2, 4. Prints Markdown tables.

No engine instrumentation: the steps run in a child process that is sampled with Linux ``perf``
(``perf record --call-graph dwarf``, CPU-clock samples). The package's own engine is stripped, so
the child loads a copy of the same sources built with symbols (same ``-O3 -DNDEBUG`` code, plus
``-g``) from ``--build-dir``; the script configures and builds it with CMake on first use (about
1-2 min on one core). Each sample is assigned to the innermost engine function it is in; forward
and transposed SpMM are told apart by the caller (``Layer::forward`` / ``Layer::backward``) on the
calling thread, and worker-thread SpMM samples (whose stacks end in the engine's thread pool) are
split in the same proportion. Samples whose innermost engine frame is the thread pool
(``cpp/parallel.cpp``: waking, claiming chunks, spinning) or in libgomp are threading overhead; samples in
the OS kernel (where recorded) are mostly the waiting threads' futex sleeps and wake-ups.

    python scripts/kernel_profile.py                         # m = 1, 2, 4 at 1 thread (~2 min + build)
    python scripts/kernel_profile.py --threads 2 --motifs 1  # 2 threads: shows barrier/spin time
    # the batch-2 Fashion-MNIST shape of scripts/small_batch.py, steps in one train_epoch call
    python scripts/kernel_profile.py --motifs 1 --sizes 784,1000,1000,1000,10 --epsilon 20 --batch 2 \
        --steps 4000 --epoch

Needs Linux ``perf`` allowed to profile your own processes (kernel.perf_event_paranoid <= 2), CMake,
a C++ compiler and the build requirements of the package (scikit-build-core, pybind11).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]

# Loads the symbol build of the engine as motifcore._core, then times `steps` training steps once
# the parent says "go" (after perf has attached).
CHILD = r"""
import importlib.util, json, os, sys, time
core_path, m, threads, steps, sizes, batch, eps = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                                  int(sys.argv[4]), [int(s) for s in sys.argv[5].split(",")],
                                                  int(sys.argv[6]), float(sys.argv[7]))
epoch = sys.argv[8] == "1"
spec = importlib.util.spec_from_file_location("motifcore._core", core_path)
core = importlib.util.module_from_spec(spec)
spec.loader.exec_module(core)
sys.modules["motifcore._core"] = core
import numpy as np
import motifcore
assert motifcore._core is core
net = motifcore.MotifMLP(sizes, motif=m, density=0.1, epsilon=eps or None, distribution=None if eps else "uniform",
                         seed=0, num_threads=threads)
rng = np.random.default_rng(0)
data = [(rng.standard_normal((batch, sizes[0])).astype(np.float32),
         rng.integers(0, sizes[-1], batch).astype(np.int64)) for _ in range(4)]
for i in range(3):
    net.train_step(*data[i % 4], 0.01)
print("ready", flush=True)
sys.stdin.readline()
ts = []
if epoch:   # all steps in one native call (train_epoch), over the 4 batches repeated
    X = np.concatenate([d[0] for d in data])
    Y = np.concatenate([d[1] for d in data])
    order = np.tile(np.arange(X.shape[0]), -(-steps * batch // X.shape[0]))[: steps * batch]
    t0 = time.perf_counter()
    net.train_epoch(X, Y, batch_size=batch, lr=0.01, order=order)
    ts = [(time.perf_counter() - t0) / steps]
else:
    for i in range(steps):
        t0 = time.perf_counter()
        net.train_step(*data[i % 4], 0.01)
        ts.append(time.perf_counter() - t0)
print(json.dumps({"median": float(np.median(ts)), "min": min(ts), "pid": os.getpid()}), flush=True)
sys.stdin.readline()                        # exit only after perf has stopped (teardown not sampled)
"""

# (category, pattern on a frame's symbol), tried on each frame from the innermost outwards.
KERNELS: List[Tuple[str, re.Pattern]] = [
    ("SpMM", re.compile(r"::spmm(_tiled|_tile)?\b|::spmm\(|^spmm_(tail|tile|tiled)\b")),
    ("SDDMM (grad weights)", re.compile(r"::sddmm\b|^sddmm_")),
    ("fused backward (grad weights + grad input)", re.compile(r"::fused_backward\b|::fused_tile|^fused_tile")),
    ("GroupSum", re.compile(r"::group_sum\b|^group_sum\b")),
    ("Expand + bias + ReLU", re.compile(r"::expand_bias_act\b|^expand_bias_act\b")),
    ("Expand backward (ReLU', motif sum, grad bias)", re.compile(r"::group_backward\b|^group_backward\b")),
    ("transposed-weight gather, gradient scatter (Layer::backward)",
     re.compile(r"Layer::backward\b|permute_prefetched\b")),
    ("optimizer (SGD/Adam update)", re.compile(r"Layer::(optimizer_step|sgd_step|grad_sq_norm)|Network::update")),
    ("input gather + transpose", re.compile(r"Network::gather\b")),
    ("softmax cross-entropy", re.compile(r"Network::loss_and_grad\b")),
    ("dropout", re.compile(r"Network::forward_all\b.*(_omp_fn|lambda)")),
]
OMP = "thread pool / OpenMP runtime (wake, join, spin)"
POOL = re.compile(r"Pool::|spin_until|parallel_run|motifcore::pool\(")
OS_KERNEL = "OS kernel (futex sleep/wake, context switches, page faults)"
ENGINE_OTHER = "engine, other"
OUTSIDE = "outside the engine (Python, input checks in NumPy)"
SPMM_FWD, SPMM_T = "SpMM (forward)", "transposed SpMM (grad input)"


def build(build_dir: Path) -> Path:
    """Configures and builds the engine with symbols in build_dir; returns the module's path."""
    cmake = shutil.which("cmake")
    if cmake is None:
        raise SystemExit("cmake not found (pip install cmake)")
    import pybind11

    cfg = [cmake, "-S", str(ROOT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
           "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O3 -DNDEBUG -g", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
           f"-DPython_EXECUTABLE={sys.executable}"]
    if shutil.which("ninja"):
        cfg += ["-G", "Ninja"]
    for cmd in (cfg, [cmake, "--build", str(build_dir), "-j", "1"]):
        print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return find_module(build_dir)


def find_module(build_dir: Path) -> Path:
    mods = sorted(build_dir.glob("_core*.so"))
    if not mods:
        raise FileNotFoundError(build_dir)
    return mods[0]


def parse_samples(text: str, main_tid: int, engine: str) -> Tuple[Counter, int]:
    """perf script output (tid, period, callchain) -> CPU nanoseconds per category, and samples.

    SpMM samples on the calling thread are split by caller; the others are returned under "SpMM"
    for the caller to apportion."""
    cpu: Counter = Counter()
    n = 0
    for block in text.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln.strip()]
        if not lines:
            continue
        head = lines[0].split()
        if len(head) < 2 or not head[0].isdigit():
            continue
        tid, period = int(head[0]), int(head[1])
        frames = [ln.strip().split(" ", 1)[1] if " " in ln.strip() else "" for ln in lines[1:]]
        n += 1
        cpu[classify(frames, tid == main_tid, engine)] += period
    return cpu, n


def in_engine(frame: str, engine: str) -> bool:
    """A frame of the profiled engine: its file, or a motifcore:: function inlined into it."""
    return engine in frame or "motifcore::" in frame


def engine_frames(frames: Sequence[str], engine: str) -> List[bool]:
    """in_engine for every frame, where a frame perf lists as inlined (no file, e.g. the chunk body
    ``sddmm_segment (inlined)`` that the thread pool calls) belongs to the engine when the next frame
    that names a file does."""
    flags = [in_engine(f, engine) for f in frames]
    owner = False
    for i in range(len(frames) - 1, -1, -1):
        if frames[i].endswith("(inlined)") and not flags[i]:
            flags[i] = owner
        else:
            owner = flags[i]
    return flags


def classify(frames: Sequence[str], on_main: bool, engine: str) -> str:
    if frames and "[kernel.kallsyms]" in frames[0]:
        return OS_KERNEL
    if frames and "libgomp" in frames[0]:
        return OMP
    eng = engine_frames(frames, engine)
    innermost = next((f for f, e in zip(frames, eng) if e), "")
    if POOL.search(innermost):
        return OMP
    for i, f in enumerate(frames):
        if not eng[i]:
            continue
        for name, pat in KERNELS:
            if pat.search(f):
                if name != "SpMM":
                    return name
                callers = " ".join(frames[i + 1:])
                if "Layer::backward" in callers:
                    return SPMM_T
                if "Layer::forward" in callers:
                    return SPMM_FWD
                return "SpMM" if not on_main else SPMM_FWD
    if any(eng):
        return ENGINE_OTHER
    return OUTSIDE


def apportion_spmm(cpu: Counter) -> Counter:
    """Splits caller-less (worker-thread) SpMM time in the forward : transposed proportion seen
    on the calling thread."""
    rest = cpu.pop("SpMM", 0)
    if rest:
        f, t = cpu.get(SPMM_FWD, 0), cpu.get(SPMM_T, 0)
        share = f / (f + t) if f + t else 0.5
        cpu[SPMM_FWD] += int(round(rest * share))
        cpu[SPMM_T] += rest - int(round(rest * share))
    return cpu


def profile(core: Path, m: int, threads: int, steps: int, sizes: str, batch: int, epsilon: float, epoch: bool,
            freq: int, workdir: Path) -> Tuple[Dict, Counter, int]:
    env = dict(os.environ)
    env.pop("MOTIFCORE_NUM_THREADS", None)
    args = [str(core), str(m), str(threads), str(steps), sizes, str(batch), str(epsilon), "1" if epoch else "0"]
    child = subprocess.Popen([sys.executable, "-c", CHILD, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env=env)
    assert child.stdin is not None and child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        child.kill()
        raise RuntimeError("profile child failed to start")
    data = workdir / f"perf-m{m}-t{threads}.data"
    perf = subprocess.Popen(["perf", "record", "-q", "-F", str(freq), "--call-graph", "dwarf,16384", "-o",
                             str(data), "-p", str(child.pid)], stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)                 # let perf attach before the timed steps start
    child.stdin.write("go\n")
    child.stdin.flush()
    result = json.loads(child.stdout.readline())
    perf.send_signal(signal.SIGINT)     # stop sampling before the child tears down
    perf.wait()
    child.stdin.write("exit\n")
    child.stdin.flush()
    child.wait()
    if perf.returncode not in (0, None) and not data.exists():
        raise RuntimeError(f"perf record failed: {perf.stderr.read() if perf.stderr else ''}")
    script = subprocess.run(["perf", "script", "-i", str(data), "-F", "tid,period,ip,sym,dso"],
                            capture_output=True, text=True, check=True).stdout
    cpu, n = parse_samples(script, child.pid, str(core))
    return result, apportion_spmm(cpu), n


def render(m: int, threads: int, steps: int, result: Dict, cpu: Counter, n: int) -> str:
    total = sum(cpu.values())
    lines = [f"#### m = {m}, {threads} thread{'s' if threads > 1 else ''}: step median "
             f"{1e3 * result['median']:.1f} ms (min {1e3 * result['min']:.1f}) under perf, {n:,} samples",
             "", "| kernel | CPU ms / step | share |", "|---|---|---|"]
    for name, ns in sorted(cpu.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {name} | {ns / 1e6 / steps:.2f} | {100 * ns / total:.1f} % |")
    lines.append(f"| total CPU | {total / 1e6 / steps:.2f} | |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--motifs", default="1,2,4")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=0, help="timed steps per m (default: about 3 s worth)")
    ap.add_argument("--sizes", default="784,3000,3000,3000,10")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epsilon", type=float, default=0.0, help="SET's epsilon instead of density 0.1 (0: density)")
    ap.add_argument("--epoch", action="store_true",
                    help="run the steps as one train_epoch call (per-step time = total / steps; no per-step Python)")
    ap.add_argument("--freq", type=int, default=999, help="perf sampling frequency (Hz)")
    ap.add_argument("--build-dir", default=str(ROOT / "build" / "profile"))
    ap.add_argument("--rebuild", action="store_true", help="rebuild the symbol copy of the engine first")
    a = ap.parse_args(argv)
    if shutil.which("perf") is None:
        raise SystemExit("Linux perf is needed (package linux-perf or linux-tools)")
    build_dir = Path(a.build_dir)
    try:
        core = build(build_dir) if a.rebuild else find_module(build_dir)
    except FileNotFoundError:
        core = build(build_dir)
    workdir = build_dir / "perf"
    workdir.mkdir(parents=True, exist_ok=True)
    sparsity = f"epsilon {a.epsilon:g}" if a.epsilon else "density 0.1"
    print(f"1-min load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; network {a.sizes}, "
          f"{sparsity}, batch {a.batch}, SGD; engine {core}\n", flush=True)
    default_steps = {1: 60, 2: 200, 4: 600}
    for m in (int(s) for s in a.motifs.split(",") if s):
        steps = a.steps or default_steps.get(m, 200)
        result, cpu, n = profile(core, m, a.threads, steps, a.sizes, a.batch, a.epsilon, a.epoch, a.freq, workdir)
        print(render(m, a.threads, steps, result, cpu, n) + "\n", flush=True)
    print(f"1-min load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
