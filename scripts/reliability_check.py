"""Fault and bad-input classes of the red-team report (reviews 2026-11-29), each run in its own
subprocess (3 GiB address-space cap, timeout) and classified:

* ``crash``  -- the process died (signal, or a non-zero exit without a verdict: libgomp exit, abort);
* ``wrong``  -- it finished but gave a wrong answer or accepted bad data silently;
* ``lost``   -- a file the user had was destroyed or emptied;
* ``clear``  -- refused with a Python exception naming the problem (CLI: one ``motifcore: error:``
  line, exit 2, no traceback);
* ``ok``     -- accepted and handled correctly (right result, cleaned up, ...).

    python scripts/reliability_check.py            # prints the table of docs/reliability.md

Every case prints ``VERDICT <word>`` as its last line; the table counts the verdicts.
"""

from __future__ import annotations

import collections
import os
import resource
import subprocess
import sys
import tempfile
import textwrap

PRE = '''
import contextlib, io, json, os, sys, threading, zipfile
import numpy as np, motifcore as mc
from motifcore.train.checkpoint import save_checkpoint, load_model
from motifcore.cli import main
def verdict(v): print("VERDICT", v); sys.exit(0)
def clear(fn, *exc):
    try: fn()
    except exc or (ValueError, TypeError) as e: print(type(e).__name__, e); verdict("clear")
    verdict("wrong")
def cli(*args):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(list(args))
    text = err.getvalue().strip()
    print(rc, text)
    one = rc == 2 and len(text.splitlines()) == 1 and text.startswith("motifcore: error:") and "Traceback" not in text
    verdict("clear" if one else "wrong")
def ckpt(name="c.npz", **edits):
    save_checkpoint(name, mc.MotifMLP([12, 16, 3], seed=0))
    z = dict(np.load(name))
    for k, f in edits.items():
        k = k if k.startswith("__") else k.replace("__", ".")
        z[k] = f(z[k])
    np.savez(name, **z); return name
def race(a, b, n=200):
    """a and b run n times each in two threads; both return (answer, expected-set or None)."""
    bad = []
    def loop(f):
        for _ in range(n):
            got, ok = f()
            if ok is not None and not any(np.array_equal(got, e) for e in ok): bad.append(1)
    ts = [threading.Thread(target=loop, args=(f,)) for f in (a, b)]
    [t.start() for t in ts]; [t.join() for t in ts]
    verdict("wrong" if bad else "ok")
M = lambda: mc.MotifMLP([256, 512, 10], motif=2, density=0.2, seed=0, num_threads=1)
X = np.random.default_rng(0).standard_normal((200, 256), dtype=np.float32)
Y = np.arange(200) % 10
'''

