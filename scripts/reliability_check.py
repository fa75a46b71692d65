"""Fault and bad-input classes of the red-team reports (reviews 2026-11-29 and 2026-12-06: export,
import from torch, plot, analyze, baselines, the run-folder lock, motifcore.torch, checkpoint
entries), each run in its own subprocess (4 GiB address-space cap, 300 s timeout, niceness +5) and
classified:

* ``crash``  -- the process died (signal, or a non-zero exit without a verdict: libgomp exit, abort);
* ``hang``   -- it did not finish within the timeout (300 s);
* ``wrong``  -- it finished but gave a wrong answer or accepted bad data silently;
* ``lost``   -- a file the user had was destroyed or emptied;
* ``clear``  -- refused with a Python exception naming the problem (CLI: one ``motifcore: error:``
  line, exit 2, no traceback);
* ``ok``     -- accepted and handled correctly (right result, cleaned up, ...).

    python scripts/reliability_check.py            # prints the table of docs/reliability.md
    python scripts/reliability_check.py export plot  # only the classes whose name holds a word

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
def quiet(*args):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(list(args))
    return rc, err.getvalue().strip()
def run_dir(name="run", epochs="1"):
    rc, err = quiet("train", "--dataset", "digits", "--hidden", "16", "--epochs", epochs, "--threads", "1",
                    "--no-progress", "--out", name)
    assert rc == 0, err
    return name
def cli_keeps(paths, *args, say=None):
    """A CLI refusal (one line, exit 2) that leaves every file of `paths` as it was: clear, else
    lost (a file changed or vanished) or wrong (accepted, or not one line, or `say` missing)."""
    before = {p: open(p, "rb").read() for p in paths}
    rc, text = quiet(*args)
    print(rc, text)
    if any(not os.path.exists(p) or open(p, "rb").read() != b for p, b in before.items()):
        verdict("lost")
    one = rc == 2 and len(text.splitlines()) == 1 and text.startswith("motifcore: error:") and "Traceback" not in text
    verdict("clear" if one and (say is None or say in text) else "wrong")
def digest(*arrays):
    import hashlib
    h = hashlib.sha1()
    for a in arrays: h.update(np.ascontiguousarray(a).tobytes())
    return np.array(h.hexdigest())
def lock_race(argvs, timeout=280):
    """The CLI commands `argvs` started together, each in its own process: (exit codes, stderr)."""
    import subprocess
    ps = [subprocess.Popen([sys.executable, "-m", "motifcore", *a], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True) for a in argvs]
    out = [p.communicate(timeout=timeout) for p in ps]
    return [p.returncode for p in ps], [e for _, e in out]
def killed_run(name, epochs, rows):
    """`motifcore train --epochs epochs --out name` killed (SIGKILL) once `rows` epochs are logged."""
    import subprocess, time
    p = subprocess.Popen([sys.executable, "-m", "motifcore", "train", "--dataset", "digits", "--hidden", "16",
                          "--epochs", str(epochs), "--threads", "1", "--no-progress", "--out", name],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = os.path.join(name, "metrics.jsonl")
    while p.poll() is None and not (os.path.exists(log) and len(epochs_of(log)) >= rows):
        time.sleep(0.02)
    p.kill(); p.wait()
    return epochs_of(log)
def epochs_of(path):
    return [json.loads(l)["epoch"] for l in open(path) if l.strip()]
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
        ("interrupt while metrics.jsonl is rewritten", "from motifcore.train.callbacks import JSONLLogger\n"
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
    "export (every format)": [
        *[(f"export --format {f} onto the run's {rec}",
           f"run_dir()\ncli_keeps(['run/checkpoint.npz', 'run/metrics.jsonl'], 'export', 'run', '--format', '{f}', "
           f"'--out', 'run/{rec}', '--overwrite')")
          for f, rec in (("npz", "checkpoint.npz"), ("onnx", "metrics.jsonl"), ("torch", "config.json"))],
        *[(f"export --format {f} onto the user's file", f"run_dir(); open('mine', 'wb').write(b'mine')\n"
           f"cli_keeps(['mine'], 'export', 'run', '--format', '{f}', '--out', 'mine', say='--overwrite')")
          for f in ("npz", "onnx", "torch")],
        ("export --out a folder", "run_dir(); os.mkdir('d')\ncli('export', 'run', '--format', 'onnx', '--out', 'd')"),
        ("export --format torch, disk full (RLIMIT_FSIZE 1000 bytes)",
         "import resource\nrun_dir()\nresource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
         "cli_keeps(['run/checkpoint.npz'], 'export', 'run', '--format', 'torch', '--out', 'm.pt')"),
        ("export of a NaN checkpoint", "cli('export', ckpt(layer0__weights=lambda a: a * np.nan), '--format', 'npz')"),
        ("onnx file gives the engine's logits", "import onnxruntime as ort\nm = M()\n"
         "mc.export.save(m, 'm.onnx', 'onnx')\ns = ort.InferenceSession('m.onnx', providers=['CPUExecutionProvider'])\n"
         "out = s.run(None, {s.get_inputs()[0].name: X})[0]\n"
         "verdict('ok' if np.allclose(out, m.decision_function(X), rtol=1e-4, atol=1e-4) else 'wrong')"),
        ("torch file gives the engine's logits", "import torch\nm = M()\nmc.export.save(m, 'm.pt', 'torch')\n"
         "t = torch.load('m.pt', weights_only=False)\nwith torch.no_grad(): out = t(torch.from_numpy(X)).numpy()\n"
         "verdict('ok' if np.allclose(out, m.decision_function(X), rtol=1e-4, atol=1e-4) else 'wrong')"),
        ("npz file holds the model's arrays", "m = M()\nmc.export.save(m, 'm.npz', 'npz')\nz = np.load('m.npz')\n"
         "d = mc.export.to_npz_dict(mc.export.model_layers(m), m.sizes)\n"
         "verdict('ok' if set(z.files) == set(d) and all(np.array_equal(z[k], d[k]) for k in d) else 'wrong')"),
        ("scipy matrices give the engine's logits", "m = M(); h = X\n"
         "for i, L in enumerate(mc.export.to_scipy(m)):\n"
         " h = np.asarray(L.weight @ h.T).T + L.bias\n h = np.maximum(h, 0) if L.activation == 'relu' else h\n"
         "verdict('ok' if np.allclose(h, m.decision_function(X), rtol=1e-4, atol=1e-4) else 'wrong')"),
        *[(f"{name} export while another thread evolves (100 calls each)",
           "m = M(); s = M(); it = iter(range(100))\n"
           f"def read(m): return digest(*{arrays})\n"
           "ok = [read(s)]\nfor i in range(100): s.evolve(0.3, seed=i); ok.append(read(s))\n"
           "race(lambda: (read(m), ok), lambda: (m.evolve(0.3, seed=next(it)), None), n=100)")
          for name, arrays in (
              ("npz", "[a for _, a in sorted(mc.export.to_npz_dict(mc.export.model_layers(m), m.sizes).items())]"),
              ("scipy", "[L.weight.toarray() for L in mc.export.to_scipy(m)]"),
          )],
        ("torch export while another thread evolves (100 calls each)",
         "import torch\nm = M(); s = M(); it = iter(range(100))\n"
         "def read(m): return digest(*[v.numpy() for _, v in sorted(mc.export.to_torch(m).state_dict().items())])\n"
         "ok = [read(s)]\nfor i in range(100): s.evolve(0.3, seed=i); ok.append(read(s))\n"
         "race(lambda: (read(m), ok), lambda: (m.evolve(0.3, seed=next(it)), None), n=100)"),
        ("onnx export while another thread evolves (100 calls each)",
         "m = M(); s = M(); it = iter(range(100))\n"
         "def read(m): return np.array(mc.export.onnx_model(m).SerializeToString())\n"
         "ok = [read(s)]\nfor i in range(100): s.evolve(0.3, seed=i); ok.append(read(s))\n"
         "race(lambda: (read(m), ok), lambda: (m.evolve(0.3, seed=next(it)), None), n=100)"),
    ],
    "import from torch (MotifMLP.from_torch)": [
        *[(f"from_torch of {name}", "import torch\nfrom torch import nn\ntorch.manual_seed(0)\n"
           f"lin = nn.Linear(16, 16)\nt = nn.Sequential({mods})\n"
           "clear(lambda: mc.MotifMLP.from_torch(t))")
          for name, mods in (
              ("Tanh", "nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 3)"),
              ("no activation", "nn.Linear(12, 16), nn.Linear(16, 3)"),
              ("a parameter-free LayerNorm", "nn.Linear(12, 16), nn.ReLU(), "
                                             "nn.LayerNorm(16, elementwise_affine=False), "
                                             "nn.Linear(16, 3)"),
              ("a reused Linear", "nn.Linear(12, 16), nn.ReLU(), lin, nn.ReLU(), lin, nn.ReLU(), nn.Linear(16, 3)"),
              ("a ReLU on the logits", "nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3), nn.ReLU()"),
              ("a Conv1d", "nn.Conv1d(1, 1, 3), nn.Linear(10, 3)"),
          )],
        ("from_torch of a custom forward", "import torch\nfrom torch import nn\n"
         "class C(nn.Module):\n def __init__(s): super().__init__(); s.a = nn.Linear(12, 16); s.b = nn.Linear(16, 3)\n"
         " def forward(s, x): return s.b(torch.sigmoid(s.a(x)))\nclear(lambda: mc.MotifMLP.from_torch(C()))"),
        ("from_torch of Linear-ReLU-Dropout-Linear is exact", "import torch\nfrom torch import nn\n"
                                                              "torch.manual_seed(0)\n"
         "t = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3)).eval()\n"
         "m = mc.MotifMLP.from_torch(t); x = X[:9, :12]\nwith torch.no_grad(): r = t(torch.from_numpy(x)).numpy()\n"
         "verdict('ok' if np.allclose(m.decision_function(x), r, rtol=1e-5, atol=1e-5) else 'wrong')"),
        ("from_torch of an all-zero Linear saves and loads", "import torch\nfrom torch import nn\n"
         "t = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3))\nt[0].weight.data.zero_()\n"
         "m = mc.MotifMLP.from_torch(t); save_checkpoint('z.npz', m); b = load_model('z.npz')\n"
         "verdict('ok' if np.array_equal("
         "b.decision_function(X[:5, :12]), m.decision_function(X[:5, :12])) else 'wrong')"),
    ],
    "plot": [
        ("plot --out the run's metrics.jsonl", "run_dir()\ncli_keeps(['run/metrics.jsonl'], 'plot', 'run', '--out', "
         "'run/metrics.jsonl', '--overwrite')"),
        ("plot --out the user's PNG", "run_dir(); open('mine.png', 'wb').write(b'png')\n"
         "cli_keeps(['mine.png'], 'plot', 'run', '--out', 'mine.png', say='--overwrite')"),
        ("plot of string-valued losses", "run_dir()\nrows = [json.loads(l) for l in open('run/metrics.jsonl')]\n"
         "rows[0]['train_loss'] = 'abc'\n"
         "open('run/metrics.jsonl', 'w').write(''.join(json.dumps(r) + '\\n' for r in rows))\n"
         "cli('plot', 'run', '--out', 'p.png')"),
        ("plot of duplicate epochs", "run_dir()\nl = open('run/metrics.jsonl').read()\n"
         "open('run/metrics.jsonl', 'w').write(l + l)\ncli('plot', 'run', '--out', 'p.png')"),
        ("plot of a folder without metrics", "os.mkdir('e')\ncli('plot', 'e', '--out', 'p.png')"),
        ("plot of a run", "run_dir()\nrc, err = quiet('plot', 'run', '--out', 'p.png')\n"
         "verdict('ok' if rc == 0 and open('p.png', 'rb').read(4) == b'\\x89PNG' else 'wrong')"),
    ],
    "analyze": [
        ("analyze a NaN checkpoint", "os.mkdir('r'); ckpt('r/checkpoint.npz', layer0__weights=lambda a: a * np.nan)\n"
         "cli('analyze', 'r', '--no-robustness')"),
        ("analyze --out a file", "run_dir(); open('f', 'w').write('mine')\n"
         "cli_keeps(['f'], 'analyze', 'run', '--no-robustness', '--out', 'f')"),
        ("analyze with a record that is a folder", "run_dir(); os.makedirs('run/analysis/analysis.json')\n"
         "cli_keeps(['run/checkpoint.npz'], 'analyze', 'run', '--no-robustness', '--no-figures', "
         "say='run/analysis/analysis.json')"),
        ("analyze a missing run", "cli('analyze', 'nowhere')"),
        ("analyze of a run", "run_dir()\nrc, err = quiet('analyze', 'run', '--no-figures', '--samples', '4', "
         "'--points', '3', '--repeats', '1', '--limit-test', '50')\n"
         "verdict('ok' if rc == 0 and 'counts' in json.load(open('run/analysis/analysis.json')) else 'wrong')"),
    ],
    "baselines": [
        ("baselines --temperature inf", "rc, t = quiet('baselines', '--dataset', 'digits', "
                                        "'--out', 'b', '--temperature', "
         "'inf')\nprint(rc, t)\nverdict('clear' if rc == 2 and len(t.splitlines()) == 1 and '(0, inf]' not in t "
         "else 'wrong')"),
        ("baselines --density 0", "cli('baselines', '--dataset', 'digits', '--out', 'b', '--density', '0')"),
        ("baselines --out a file", "open('f', 'w').write('mine')\n"
         "cli_keeps(['f'], 'baselines', '--dataset', 'digits', '--hidden', '16', '--out', 'f')"),
        ("baselines --rows unknown", "cli('baselines', '--dataset', 'digits', '--out', 'b', '--rows', 'nope')"),
        ("baselines --tables-only of an empty folder", "os.mkdir('b')\n"
         "rc, t = quiet('baselines', '--dataset', 'digits', '--hidden', '16', '--out', 'b', '--tables-only')\n"
         "print(rc, t)\nverdict('ok' if rc == 0 else 'clear' if rc == 2 and len(t.splitlines()) == 1 else 'wrong')"),
    ],
    "run-folder lock (whole CLI processes)": [
        ("two trains into one --out at once", "a = ['train', '--dataset', 'digits', '--hidden', '16', '--epochs', '4', "
         "'--threads', '1', '--no-progress', '--out', 'r2']\ncodes, errs = lock_race([a, a])\nprint(codes, errs)\n"
         "one = sorted(codes) == [0, 2] and 'motifcore: error:' in errs[codes.index(2)]\n"
         "verdict('clear' if one and epochs_of('r2/metrics.jsonl') == [1, 2, 3, 4] else 'wrong')"),
        ("two resumes of one checkpoint at once", "start = killed_run('r', 8, 2)\n"
         "a = ['train', '--resume', 'r/checkpoint.npz', '--no-progress', '--threads', '1']\n"
         "codes, errs = lock_race([a, a])\nprint(start, codes, errs)\ne = epochs_of('r/metrics.jsonl')\n"
         "verdict('clear' if sorted(codes) == [0, 2] and e == list(range(1, 9)) else 'wrong')"),
        ("train into a folder another process holds", "import subprocess\n"
         "h = subprocess.Popen([sys.executable, '-c', "
         "'import sys, time\\nfrom motifcore._internal.io import FolderLock\\n"
         "FolderLock(\"held\").acquire()\\nprint(1, flush=True)\\n"
         "time.sleep(60)'], stdout=subprocess.PIPE, text=True)\n"
         "h.stdout.readline()\ntry:\n rc, t = quiet('train', '--dataset', 'digits', '--hidden', '16', '--epochs', '1', "
         "'--out', 'held')\nfinally:\n h.kill(); h.wait()\nprint(rc, t)\n"
         "verdict('clear' if rc == 2 and 'held' in t and not os.path.exists('held/checkpoint.npz') else 'wrong')"),
        ("a killed train leaves no stale lock", "import subprocess, time\n"
         "p = subprocess.Popen([sys.executable, '-m', 'motifcore', 'train', '--dataset', 'digits', '--hidden', '16', "
         "'--epochs', '50', '--threads', '1', '--no-progress', '--out', 'k'], stdout=subprocess.DEVNULL, "
         "stderr=subprocess.DEVNULL)\n"
         "while p.poll() is None and not os.path.exists('k/checkpoint.npz'): time.sleep(0.05)\np.kill(); p.wait()\n"
         "from motifcore._internal.io import FolderLock\ntry: FolderLock('k').acquire()\n"
         "except Exception as e: print(type(e).__name__, e); verdict('wrong')\nverdict('ok')"),
    ],
    "motifcore.torch layers": [
        *[(f"MotifLinear forward of {name}", "import torch\nfrom motifcore.torch import MotifLinear\n"
           f"L = MotifLinear(12, 8, motif=2, density=0.5, seed=0, num_threads=1)\nclear(lambda: L({x}))")
          for name, x in (
              ("NaN", "torch.full((3, 12), float('nan'))"),
              ("float64", "torch.ones(3, 12, dtype=torch.float64)"),
              ("a wrong width", "torch.ones(3, 11)"),
              ("a sparse tensor", "torch.ones(3, 12).to_sparse()"),
              ("a 0-d tensor", "torch.tensor(1.0)"),
              ("a NumPy array", "np.ones((3, 12), np.float32)"),
              ("1e39 (float32 overflow)", "torch.full((3, 12), 3e38) * 10"),
          )],
        *[(f"MotifLinear({args})", "from motifcore.torch import MotifLinear\n"
           f"clear(lambda: MotifLinear({args}))")
          for args in ("0, 8", "12, 8, motif=0", "12, 8, density=1.5", "12, 8, density=float('nan')",
                       "12, 8, activation='tanh'", "12, 8, num_threads=10**9")],
        ("MotifLinear gradients match a dense reference", "import torch\nfrom motifcore.torch import MotifLinear\n"
         "L = MotifLinear(12, 8, motif=2, density=0.5, seed=0, num_threads=1)\n"
         "x = torch.randn(5, 12, requires_grad=True)\n"
         "L(x).square().sum().backward()\nW = L.to_dense().detach().requires_grad_(); b = L.dense_bias().detach()\n"
         "x2 = x.detach().clone().requires_grad_(); (x2 @ W.T + b).square().sum().backward()\n"
         "verdict('ok' if torch.allclose(x.grad, x2.grad, rtol=1e-4, atol=1e-5) else 'wrong')"),
        *[(f"{cls} on {name}", "import torch\nfrom torch import nn\n"
                               "from motifcore.torch import MotifLinear, SET, RigL, DSR\n"
           f"model = {model}\nclear(lambda: {cls}(model, {extra}))")
          for cls, extra in (("SET", "None"), ("RigL", "None, total_steps=100"), ("DSR", "None, total_steps=100"))
          for name, model in (("a model without MotifLinear", "nn.Sequential(nn.Linear(4, 4), nn.ReLU())"),
                              ("a non-module", "np.ones(3)"))],
        ("SET zeta=1.5", "from motifcore.torch import MotifLinear, SET\n"
         "clear(lambda: SET(MotifLinear(12, 8, num_threads=1), None, zeta=1.5))"),
        ("RigL total_steps=0", "from motifcore.torch import MotifLinear, RigL\n"
         "clear(lambda: RigL(MotifLinear(12, 8, num_threads=1), None, total_steps=0))"),
        ("SET with a foreign optimizer", "import torch\nfrom motifcore.torch import MotifLinear, SET\n"
         "clear(lambda: SET(MotifLinear(12, 8, num_threads=1), 'adam'))"),
        ("SET update keeps torch and engine in step", "import torch\nfrom motifcore.torch import MotifLinear, SET\n"
         "L = MotifLinear(64, 32, motif=2, density=0.3, seed=0, num_threads=1)\n"
         "opt = torch.optim.Adam(L.parameters(), lr=1e-2)\ns = SET(L, opt, zeta=0.3, interval=1)\n"
         "x = torch.randn(8, 64)\n"
         "for _ in range(5):\n opt.zero_grad(); L(x).square().sum().backward(); opt.step(); s.step()\n"
         "W = L.to_dense().detach(); r = x @ W.T + L.dense_bias().detach()\n"
         "verdict('ok' if torch.allclose(L(x).detach(), r, rtol=1e-4, atol=1e-4) and L.n_blocks > 0 else 'wrong')"),
        ("to_mlp of MotifLinear-Tanh-MotifLinear", "import torch\nfrom torch import nn\n"
         "from motifcore.torch import MotifLinear, to_mlp\n"
         "t = nn.Sequential(MotifLinear(12, 16, num_threads=1), nn.Tanh(), MotifLinear(16, 3, num_threads=1))\n"
         "clear(lambda: to_mlp(t))"),
    ],
    "checkpoint entries (round two)": [
        *[(f"1 GiB zero entry named {name}", "ckpt('c.npz')\n"
           "with zipfile.ZipFile('c.npz') as s, zipfile.ZipFile('b.npz', 'w', zipfile.ZIP_DEFLATED) as d:\n"
           f" [d.writestr(i.filename, s.read(i)) for i in s.infolist() if i.filename != '{name}']\n"
           f" f = d.open('{name}', 'w', force_zip64=True)\n"
           " np.lib.format.write_array_header_1_0(f, {'descr': '<f4', 'fortran_order': False, 'shape': (256 << 20,)})\n"
           " [f.write(bytes(1 << 24)) for _ in range(64)]; f.close()\n"
           "import resource\nresource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
           "clear(lambda: load_model('b.npz'))")
          for name in ("layer0.pad.npy", "step.npy", "dropout_seed.npy")],
        ("a 0-block layer saves and loads", "m = mc.MotifMLP([12, 16, 3], density=0.5, seed=0)\n"
         "m.layers[0].keep_where(np.zeros(m.layers[0].n_blocks, bool))\n"
         "save_checkpoint('z.npz', m)\nb = load_model('z.npz')\n"
         "verdict('ok' if b.layers[0].n_blocks == 0 and np.array_equal(b.predict_proba(X[:4, :12]), "
         "m.predict_proba(X[:4, :12])) else 'wrong')"),
        ("step entry of another dtype", "clear(lambda: load_model(ckpt(step=lambda a: np.array(['x']))))"),
        ("resume restores damaged metrics rows", "start = killed_run('r', 6, 3)\n"
         "l = open('r/metrics.jsonl').read().splitlines()\nl[1] = 'garbage'\n"
         "open('r/metrics.jsonl', 'w').write('\\n'.join(l) + '\\n')\n"
         "rc, t = quiet('train', '--resume', 'r/checkpoint.npz', '--no-progress', '--threads', '1')\n"
         "print(rc, t, start)\nverdict('ok' if rc == 0 and epochs_of('r/metrics.jsonl') == [1, 2, 3, 4, 5, 6] else "
         "'lost')"),
    ],
    "messages (round two)": [
        ("train_step lr=1e38 is blamed on its own step", "m = mc.MotifMLP([12, 16, 3], motif=2, density=0.5)\n"
         "x = X[:8, :12]; y = Y[:8] % 3\ntry: m.train_step(x, y, lr=1e38)\n"
         "except FloatingPointError as e: print(e); verdict('clear' if 'lr 1e+38' in str(e) else 'wrong')\n"
         "verdict('wrong')"),
        ("--dataset csv:/dev/zero", "rc, t = quiet('train', '--dataset', 'csv:/dev/zero', '--out', 'o')\nprint(rc, t)\n"
         "verdict('clear' if rc == 2 and 'not a regular file' in t and 'not found' not in t else 'wrong')"),
        ("train --out a file", "open('f', 'w').write('mine')\n"
         "cli_keeps(['f'], 'train', '--dataset', 'digits', '--epochs', '1', '--out', 'f', say='f is a file')"),
        ("sweep --out a file", "open('f', 'w').write('mine')\n"
                               "cli_keeps(['f'], 'sweep', '--dataset', 'digits', '--out', 'f')"),
        ("a run record that is a folder", "os.makedirs('o/summary.json')\n"
         "rc, t = quiet('train', '--dataset', 'digits', '--hidden', '16', '--epochs', '1', "
         "'--no-progress', '--out', 'o', "
         "'--overwrite')\nprint(rc, t)\n"
         "verdict('clear' if rc == 2 and 'summary.json' in t and '.tmp' not in t else 'wrong')"),
        ("ch3_l3_scores num_threads=3.7", "from motifcore.analysis import dst\n"
                                          "m = mc.MotifMLP([12, 16, 3], density=0.5)\n"
         "clear(lambda: dst.ch3_l3_scores(m.layers[0], num_threads=3.7))"),
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
            return "hang", "timeout"
    last = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    if last.startswith("VERDICT ") and r.returncode == 0:
        return last.split()[1], (r.stdout.strip().splitlines() or [""])[0][:110]
    return "crash", f"exit {r.returncode}: {(r.stderr.strip().splitlines() or [''])[-1][:100]}"


def main(words: list[str]) -> int:
    totals: collections.Counter = collections.Counter()
    rows = []
    for group, cases in CASES.items():
        if words and not any(w.lower() in group.lower() for w in words):
            continue
        counts: collections.Counter = collections.Counter()
        for name, code in cases:
            verdict, detail = run_case(code)
            counts[verdict] += 1
            print(f"  {group} / {name}: {verdict}  {detail}", file=sys.stderr)
        totals.update(counts)
        rows.append((group, len(cases), counts))
    print("| class | tried | crashes | hangs | silent wrong results | data lost | clear error | handled correctly |")
    print("|---|---|---|---|---|---|---|---|")
    for group, n, c in rows + [("**total**", sum(n for _, n, _ in rows), totals)]:
        print(f"| {group} | {n} | {c['crash']} | {c['hang']} | {c['wrong']} | {c['lost']} | {c['clear']} | {c['ok']} |")
    return 0 if totals["crash"] + totals["hang"] + totals["wrong"] + totals["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
