"""ISA/ODR check of the engine's object files (a CI step of .ci/run; needs objdump).

The per-ISA kernel units (kernels_avx2.cpp, kernels_avx512.cpp) are compiled with wider target
flags than the rest of the library. Two things must hold for a binary that also runs on a CPU
without those extensions:

1. every other object -- the generic kernels and all of the engine -- contains no AVX/AVX-512
   instruction (no VEX/EVEX mnemonic, no ymm/zmm/mask register);
2. the ISA units define no function outside their own ``isa_<level>`` namespace that uses wider
   instructions: such a function (an inline or template one, e.g. from the STL) is a weak symbol
   that other units define too, and the linker may keep the wide copy for everyone (an ODR
   violation that would crash generic code with an illegal instruction);
3. PREFETCHW appears only in the AVX-512 unit (the level whose CPUID check covers it), and there
   in the fused backward: its write prefetches are what keeps the 2-thread step's writes from
   waiting on the other core in the machine's slow state (docs/engine.md), and without
   ``-mprfchw`` the compiler silently makes them plain read prefetches.

Usage: ``python scripts/check_isa.py BUILD_DIR`` (a cmake build of the engine, e.g. the C++ test
build); exits 1 and lists the offending functions if either rule is broken.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

WIDE = re.compile(r"%[yz]mm\d|%k[0-7]\b")
ISA_UNITS = {"kernels_avx2.cpp.o": ("isa_avx2", "kernels_avx2"),
             "kernels_avx512.cpp.o": ("isa_avx512", "kernels_avx512")}


def functions(obj: Path) -> dict[str, list[str]]:
    """Instructions of every function symbol of an object file (demangled names)."""
    text = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", str(obj)], capture_output=True,
                          text=True, check=True).stdout
    out: dict[str, list[str]] = {}
    cur = None
    for line in text.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if m:
            cur = m.group(1)
            out.setdefault(cur, [])
        elif cur is not None and "\t" in line:
            out[cur].append(line.split("\t", 1)[1].strip())
    return out


def wide(instructions: list[str]) -> list[str]:
    return [i for i in instructions if i and (i.split()[0].startswith("v") or WIDE.search(i))]


def main(build: str) -> int:
    objs = sorted(Path(build).glob("CMakeFiles/motifcore_core.dir/cpp/*.o"))
    if not any(o.name in ISA_UNITS for o in objs) or not any(o.name == "kernels_generic.cpp.o" for o in objs):
        print(f"check_isa: no engine objects with ISA units under {build}", file=sys.stderr)
        return 2
    problems = []
    write_prefetch_in_fused = False
    for obj in objs:
        allowed = ISA_UNITS.get(obj.name)
        n_wide = 0
        for name, ins in functions(obj).items():
            if any(i.startswith("prefetchw") for i in ins):
                if obj.name != "kernels_avx512.cpp.o":
                    problems.append(f"{obj.name}: {name} uses PREFETCHW outside the avx512 unit")
                elif "fused_backward" in name:
                    write_prefetch_in_fused = True
            hits = wide(ins)
            if not hits:
                continue
            n_wide += 1
            if allowed is None:
                problems.append(f"{obj.name}: {name} uses {hits[0]!r} (baseline unit)")
            elif not any(tag in name for tag in allowed):
                problems.append(f"{obj.name}: {name} uses {hits[0]!r} outside {allowed[0]} (ODR risk)")
        if allowed is not None and n_wide == 0:
            problems.append(f"{obj.name}: no wide instruction found at all (is the check blind?)")
    if not write_prefetch_in_fused:
        problems.append("kernels_avx512.cpp.o: no PREFETCHW in the fused backward (built without -mprfchw?)")
    for p in problems:
        print(p)
    print(f"check_isa: {len(objs)} objects, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "build/ci-cpp-tests"))
