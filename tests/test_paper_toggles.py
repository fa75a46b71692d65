"""The Motif-SET paper's literal choices as options (issue 19, item 3): the 1/m block gradient
(``block_grad="paper"``), the block-shared output layer (``output_motif="divisible"``), per-motif
bias (``bias="motif"``), regrowth from N(0, sigma^2) (``regrow="normal"``) and the epoch-counted
learning-rate schedule (``lr_schedule="cosine-epoch"``). Each is off by default, and off means the
same bits as before; on, each does what docs/training.md says, checked against a formula written
here, not against the code's own output."""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys

import numpy as np
import pytest
from conftest import REPO
from motifcore import MotifLayer, MotifMLP, Trainer
from motifcore.cli import build_parser, main
from motifcore.defaults import BIAS_MODES, BLOCK_GRAD, BLOCK_GRADS, LR_SCHEDULES, OUTPUT_MOTIFS, RECIPES, REGROW_MODES
from motifcore.experiments.config import RunConfig
from motifcore.train.checkpoint import read_metadata
from motifcore.train.schedules import lr_schedule


def blobs(n=400, d=16, k=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(k, d))
    y = rng.integers(0, k, size=n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y.astype(np.int64)


def same_state(a, b):
    sa, sb = a.get_state(), b.get_state()
    return sa.keys() == sb.keys() and all(np.array_equal(sa[k], sb[k]) for k in sa)


# ---- defaults: every option off -----------------------------------------------------------------

def test_every_option_is_off_by_default():
    model = MotifMLP([16, 8, 4], motif=2, density=0.5, seed=0, num_threads=1)
    for recipe in RECIPES:
        cfg = Trainer(model, recipe=recipe, progress=False).config
        assert cfg["block_grad"] == BLOCK_GRAD == "sum"
        assert cfg["lr_schedule"] == "cosine"           # both recipes: counted in steps
        assert cfg["regrow"] != "normal"
    rc = RunConfig(dataset="digits")
    assert rc.output_motif == "one" and rc.bias == "neuron" and rc.block_grad == "sum"
    assert rc.network_motif(10) == 1
    assert MotifMLP([16, 8, 4], motif=2).config["bias"] == "neuron"
    assert "normal" in REGROW_MODES and "cosine-epoch" in LR_SCHEDULES


def test_cli_choices_come_from_the_registries():
    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    train = {a.option_strings[0]: a for a in subs.choices["train"]._actions if a.option_strings}
    assert tuple(train["--block-grad"].choices) == BLOCK_GRADS
    assert tuple(train["--bias"].choices) == BIAS_MODES
    assert tuple(train["--output-motif"].choices) == OUTPUT_MOTIFS
    assert all(train[f].default is None for f in ("--block-grad", "--bias", "--output-motif"))


# ---- the 1/m block gradient ---------------------------------------------------------------------

def test_grad_factor_of_one_is_bit_identical():
    X, y = blobs()
    a, b = (MotifMLP([16, 12, 12, 4], motif=[2, 2, 1], density=0.5, seed=3, num_threads=1) for _ in range(2))
    for seed in (0, 1):
        a.train_epoch(X, y, batch_size=32, lr=0.05, seed=seed)
        b.train_epoch(X, y, batch_size=32, lr=0.05, seed=seed, weight_grad_factor=[1.0, 1.0, 1.0])
    assert same_state(a, b)
    c, d = (MotifMLP([16, 12, 12, 4], motif=[2, 2, 1], density=0.5, seed=3, num_threads=1) for _ in range(2))
    Trainer(c, epochs=2, recipe="paper", warmup=1, progress=False).fit(X, y)
    Trainer(d, epochs=2, recipe="paper", warmup=1, block_grad="sum", progress=False).fit(X, y)
    assert same_state(c, d)


def test_grad_factor_scales_the_block_weight_gradient_only():
    """One SGD step from the same state: with factor f and weight decay wd the block weights move
    by -lr (f g + wd K), g the gradient seen by the plain step (momentum 0, wd 0); biases (zero at
    init) move exactly as in the plain step."""
    X, y = blobs(n=64)
    f = [0.5, 0.25, 1.0]
    lr, wd = 0.05, 0.01
    plain, scaled = (MotifMLP([16, 12, 12, 4], motif=[2, 4, 1], density=0.6, seed=1, num_threads=1) for _ in range(2))
    K0 = [layer.weights.astype(np.float64) for layer in plain.layers]
    plain.train_step(X, y, lr=lr, momentum=0.0, weight_decay=0.0)
    scaled.train_step(X, y, lr=lr, momentum=0.0, weight_decay=wd, weight_grad_factor=f)
    for i, (a, b) in enumerate(zip(plain.layers, scaled.layers)):
        g = (K0[i] - a.weights) / lr
        want = K0[i] - lr * (f[i] * g + wd * K0[i])
        np.testing.assert_allclose(b.weights, want, rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(a.bias, b.bias)
        if f[i] != 1.0:
            assert not np.allclose(a.weights, b.weights, rtol=1e-3, atol=0)


def test_trainer_block_grad_paper_factors_and_record(tmp_path):
    X, y = blobs()
    model = MotifMLP([16, 12, 12, 4], motif=[2, 4, 1], density=0.5, seed=0, num_threads=1)
    t = Trainer(model, epochs=2, recipe="paper", warmup=1, block_grad="paper", progress=False)
    assert t.weight_grad_factor == [0.5, 0.25, 1.0]
    assert t.config["block_grad"] == "paper"
    t.fit(X, y)
    path = t.save_checkpoint(tmp_path / "ck.npz")
    assert read_metadata(path)["trainer"]["block_grad"] == "paper"
    back = Trainer.from_checkpoint(path, progress=False)
    assert back.block_grad == "paper" and back.weight_grad_factor == [0.5, 0.25, 1.0]
    # the option changes training
    other = MotifMLP([16, 12, 12, 4], motif=[2, 4, 1], density=0.5, seed=0, num_threads=1)
    Trainer(other, epochs=2, recipe="paper", warmup=1, progress=False).fit(X, y)
    assert not same_state(model, other)


def test_block_grad_errors():
    square = MotifMLP([16, 8, 4], motif=2, seed=0)
    with pytest.raises(ValueError, match="block_grad must be one of sum, paper"):
        Trainer(square, block_grad="mean")
    rect = MotifMLP([16, 8, 4], motif=[(2, 1), 1], seed=0)
    with pytest.raises(ValueError, match="layer 0 has 2 x 1 motifs"):
        Trainer(rect, block_grad="paper")
    X, y = blobs(n=8)
    with pytest.raises(ValueError, match="3 entries for 2 layers"):
        square.train_step(X[:, :16], y % 4, weight_grad_factor=[1, 1, 1])
    with pytest.raises(ValueError, match=r"weight_grad_factor\[1\] must be in \(0, inf\)"):
        square.train_step(X[:, :16], y % 4, weight_grad_factor=[1, 0])


# ---- regrowth from N(0, sigma^2) ----------------------------------------------------------------

def _regrown_z(regrow, m, seed=5):
    """The regrown weights of one large SET step, each divided by the sigma the docs state:
    sqrt(2 / fan_in), fan_in = the row's edge fan-in after the step (its blocks x m inputs)."""
    layer = MotifLayer(600 * m, 600 * m, motif=m, density=0.2, seed=seed, num_threads=1)
    old = set(zip(layer.block_rows.tolist(), layer.indices.tolist()))
    layer.prune_regrow(0.8, seed=seed, regrow=regrow)
    rows = layer.block_rows
    new = np.array([p not in old for p in zip(rows.tolist(), layer.indices.tolist())])
    fan_in = np.bincount(rows, minlength=layer.groups[0])[rows] * m
    return layer.weights.astype(np.float64)[new] / np.sqrt(2.0 / fan_in[new])


def _ks_distance_to_standard_normal(z):
    z = np.sort(z)
    n = z.size
    cdf = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in z])
    return max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))


