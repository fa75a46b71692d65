"""Memory per active block, per structure, beside the measured resident memory (issue 21, item 4).

Builds ``3312-H-H-H-5`` (SET's epsilon, random data of the Lung data set's shape, batch 32, as
``scripts/million.py``) and runs, in order: construction, one training epoch (SGD, or Adam with
``--optimizer adam``), one SET evolution step, an evaluation of ``--eval-samples`` samples
(``batch_size="auto"``) and ``release_workspace()``. Before each phase the peak resident memory is
reset (``/proc/self/clear_refs``), so each phase's own peak (VmHWM) is printed beside the resident
memory (VmRSS) after it. Beside them, the bytes the code holds, from the sizes of its arrays
(cpp/layer.hpp, cpp/pattern.hpp, cpp/optimizer.hpp, LayerWork): per active block, per neuron and
batch (the panels, ``ld = panel_ld(batch)`` floats a row), and the engine's own
``workspace_bytes``. The accounting is a formula of the code's array sizes, not a measurement; the
difference between it and VmRSS is the interpreter, NumPy, the data and the allocator.

    python scripts/memory_accounting.py --hidden 20000
    nice -n 5 python scripts/memory_accounting.py --hidden 200000 --json out.json

One configuration of H = 200,000 needs about 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Dict, List

import numpy as np

MIB = 2.0 ** 20


HUGE_PANEL_BYTES = 24 << 20   # cpp/kernels.hpp kHugePanelBytes: larger panels keep the split backward


def panel_ld(b: int) -> int:
    """Row stride of a feature-major panel of b samples (cpp/kernels.hpp)."""
    ld = (b + 15) // 16 * 16
    if ld >= 64 and (ld // 16) % 2 == 0:
        ld += 16
    return ld


def status() -> Dict[str, float]:
    """VmRSS and VmHWM of this process, MiB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(line.split()[1]) / 1024.0
    return out


