"""Splits `perf record` samples of a 2-thread training run (region_tools/steps.py SITE 2 6 under
`perf record -F 4000 -g`) by thread and by what the thread was doing, by the sampled function:
a region's body (the pool's chunks), the pool's waits (caller: parallel_run; worker: its thread
function), or neither (the caller alone between regions: Python, the kernels' serial set-up).
The last 70 % of the run (the steps, not the set-up); per step = samples / 4000 Hz / steps."""
import collections, re, subprocess, sys
data, steps_per_s = sys.argv[1], float(sys.argv[2])
out = subprocess.run(["perf", "script", "-i", data, "-F", "tid,time,ip,sym"], capture_output=True, text=True).stdout
samples, cur = [], None
for line in out.splitlines():
    m = re.match(r"\s*(\d+)\s+([\d.]+):\s*$", line)
    if m:
        cur = [int(m.group(1)), float(m.group(2)), None]; samples.append(cur); continue
    if line.strip() and cur is not None and cur[2] is None:
        p = line.strip().split(None, 1); cur[2] = p[1] if len(p) > 1 else "?"
t0, t1 = samples[0][1], samples[-1][1]
lo = t0 + 0.3 * (t1 - t0)
caller = min(s[0] for s in samples)
steps = (t1 - lo) * steps_per_s
c, serial = collections.Counter(), collections.Counter()
for tid, t, f in samples:
    if t < lo:
        continue
    f = f or "?"
    k = ("worker-wait" if "Pool::grow" in f else "caller-wait" if "parallel_run" in f else
         "region" if ("lambda" in f or "spmm_tile" in f or "_FUN" in f) else "serial")
    who = "caller" if tid == caller else f"thread {tid}"
    c[(who, k)] += 1
    if who == "caller" and k == "serial":
        serial[f[:80]] += 1
print(f"{steps:.0f} steps in the window; ms per step by thread and activity:")
for (who, k), v in sorted(c.items()):
    print(f"  {who:<14} {k:<12} {1e3 * v / 4000 / steps:6.3f}")
print("the caller's serial samples by function (ms per step):")
for f, v in serial.most_common(15):
    print(f"  {1e3 * v / 4000 / steps:6.3f}  {f}")