@pytest.mark.parametrize("m", [1, 2])
def test_normal_regrowth_draws_from_the_stated_distribution(m):
    z = _regrown_z("normal", m)
    n = z.size
    assert n > 50_000
    # tolerances from the sample size alone: a false alarm has probability below about 1e-6 each
    assert abs(z.mean()) < 5 / math.sqrt(n)                                # sd of the mean: 1/sqrt(n)
    assert abs(z.var(ddof=1) - 1) < 5 * math.sqrt(2 / (n - 1))             # sd of s^2: sqrt(2/(n-1))
    kurt = float(np.mean((z - z.mean()) ** 4) / z.var() ** 2 - 3)
    assert abs(kurt) < 5 * math.sqrt(24 / n)                               # sd of the excess kurtosis
    # Dvoretzky-Kiefer-Wolfowitz: P(D > eps) <= 2 exp(-2 n eps^2) = 1e-6
    assert _ks_distance_to_standard_normal(z) < math.sqrt(math.log(2 / 1e-6) / (2 * n))


def test_the_distribution_check_rejects_he_uniform():
    """The same checks fail for 'he' (uniform with the same variance: excess kurtosis -1.2), so
    they can tell the two apart; and the variance of 'he' is the one 'normal' is given."""
    z = _regrown_z("he", 1)
    n = z.size
    assert abs(z.var(ddof=1) - 1) < 5 * math.sqrt(0.8 / (n - 1))           # uniform: var(s^2) = 0.8/n
    kurt = float(np.mean((z - z.mean()) ** 4) / z.var() ** 2 - 3)
    assert abs(kurt + 1.2) < 0.1
    assert _ks_distance_to_standard_normal(z) > math.sqrt(math.log(2 / 1e-6) / (2 * n))