def reset_peak() -> bool:
    """Resets VmHWM to the current RSS (Linux >= 4.0); False where that is refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def per_block(optimizer: str) -> Dict[str, int]:
    """Bytes per active block of each structure a layer holds between steps (cpp/layer.hpp)."""
    return {"K (weights, float32)": 4, "indices (CSR column, int32)": 4, "dK (gradient, float32)": 4,
            "vK (momentum / Adam m, float32)": 4, **({"sK (Adam s, float32)": 4} if optimizer == "adam" else {}),
            "t_rows + t_pos (transposed index, int32 x 2)": 8, "t_inv (inverse of t_pos, int32)": 4}


TRANSPOSED = "t_rows + t_pos (transposed index, int32 x 2)"
INVERSE = "t_inv (inverse of t_pos, int32)"


def accounting(net: Any, batch: int, optimizer: str) -> Dict[str, Any]:
    """Bytes the code holds for this network, from its array sizes.

    The transposed index is built lazily (Layer::pattern in cpp/layer.hpp): only by a layer whose
    input gradient a backward needs -- not the first layer, not a dense one -- and freed by every
    pattern change, so it is held after a training call but not after an evolution step. The
    inverse of its positions (t_inv) is built with it only by layers that take the fused backward.
    """
    ld = panel_ld(batch)
    cores = [layer._core for layer in net.layers]
    nb = sum(c.n_blocks for c in cores)
    dense = [c.n_blocks == c.G_out * c.G_in for c in cores]
    indexed = sum(c.n_blocks for i, c in enumerate(cores) if i > 0 and not dense[i])
    pb = per_block(optimizer)
    # Layers after the first whose output-gradient panel is at most 24 MiB (kHugePanelBytes) take the
    # fused backward (see below), which gathers dK back through t_inv.
    sparse = [(i, c) for i, (c, d) in enumerate(zip(cores, dense)) if not d]
    fused = {i for i, c in sparse if i > 0 and batch >= 4 and c.G_out * ld * 4 <= HUGE_PANEL_BYTES}
    inverted = sum(cores[i].n_blocks for i in fused)
    blocks_of = {k: (indexed if k == TRANSPOSED else inverted if k == INVERSE else nb) for k in pb}
    small = sum(8 * (c.G_out + 1) + 4 * c.n_bias * (3 + (optimizer == "adam")) for c in cores)
    t_indptr = sum(8 * (c.G_in + 1) for i, c in enumerate(cores) if i > 0 and not dense[i])
    held = sum(pb[k] * blocks_of[k] for k in pb) + small + t_indptr
    # Training workspace (LayerWork::ensure, Network): per layer its activation panel (m_out = 1:
    # block products, activations and output gradients share it; m_out > 1 adds [G_out, ld] twice)
    # and group sums (m_in > 1); one backward scratch shared by all layers (Network::scratch_): the
    # widest input-gradient panel, the largest sparse layer's transposed weights (or a dense
    # layer's GEMM packing buffer, when larger: in workspace_bytes, not in this formula) and cursors.
    # The fused backward holds the transposed weights and their gradient (8 B per block) and a
    # cursor per input group; the others the transposed weights (4 B) and a cursor per output group.
    kt = max((4 * c.n_blocks * (2 if i in fused else 1) for i, c in sparse), default=0) + 8 * max(
        (max(c.G_out, c.G_in if i in fused else 0) for i, c in sparse), default=0)
    panels = 0
    for c in cores:
        panels += 4 * ld * (c.n_out + (0 if c.m_out == 1 else 2 * c.G_out) + (c.G_in if c.m_in > 1 else 0))
    panels += 4 * ld * max(c.G_in for c in cores)             # the shared input-gradient panel
    panels += 4 * ld * (cores[0].n_in + cores[-1].n_out)       # x0 and dlogits
    return {"blocks": nb, "indexed_blocks": indexed, "inverted_blocks": inverted, "ld": ld, "bytes_per_block": pb,
            "blocks_of": blocks_of, "held_bytes": held, "kt_cursor_bytes": kt, "panel_bytes": panels, "workspace_formula": kt + panels}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hidden", type=int, default=200000)
    ap.add_argument("--motif", type=int, default=1)
    ap.add_argument("--features", type=int, default=3312)
    ap.add_argument("--classes", type=int, default=5)
    ap.add_argument("--samples", type=int, default=136)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epsilon", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--zeta", type=float, default=0.3)
    ap.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    ap.add_argument("--eval-samples", type=int, default=1000)
    ap.add_argument("--json", default="", help="also write the numbers to this file")
    a = ap.parse_args()

    import motifcore

    rng = np.random.default_rng(0)
    sizes = [a.features, a.hidden, a.hidden, a.hidden, a.classes]
    X = rng.standard_normal((a.samples, a.features)).astype(np.float32)
    y = rng.integers(0, a.classes, size=a.samples).astype(np.int64)
    X_eval = rng.standard_normal((a.eval_samples, a.features)).astype(np.float32)
    y_eval = rng.integers(0, a.classes, size=a.eval_samples).astype(np.int64)
    can_reset = reset_peak()
    base = status()
    phases: List[Dict[str, Any]] = []
    net: Any = None

    def phase(name: str, fn: Any) -> None:
        reset_peak()
        t = time.perf_counter()
        fn()
        s = status()
        phases.append({"phase": name, "s": time.perf_counter() - t, "peak_mib": s["VmHWM"], "rss_mib": s["VmRSS"],
                       "workspace_mib": net.workspace_bytes / MIB if net is not None else 0.0})

    def build() -> None:
        nonlocal net
        net = motifcore.MotifMLP(sizes, motif=a.motif, epsilon=a.epsilon, seed=0, num_threads=a.threads)

    phase("construction", build)
    phase("epoch", lambda: net.train_epoch(X, y, batch_size=a.batch, lr=1e-3, seed=1, optimizer=a.optimizer))
    phase("evolution", lambda: net.evolve(a.zeta, seed=1))   # frees the backward scratch first
    phase("evaluation", lambda: net.evaluate(X_eval, y_eval))
    phase("release", net.release_workspace)
    acc = accounting(net, a.batch, a.optimizer)
    chunk = net.eval_chunk()
    acc["inference_panel_bytes"] = net.inference_bytes(min(chunk, a.eval_samples))
    acc["eval_chunk"] = chunk

    print(f"3312-{a.hidden}-{a.hidden}-{a.hidden}-{a.classes}, m = {a.motif}, epsilon {a.epsilon:g}, "
          f"{acc['blocks']:,} blocks, batch {a.batch} (ld {acc['ld']}), {a.optimizer}, {a.threads} threads")
    print(f"RSS at start (interpreter, NumPy, motifcore, data): {base['VmRSS']:.0f} MiB"
          + ("" if can_reset else "  [VmHWM reset refused: peaks are cumulative]"))
    print("\nbytes per active block held between training steps (blocks it applies to):")
    for k, v in acc["bytes_per_block"].items():
        n = acc["blocks_of"][k]
        print(f"  {k:46s} {v:3d}  x {n / 1e6:6.2f} M = {v * n / MIB:9.1f} MiB")
    print(f"  {'total (+ indptr, biases, transposed indptr)':46s}      {acc['held_bytes'] / MIB:9.1f} MiB"
          f"  (after an evolution step: {(acc['held_bytes'] - 8 * acc['indexed_blocks'] - 4 * acc['inverted_blocks']) / MIB:.1f} MiB)")
    print(f"training workspace, formula: shared scratch (transposed weights of the largest sparse layer + cursors) "
          f"{acc['kt_cursor_bytes'] / MIB:.1f} MiB, panels {acc['panel_bytes'] / MIB:.1f} MiB, "
          f"total {acc['workspace_formula'] / MIB:.1f} MiB")
    print(f"inference panels of a chunk of {chunk}: {acc['inference_panel_bytes'] / MIB:.1f} MiB")
    print("\n| phase | s | peak (VmHWM) MiB | RSS after MiB | RSS - start MiB | workspace_bytes MiB |")
    print("|---|---|---|---|---|---|")
    for p in phases:
        print(f"| {p['phase']} | {p['s']:.2f} | {p['peak_mib']:.0f} | {p['rss_mib']:.0f} | "
              f"{p['rss_mib'] - base['VmRSS']:.0f} | {p['workspace_mib']:.1f} |")
    print(f"\nformula: held {acc['held_bytes'] / MIB:.0f} MiB; held + workspace "
          f"{(acc['held_bytes'] + acc['workspace_formula']) / MIB:.0f} MiB")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": vars(a), "base_rss_mib": base["VmRSS"], "accounting": acc, "phases": phases}, f, indent=1)


if __name__ == "__main__":
    main()