CASES: dict[str, list[tuple[str, str]]] = {
    "concurrency (2 threads, 200 calls each)": [
        ("predict + predict", "m = M(); r = m.predict_proba(X)\n"
                              "race(lambda: (m.predict_proba(X), [r]), lambda: (m.predict_proba(X[:64]), [r[:64]]))"),
        ("layer forward + forward", "L = mc.MotifLayer(256, 512, motif=2, density=0.2, num_threads=1)\n"
                                    "r = L.forward(X)\nrace(lambda: (L.forward(X), [r]), lambda: "
                                     "(L.forward(X[:64]), [r[:64]]))"),
        ("predict + evolve", "m = M(); s = M(); ok = [s.predict_proba(X)]\n"
                             "for i in range(200): s.evolve(0.3, seed=i); ok.append(s.predict_proba(X))\n"
                             "it = iter(range(200))\n"
                             "race(lambda: (m.predict_proba(X), ok), lambda: (m.evolve(0.3, seed=next(it)), None))"),
        ("train + evolve", "m = M()\nrace(lambda: (m.train_step(X, Y, lr=0.01), None), lambda: (m.evolve(0.3), None))"),
        ("predict + set_state", "m = M(); s0 = m.get_state(); r = m.predict_proba(X)\n"
                                "race(lambda: (m.predict_proba(X), [r]), lambda: (m.set_state(s0), None))"),
        ("train + train", "m = M(); s = M()\n[s.train_step(X, Y, lr=0.01) for _ in range(400)]\n"
                          "ts = [threading.Thread(target=lambda: [m.train_step(X, Y, lr=0.01) for _ in range(200)]) "
                          "for _ in range(2)]\n[t.start() for t in ts]; [t.join() for t in ts]\n"
                          "a, b = m.get_state(), s.get_state()\n"
                          "verdict('ok' if all(np.array_equal(a[k], b[k]) for k in a) else 'wrong')"),
        ("train + predict", "m = M()\nrace(lambda: (m.train_step(X, Y, lr=0.01), None), "
                            "lambda: (np.isfinite(m.predict_proba(X)).all(), [True]))"),
        ("layer forward + prune_regrow", "L = mc.MotifLayer(256, 512, motif=2, density=0.2, num_threads=1)\n"
                                         "race(lambda: (L.forward(X).shape, [(200, 512)]), "
                                         "lambda: (L.prune_regrow(0.3), None))"),
        ("layer forward + weights set", "L = mc.MotifLayer(256, 512, motif=2, density=0.2, num_threads=1)\n"
                                        "w = L.weights; r = L.forward(X)\n"
                                        "race(lambda: (L.forward(X), [r]), lambda: (setattr(L, 'weights', w), None))"),
    ],
    "thread counts": [
        ("layer.num_threads = -5", "L = mc.MotifLayer(1024, 1024, density=0.5)\n"
                                   "def f(): L.num_threads = -5; L.forward(np.ones((256, 1024)))\nclear(f)"),
        ("num_threads=5000", "clear(lambda: mc.MotifMLP([784, 64, 10], num_threads=5000).train_step("
                             "np.ones((256, 784), np.float32), np.arange(256) % 10))"),
        ("MOTIFCORE_NUM_THREADS=5000", "os.environ['MOTIFCORE_NUM_THREADS'] = '5000'\n"
                                       "clear(lambda: mc.MotifMLP([12, 8, 3]))"),
        ("num_threads=10**12", "clear(lambda: mc.MotifLayer(8, 8, num_threads=10**12))"),
        ("_core forward with -1 threads", "L = mc.MotifLayer(8, 8)\n"
                                          "clear(lambda: L._core.forward(np.ones((2, 8), np.float32), -1))"),
        ("Network.num_threads = 0", "m = M()\ndef f(): m._net.num_threads = 0\nclear(f)"),
    ],
    "divergence and optimizer arguments": [
        ("train_step lr=1e38 then predict", "m = mc.MotifMLP([12, 16, 3], motif=2, density=0.5)\n"
                                            "x = X[:8, :12]; y = Y[:8] % 3\n"
                                            "def f():\n for _ in range(3): m.train_step(x, y, lr=1e38)\n"
                                            " m.predict(x)\nclear(f, FloatingPointError)"),
        ("sgd_step lr=nan", "L = mc.MotifLayer(20, 10); L.forward(np.ones((2, 20))); L.backward(np.ones((2, 10)))\n"
                            "clear(lambda: L.sgd_step(float('nan')))"),
        ("sgd_step lr<0", "L = mc.MotifLayer(20, 10); L.forward(np.ones((2, 20))); L.backward(np.ones((2, 10)))\n"
                          "clear(lambda: L.sgd_step(-1e38))"),
        ("sgd_step momentum=5", "L = mc.MotifLayer(20, 10); L.forward(np.ones((2, 20))); "
                                "L.backward(np.ones((2, 10)))\nclear(lambda: L.sgd_step(0.1, momentum=5.0))"),
    ],
    "crafted checkpoints": [
        ("NaN weights", "clear(lambda: load_model(ckpt(layer0__weights=lambda a: a * np.nan)))"),
        ("inf momentum", "clear(lambda: load_model(ckpt(layer1__weight_velocity=lambda a: a + np.inf)))"),
        ("float64 > FLT_MAX", "clear(lambda: load_model(ckpt(layer0__bias=lambda a: a.astype(float) + 1e39)))"),
        ("float indices", "clear(lambda: load_model(ckpt(layer1__indices=lambda a: a.astype(float))))"),
        ("int64 indices >= 2**32", "clear(lambda: load_model(ckpt(layer1__indices=lambda a: a.astype(np.int64) + "
         "2**32)))"),
        ("model_config 100000-wide, density 1", "import resource\n"
         "resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
         "def big(s):\n m = json.loads(str(s)); m['model_config'].update(sizes=[100000, 100000, 3], density=[1, 1])\n"
         " return np.array(json.dumps(m))\nclear(lambda: load_model(ckpt(__motifcore__=big)))"),
        ("deflate bomb (512 MiB entry)", "ckpt('c.npz')\n"
         "with zipfile.ZipFile('c.npz') as s, zipfile.ZipFile('b.npz', 'w', zipfile.ZIP_DEFLATED) as d:\n"
         " [d.writestr(i.filename, s.read(i)) for i in s.infolist()]\n"
         " f = d.open('pad.npy', 'w', force_zip64=True)\n"
         " np.lib.format.write_array_header_1_0(f, {'descr': '<f4', 'fortran_order': False, 'shape': (128 << 20,)})\n"
         " [f.write(bytes(1 << 24)) for _ in range(32)]; f.close()\nclear(lambda: load_model('b.npz'))"),
        ("npy header claiming 2**34 elements", "ckpt('c.npz')\n"
         "with zipfile.ZipFile('c.npz') as s, zipfile.ZipFile('l.npz', 'w') as d:\n"
         " for i in s.infolist():\n  b = s.read(i)\n"
         "  if i.filename == 'layer0.weights.npy':\n"
         "   a = np.load(s.open(i)); h = np.lib.format.header_data_from_array_1_0(a); h['shape'] = (2**34,)\n"
         "   o = io.BytesIO(); np.lib.format.write_array_header_1_0(o, h); b = o.getvalue() + a.tobytes()\n"
         "  d.writestr(i.filename, b)\nclear(lambda: load_model('l.npz'))"),
        ("truncated checkpoint", "ckpt('c.npz'); b = open('c.npz', 'rb').read(); open('t.npz', "
         "'wb').write(b[:len(b) // 2])\n"
                                 "clear(lambda: load_model('t.npz'))"),
        ("JSON file as checkpoint", "open('j.npz', 'w').write('{}')\nclear(lambda: load_model('j.npz'))"),
        ("state with a missing entry", "m = M(); s = m.get_state(); del s['layer1.bias']\nclear(lambda: "
         "m.set_state(s))"),
        ("Trainer.from_checkpoint without 'evolution'", "save_checkpoint('p.npz', M(), epoch=1, "
         "trainer={'epochs': 2})\n"
                                                        "clear(lambda: mc.Trainer.from_checkpoint('p.npz'))"),
    ],
    "train_epoch order": [
        ("index out of range", "m = M(); w = m.layers[0].weights\n"
         "try: m.train_epoch(X, Y, batch_size=2, order=np.array([0, 1, 2, 3, 1000]))\n"
         "except ValueError: verdict('clear' if m.steps == 0 and np.array_equal(w, m.layers[0].weights) else 'wrong')\n"
         "verdict('wrong')"),
        ("float order", "m = M()\nclear(lambda: m.train_epoch(X, Y, batch_size=4, order=np.array([0.7, 1.9])))"),
        ("negative order", "m = M()\nclear(lambda: m.train_epoch(X, Y, batch_size=4, order=np.array([0, -1])))"),
    ],
    "dataset files": [
        ("CSV first row with a typo", "rows = [f'{i*0.1:.1f},{i*0.2:.1f},{i % 3}' for i in range(60)]; rows[0] = "
         "'x0.0,0.0,0'\n"
         "open('d.csv', 'w').write('\\n'.join(rows))\nclear(lambda: mc.datasets.load('csv:d.csv'), "
          "mc.datasets.DatasetError)"),
        ("CSV value 1e39", "rows = [f'{i*0.1:.1f},{i*0.2:.1f},{i % 3}' for i in range(60)]; rows[5] = '1e39,0,1'\n"
         "open('d.csv', 'w').write('\\n'.join(rows))\nclear(lambda: mc.datasets.load('csv:d.csv'), "
          "mc.datasets.DatasetError)"),
        ("npz value 1e39", "x = np.random.default_rng(0).standard_normal((60, 4)); x[0, 0] = 1e39\n"
         "np.savez('d.npz', X=x, y=np.arange(60) % 3)\nclear(lambda: mc.datasets.load('npz:d.npz'), "
          "mc.datasets.DatasetError)"),
        (".mat value 1e39", "import scipy.io\nx = np.random.default_rng(0).standard_normal((60, 4)); x[0, 0] = 1e39\n"
         "scipy.io.savemat('d.mat', {'X': x, 'Y': np.arange(60) % 3})\n"
         "clear(lambda: mc.datasets.load('skf:d', data_dir='.'), mc.datasets.DatasetError)"),
    ],
    "command line": [
        ("train --out onto an existing run", "a = ['train', '--dataset', 'digits', '--hidden', '16', '--epochs', '1', "
         "'--threads', '1', '--no-progress', '--out', 'runA']\n"
         "with contextlib.redirect_stdout(io.StringIO()): main(a)\nbefore = open('runA/metrics.jsonl').read()\n"
         "err = io.StringIO()\nwith contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()): "
         "rc = main(a[:-2] + ['--seed', '5', '--out', 'runA'])\n"
         "verdict('clear' if rc == 2 and open('runA/metrics.jsonl').read() == before else 'lost')"),
        ("--hidden 3000000000 (3 GiB cap)", "import resource\nresource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 "
         "<< 30))\n"
         "cli('train', '--dataset', 'digits', '--hidden', '3000000000', '--epochs', '1', '--no-progress', "
          "'--out', 'o')"),
        ("--threads 10**12", "cli('train', '--dataset', 'digits', '--hidden', '16', '--epochs', '1', '--threads', "
                             "'1000000000000', '--no-progress', '--out', 'o')"),
        ("--seed 2**32", "cli('train', '--dataset', 'digits', '--seed', str(2**32), '--out', 'o')"),
        ("--warmup > --epochs", "cli('train', '--dataset', 'digits', '--epochs', '2', '--warmup', '5', '--out', 'o')"),
        ("--resume of a JSON file", "open('j.json', 'w').write('{}')\ncli('train', '--resume', 'j.json')"),
        ("--resume of partial metadata", "save_checkpoint('p.npz', mc.MotifMLP([64, 16, 10]), epoch=1, "
         "trainer={'epochs': 2}, extra={'cli': {'dataset': 'digits'}})\ncli('train', '--resume', 'p.npz')"),
        ("evaluate a NaN checkpoint", "np.savez('d.npz', X=X[:, :12], y=Y % 3)\n"
         "cli('evaluate', '--checkpoint', ckpt(layer0__weights=lambda a: a * np.nan), '--dataset', 'npz:d.npz')"),
    ],
    "interrupted writes and sweeps": [
        ("kill -9 inside a checkpoint write", "import subprocess\n"
         "code = 'import os; from motifcore._internal.io import atomic_write\\n' \\\n"
         "       'def w(f): f.write(b\"x\" * 4096); f.flush(); os.kill(os.getpid(), 9)\\n' \\\n"
         "       'atomic_write(\"ck.npz\", w)'\n"
         "open('ck.npz', 'wb').write(b'old')\nsubprocess.run([sys.executable, '-c', code])\n"
         "intact = open('ck.npz', 'rb').read() == b'old'\n"
         "from motifcore._internal.io import atomic_write; atomic_write('other', b'x'); atomic_write('ck.npz', "
          "b'new')\n"
         "left = [f for f in os.listdir('.') if f.endswith('.tmp')]\n"
         "verdict('ok' if intact and not left else 'lost' if not intact else 'wrong')"),
        ("interrupt while metrics.jsonl is rewritten", "from motifcore.train.trainer import JSONLLogger\n"
         "open('m.jsonl', 'w').write('{\"epoch\": 1}\\n{\"epoch\": 2}\\n')\n"
         "class T: epoch = 1\nreal = os.replace\n"
         "def boom(*a): raise KeyboardInterrupt\nos.replace = boom\n"
         "try: JSONLLogger('m.jsonl').on_train_begin(T())\nexcept KeyboardInterrupt: pass\nos.replace = real\n"
         "verdict('ok' if open('m.jsonl').read().count('epoch') == 2 else 'lost')"),
        ("sweep record with a garbage metric", "import warnings\nfrom motifcore.experiments.sweep import load_runs\n"
         "os.makedirs('s/runs')\nr = {'run_id': 'a', 'status': 'ok', 'config': {}, 'metrics': {'test_accuracy': "
          "'garbage'}}\n"
         "json.dump(r, open('s/runs/a.json', 'w'))\nwarnings.simplefilter('ignore')\n"
         "verdict('ok' if load_runs('s') == [] else 'wrong')"),
        ("corrupted stored sweep checkpoint", "import hashlib, warnings\nfrom motifcore.experiments.sweep import "
         "load_runs\n"
         "os.makedirs('s/runs'); os.makedirs('s/checkpoints'); open('s/checkpoints/a.npz', 'wb').write(b'good')\n"
         "r = {'run_id': 'a', 'status': 'ok', 'config': {}, 'metrics': {}, 'checkpoint': 'checkpoints/a.npz', "
         "'checkpoint_sha256': hashlib.sha256(b'good').hexdigest()}\njson.dump(r, open('s/runs/a.json', 'w'))\n"
         "open('s/checkpoints/a.npz', 'wb').write(b'gooc')\nwarnings.simplefilter('ignore')\n"
         "verdict('ok' if load_runs('s', verify_checkpoints=True) == [] else 'wrong')"),
    ],
    "seeds and sizes": [
        ("seed=2**64", "clear(lambda: mc.MotifMLP([12, 8, 3], seed=2**64))"),
        ("seed=2**200 on a layer", "clear(lambda: mc.MotifLayer(8, 8, seed=2**200))"),
        ("sizes given as a dict", "clear(lambda: mc.MotifMLP({12: 1, 3: 2}))"),
        ("target_blocks with motif 0", "clear(lambda: mc._core.target_blocks(10, 10, 0, 1, 0.5, 0.0))"),
    ],
}