def test_normal_regrowth_is_seeded_and_thread_independent():
    def run(threads, seed):
        X, y = blobs()
        model = MotifMLP([16, 40, 40, 4], motif=2, density=0.3, seed=0, num_threads=threads)
        model.evolve(0.5, seed=seed, regrow="normal")
        return model
    a, b, c = run(1, 7), run(2, 7), run(1, 8)
    assert same_state(a, b) and not same_state(a, c)


# ---- the epoch-counted learning-rate schedule ---------------------------------------------------

def test_cosine_epoch_values():
    E, W, base, spe = 30, 5, 0.01, 7
    s = lr_schedule("cosine-epoch", base, E, spe, warmup=W)
    for e in range(1, E + 1):
        lrs = s.lr_for_epoch(e)
        assert np.all(lrs == lrs[0])                                       # one value per epoch
        want = base * e / W if e <= W else base * 0.5 * (1 + math.cos(math.pi * (e - 1 - W) / (E - W)))
        assert lrs[0] == pytest.approx(want, rel=1e-12)
    assert s.lr_at(1) == base / 5 and s.lr_at(6) == base
    # a fraction of the run: floor(0.1 * 30) = 3 warmup epochs
    f = lr_schedule("cosine-epoch", base, E, spe, warmup=0.1)
    assert [f.lr_at(e) for e in (1, 2, 3, 4)] == pytest.approx([base / 3, 2 * base / 3, base, base])
    # it is "cosine" with one step per epoch
    one = lr_schedule("cosine", base, E, 1, warmup=W)
    assert [one.lr_at(e) for e in range(1, E + 1)] == [s.lr_at(e, 3) for e in range(1, E + 1)]


def test_trainer_runs_the_epoch_schedule():
    X, y = blobs()
    model = MotifMLP([16, 12, 4], density=0.5, seed=0, num_threads=1)
    t = Trainer(model, epochs=4, recipe="paper", lr_schedule="cosine-epoch", warmup=2, progress=False)
    t.fit(X, y)
    h = t.history
    # E = 4, W = 2: epochs 1-2 warm up, then t = 2, 3 give cos(0) and cos(pi / 2)
    assert h["lr_start"] == h["lr_end"] == pytest.approx([0.005, 0.01, 0.01, 0.005], abs=1e-12)
    assert t.config["lr_schedule"] == "cosine-epoch"


# ---- output motif and bias (network options of runs) ---------------------------------------------

def test_network_motif():
    rc = RunConfig(dataset="digits", hidden=(8, 8), motif=2, output_motif="divisible")
    assert rc.network_motif(10) == [2, 2, 2]
    assert rc.network_motif(5) == 2                     # 2 does not divide 5: output m = 1
    assert rc.replace(motif=1).network_motif(10) == 1
    with pytest.raises(ValueError, match="applies to one motif size"):
        rc.replace(motif=[2, 2, 1]).network_motif(10)
    with pytest.raises(ValueError, match="output_motif must be one of one, divisible"):
        rc.replace(output_motif="shared").network_motif(10)


TINY = ["--hidden", "16", "16", "--epochs", "3", "--threads", "1", "--no-progress", "--recipe", "paper",
        "--warmup", "1", "--evolution", "set-epoch", "--lr", "0.01"]


def _train(tmp_path, name, *flags):
    out = tmp_path / name
    assert main(["train", "--dataset", "digits", "--motif", "2", "--out", str(out), *TINY, *flags]) == 0
    rows = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    return out, json.loads((out / "config.json").read_text()), rows


def _no_times(rows):
    return [{k: v for k, v in r.items() if not k.endswith("_time")} for r in rows]


def test_cli_records_every_option_and_resumes(tmp_path):
    out, cfg, rows = _train(tmp_path, "on", "--output-motif", "divisible", "--bias", "motif", "--block-grad", "paper",
                            "--regrow", "normal", "--lr-schedule", "cosine-epoch")
    assert cfg["run"]["output_motif"] == "divisible" and cfg["run"]["bias"] == "motif"
    assert cfg["run"]["block_grad"] == "paper"
    assert cfg["model"]["motif"] == [[2, 2]] * 3 and cfg["model"]["bias"] == "motif"
    t = cfg["trainer"]
    assert (t["block_grad"], t["regrow"], t["lr_schedule"]) == ("paper", "normal", "cosine-epoch")
    meta = read_metadata(out / "checkpoint.npz")
    assert meta["extra"]["run"]["output_motif"] == "divisible" and meta["extra"]["run"]["bias"] == "motif"
    assert meta["trainer"]["block_grad"] == "paper"
    assert [r["lr_start"] == r["lr_end"] for r in rows] == [True] * 3
    assert all(r["pruned"] is not None for r in rows[1:])                 # regrowth (normal) ran
    back = Trainer.from_checkpoint(out / "checkpoint.npz", progress=False)
    assert (back.block_grad, back.regrow, back.lr_schedule) == ("paper", "normal", "cosine-epoch")
    assert back.model.config["bias"] == "motif" and back.model.layers[-1].motif == (2, 2)


def test_cli_defaults_are_bit_identical_to_explicit_off(tmp_path):
    _, cfg_a, a = _train(tmp_path, "implicit")
    _, cfg_b, b = _train(tmp_path, "explicit", "--output-motif", "one", "--bias", "neuron", "--block-grad", "sum",
                         "--regrow", "he", "--lr-schedule", "cosine")
    assert _no_times(a) == _no_times(b)
    assert cfg_a["model"] == cfg_b["model"] and cfg_a["model"]["motif"] == [[2, 2], [2, 2], [1, 1]]
    from motifcore import load_model
    assert same_state(load_model(tmp_path / "implicit" / "checkpoint.npz"),
                      load_model(tmp_path / "explicit" / "checkpoint.npz"))