def run_case(code: str) -> tuple[str, str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
        os.nice(5)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MOTIFCORE_NUM_THREADS": "1"}
        try:
            r = subprocess.run([sys.executable, "-c", PRE + textwrap.dedent(code)], cwd=tmp, env=env,
                               capture_output=True, text=True, timeout=300, preexec_fn=limit)
        except subprocess.TimeoutExpired:
            return "crash", "timeout (hang)"
    last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    if last.startswith("VERDICT ") and r.returncode == 0:
        return last.split()[1], (r.stdout.strip().splitlines() or [""])[0][:110]
    return "crash", f"exit {r.returncode}: {(r.stderr.strip().splitlines() or [''])[-1][:100]}"


def main() -> int:
    totals: collections.Counter = collections.Counter()
    rows = []
    for group, cases in CASES.items():
        counts: collections.Counter = collections.Counter()
        for name, code in cases:
            verdict, detail = run_case(code)
            counts[verdict] += 1
            print(f"  {group} / {name}: {verdict}  {detail}", file=sys.stderr)
        totals.update(counts)
        rows.append((group, len(cases), counts))
    print("| class | tried | crashes | silent wrong results | data lost | clear error | handled correctly |")
    print("|---|---|---|---|---|---|---|")
    for group, n, c in rows + [("**total**", sum(n for _, n, _ in rows), totals)]:
        print(f"| {group} | {n} | {c['crash']} | {c['wrong']} | {c['lost']} | {c['clear']} | {c['ok']} |")
    return 0 if totals["crash"] + totals["wrong"] + totals["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