def test_cli_output_motif_needs_one_size(tmp_path, capsys):
    rc = main(["train", "--dataset", "digits", "--motif", "2,2,1", "--output-motif", "divisible",
               "--out", str(tmp_path / "x"), *TINY])
    assert rc == 2
    assert "--output-motif: 'divisible' applies to one --motif size" in capsys.readouterr().err


# ---- scripts/paper_ablation.py --------------------------------------------------------------------

def _script():
    spec = importlib.util.spec_from_file_location("paper_ablation", REPO / "scripts" / "paper_ablation.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["paper_ablation"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_ablation_plan_skips_no_ops():
    s = _script()
    args = argparse.Namespace(variants=list(s.VARIANTS), motifs=[1, 2, 4], seeds=[0], classes=10)
    got = {(v, m) for v, m, _ in s.plan(args)}
    assert ("block-grad", 1) not in got and ("motif-bias", 1) not in got
    assert ("shared-output", 2) in got and ("shared-output", 1) not in got and ("shared-output", 4) not in got
    assert {("all", 1), ("all", 2), ("all", 4), ("normal-regrow", 1), ("epoch-lr", 1)} <= got
    assert ("all-but-output", 2) in got and ("all-but-output", 1) not in got and ("all-but-output", 4) not in got
    assert len(got) == 3 + 2 + 1 + 2 + 3 + 3 + 3 + 1
    assert s.VARIANTS["all-but-output"][0] == ["--block-grad", "paper", "--bias", "motif", "--regrow", "normal",
                                               "--lr-schedule", "cosine-epoch"]
    assert s.VARIANTS["all"][0] == ["--block-grad", "paper", "--output-motif", "divisible", "--bias", "motif",
                                    "--regrow", "normal", "--lr-schedule", "cosine-epoch"]


def test_ablation_table_from_records(tmp_path):
    s = _script()

    def record(variant, m, seed, acc):
        d = tmp_path / variant / f"m{m}" / f"seed{seed}"
        d.mkdir(parents=True)
        (d / "summary.json").write_text(json.dumps({"final_accuracy": acc, "sizes": [784, 64, 10], "n_train": 100}))
        (d / "config.json").write_text(json.dumps({"run": {"dataset": "fashion-mnist", "epochs": 2,
                                                           "density": 0.1}}))
    for seed, (a1, a2) in enumerate([(0.80, 0.78), (0.82, 0.74)]):
        record("base", 1, seed, a1)
        record("base", 2, seed, a2)
        record("block-grad", 2, seed, a2 - 0.1)
        record("all", 1, seed, a1 - 0.02)
    text = s.table(tmp_path, [1, 2], ["base", "block-grad", "shared-output", "all-but-output"])
    lines = text.splitlines()
    base = next(x for x in lines if x.startswith("| base |"))
    assert "81.00 ± 1.41 (2)" in base and "76.00 ± 2.83 (2)" in base and base.endswith("| +5.00 |")
    bg = next(x for x in lines if x.startswith("| block-grad |"))
    assert "= base (no-op)" in bg and "66.00 ± 2.83 (2)" in bg and bg.endswith("| +15.00 |")
    so = next(x for x in lines if x.startswith("| shared-output |"))
    assert [c.strip() for c in so.split("|")[3:-1]] == ["= base (no-op)", "-", "-"]     # m = 2 not run yet
    ab = next(x for x in lines if x.startswith("| all-but-output |"))
    assert [c.strip() for c in ab.split("|")[3:-1]] == ["= all (same run)", "-", "-"]
    assert "| paper, Table 4 (300 epochs) |" in text and "+2.80" in text
    assert "fashion-mnist, 784-64-10, density 0.1, 2 epochs, 100 training samples" in text
