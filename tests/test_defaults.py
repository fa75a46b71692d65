"""motifcore.defaults as the one owner of defaults and registries; SET is SET; the default network
gives every hidden neuron a path to the loss, and the per-layer neuron metrics are right."""

from __future__ import annotations

import argparse
import inspect
import json

import numpy as np
import pytest
from motifcore import MotifMLP, Trainer, defaults
from motifcore.cli import build_parser, main
from motifcore.defaults import DISTRIBUTIONS, EPOCHS, EVOLUTIONS, LR_SCHEDULES, RECIPES, REGROW_MODES
from motifcore.experiments import baselines, run, sweep
from motifcore.experiments.config import RunConfig
from motifcore.sklearn import MotifSETClassifier
from motifcore.train.callbacks import JSONLLogger

TINY = ["--hidden", "32,32", "--epochs", "2", "--lr", "0.003", "--warmup", "1", "--threads", "1", "--no-progress"]


def blobs(n: int = 300, d: int = 20, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    X = (rng.normal(size=(n, d)) + 2.0 * np.eye(k, d)[y]).astype(np.float32)
    return X, y


def _choices(sub: str, flag: str) -> tuple[str, ...]:
    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    action = next(a for a in subs.choices[sub]._actions if flag in a.option_strings)
    return tuple(action.choices)


# ---- one owner ----------------------------------------------------------------------------------

def test_cli_choices_come_from_the_registries():
    for sub in ("train", "sweep"):
        assert _choices(sub, "--evolution") == tuple(EVOLUTIONS)
        assert _choices(sub, "--lr-schedule") == LR_SCHEDULES
        assert _choices(sub, "--recipe") == tuple(RECIPES)
    assert _choices("train", "--distribution") == DISTRIBUTIONS
    assert _choices("train", "--regrow") == REGROW_MODES
    assert _choices("train", "--optimizer") == defaults.OPTIMIZERS
    assert _choices("train", "--evolve-layers") == defaults.EVOLVE_LAYER_SETS


def test_epochs_have_one_owner():
    assert inspect.signature(Trainer).parameters["epochs"].default == EPOCHS
    assert run.DEFAULT_EPOCHS == EPOCHS and sweep.DEFAULTS["epochs"] == EPOCHS
    # the estimator's own value is defined (and explained) in sklearn.py
    from motifcore import sklearn as est

    assert inspect.signature(MotifSETClassifier).parameters["epochs"].default == est.ESTIMATOR_EPOCHS
    # min_steps=None resolves to the package's MIN_STEPS (or the small-data budget's, sklearn.py)
    assert inspect.signature(MotifSETClassifier).parameters["min_steps"].default is None
    assert MotifSETClassifier()._budget(10_000)[2] == defaults.MIN_STEPS


@pytest.mark.parametrize("name", list(EVOLUTIONS))
def test_sweeps_accept_every_evolution_of_the_trainer(name):
    norm = sweep.normalize_spec({"datasets": ["digits"], "evolution": name})
    assert norm["datasets"][0]["evolution"] == name
    Trainer(MotifMLP([8, 6, 3], num_threads=1), epochs=3, evolution=name, progress=False)


def test_sweep_defaults_read_the_recipe():
    d = sweep.normalize_spec({"datasets": ["digits"]})["datasets"][0]
    paper = RECIPES["paper"]
    assert d["recipe"] == "paper" and d["lrs"] == [paper["lr"]] and d["evolution"] == paper["evolution"]
    for key in ("batch_size", "lr_schedule", "warmup", "momentum", "weight_decay", "dropout"):
        assert d[key] == paper[key], key
    # the values the spec defaults restated before reading the recipe: run ids of stored paper
    # sweeps depend on them
    assert (d["lrs"], d["batch_size"], d["warmup"], d["momentum"], d["weight_decay"], d["dropout"]) == \
        ([0.01], 128, 5, 0.9, 5e-4, 0.0)
    runs = sweep.expand_runs({"datasets": ["digits"], "epochs": 3})
    assert all("recipe" not in sweep.run_id({k: v for k, v in r.items() if k != "recipe"}) for r in runs)
    assert [sweep.run_id({k: v for k, v in r.items() if k != "recipe"}) for r in runs] == [r["run_id"] for r in runs]
    m = sweep.normalize_spec({"datasets": ["digits"], "recipe": "motifcore"})["datasets"][0]
    mine = RECIPES["motifcore"]
    assert (m["lrs"], m["warmup"], m["dropout"], m["evolution"]) == \
        ([mine["lr"]], mine["warmup"], mine["dropout"], mine["evolution"])
    other = sweep.expand_runs({"datasets": ["digits"], "epochs": 3, "recipe": "motifcore", "lrs": [0.01],
                               "warmup": 5, "dropout": 0.0, "evolution": "paper"})
    assert {r["run_id"] for r in other}.isdisjoint({r["run_id"] for r in runs})   # the recipe is identity
    with pytest.raises(ValueError, match="recipe"):
        sweep.normalize_spec({"datasets": ["digits"], "recipe": "fast"})


# ---- SET is SET ---------------------------------------------------------------------------------

def spied_model(monkeypatch) -> tuple[MotifMLP, list]:
    """A model whose evolve() calls are recorded as (zetas per layer, regrow)."""
    m = MotifMLP([20, 32, 32, 3], density=0.3, distribution="uniform", seed=0, num_threads=1)
    calls: list = []
    evolve = m.evolve

    def spy(zetas, seed=0, regrow=None):
        calls.append((list(zetas), regrow))
        return evolve(zetas, seed=seed, regrow=regrow)

    monkeypatch.setattr(m, "evolve", spy)
    return m, calls


def test_set_prunes_zeta_of_every_layer_after_every_epoch_with_fresh_he_regrowth(monkeypatch):
    X, y = blobs()
    m, calls = spied_model(monkeypatch)
    before = [layer.n_blocks for layer in m.layers]
    tr = Trainer(m, epochs=4, evolution="set-epoch", progress=False)
    h = tr.fit(X, y)
    assert calls == [([0.3, 0.3, 0.3], "he")] * 3           # after epochs 1, 2, 3; every layer
    assert h["pruned"][1:] == [[round(0.3 * b) for b in before]] * 3
    assert [layer.n_blocks for layer in m.layers] == before
    assert (tr.config["regrow"], tr.config["evolve_layers"]) == ("he", "all")
    assert tr.config["evolution"] == {"preset": "set-epoch", "zeta": 0.3}


def test_set_runs_sets_step_with_an_annealed_fraction(monkeypatch):
    # "set": SET's prune and He regrowth in every layer between epochs, zeta annealed as RigL's (the
    # cosine schedule: after the epochs that cross a multiple of `interval` steps, none in the last quarter)
    from motifcore.train.schedules import EvolutionSchedule

    X, y = blobs(400)                                  # batch 16: 25 steps per epoch
    m, calls = spied_model(monkeypatch)
    tr = Trainer(m, epochs=8, batch_size=16, evolution="set", evolution_params={"interval": 50}, progress=False)
    tr.fit(X, y)
    want = EvolutionSchedule.cosine(8, 25, interval=50).zetas()
    assert tr.evolution_schedule.zetas() == want
    z0 = 0.3 * 0.5 * (1 + np.cos(np.pi * 50 / (0.75 * 8 * 25)))    # t = 50 of t_end = 150
    assert want[1] == pytest.approx(z0) and want[0] == 0 and all(z == 0 for z in want[5:])
    assert [c[0] for c in calls] == [[z] * 3 for z in want if z > 0] and len(calls) == 2   # t = 50, 100
    assert {c[1] for c in calls} == {"he"} and calls[0][0][0] > calls[1][0][0] > 0
    assert (tr.config["regrow"], tr.config["evolve_layers"]) == ("he", "all")
    assert tr.config["evolution"] == {"preset": "set", "zeta": 0.3, "interval": 50, "stop": 0.75}


def test_a_run_stored_with_the_old_set_resumes_on_sets_own_schedule(tmp_path):
    # before round five "set" was SET's fixed zeta after every epoch and its checkpoints stored
    # {"preset": "set", "zeta": 0.3}: such a run resumes on that schedule ("set-epoch"), bit for bit
    from motifcore.train.callbacks import as_callback
    from motifcore.train.checkpoint import _META_KEY, read_metadata
    from motifcore.train.schedules import evolution_schedule

    X, y = blobs(400)
    kw = dict(epochs=5, batch_size=32, lr=0.05, evolution="set-epoch", progress=False)
    full = Trainer(MotifMLP([20, 24, 3], density=0.3, seed=0, num_threads=1), **kw)
    full.fit(X, y)
    half = Trainer(MotifMLP([20, 24, 3], density=0.3, seed=0, num_threads=1), **kw)
    half.callbacks.append(as_callback(lambda t, e, logs: e == 2))
    half.fit(X, y)
    half.save_checkpoint(tmp_path / "new.npz")
    with np.load(tmp_path / "new.npz") as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays[_META_KEY]))
    assert meta["trainer"]["evolution"] == {"preset": "set-epoch", "zeta": 0.3}
    meta["trainer"]["evolution"] = {"preset": "set", "zeta": 0.3}           # the old stored form
    arrays[_META_KEY] = np.array(json.dumps(meta))
    np.savez(tmp_path / "old.npz", **arrays)
    assert read_metadata(tmp_path / "old.npz")["trainer"]["evolution"]["preset"] == "set"
    resumed = Trainer.from_checkpoint(tmp_path / "old.npz", progress=False)
    assert resumed.evolution_schedule.name == "set-epoch" and resumed.config["evolution"]["preset"] == "set-epoch"
    resumed.fit(X, y)
    a, b = full.model.get_state(), resumed.model.get_state()
    assert all(np.array_equal(a[k], b[k]) for k in a) and full.history["zeta"] == resumed.history["zeta"]
    # the new "set" stores its interval and stop and is read back as itself
    new = evolution_schedule("set", 5, steps_per_epoch=400)
    assert set(new.to_config()) == {"preset", "zeta", "interval", "stop"}
    assert evolution_schedule(new.to_config(), 5, steps_per_epoch=400).zetas() == new.zetas()
    assert new.zetas()[3:] == [0.0, 0.0] and 0 < new.zetas()[1] < new.zetas()[0] < 0.3


def test_set_regrows_at_random_with_values_of_the_init_distribution():
    layer = MotifMLP([64, 64, 3], density=0.2, distribution="uniform", seed=1, num_threads=1).layers[0]
    layer.weights = np.full(layer.n_blocks, 1e-6, dtype=np.float32)        # far below the He bound
    kept = {(r, c) for r, c in zip(layer.block_rows, layer.indices)}
    n = layer.prune_regrow(0.3, seed=3, regrow="he")
    new = np.array([(r, c) not in kept for r, c in zip(layer.block_rows, layer.indices)])
    assert new.sum() == n == round(0.3 * layer.n_blocks)
    # the He-uniform init's distribution: U(-b, b) with b = sqrt(6 / fan-in) of the block's row
    bound = np.sqrt(6.0 / np.diff(layer.indptr)[layer.block_rows][new])
    w = layer.weights[new]
    assert np.all(np.abs(w) <= bound * (1 + 1e-6)) and np.mean(np.abs(w) / bound) > 0.35
    assert (w > 0).any() and (w < 0).any()


def test_an_explicit_setting_wins_over_the_method_and_is_recorded(tmp_path):
    m = MotifMLP([8, 6, 3], num_threads=1)
    cfg = Trainer(m, evolution="set", regrow="zero", evolve_layers="input", progress=False).config
    assert (cfg["regrow"], cfg["evolve_layers"]) == ("zero", "input")
    for argv, expect in (([], ("he", "all")), (["--regrow", "zero"], ("zero", "all"))):
        out = tmp_path / f"run{len(argv)}"
        assert main(["train", "--dataset", "digits", "--evolution", "set", *argv, "--out", str(out), *TINY]) == 0
        trainer = json.loads((out / "config.json").read_text())["trainer"]
        assert (trainer["regrow"], trainer["evolve_layers"]) == expect
        assert trainer["evolution"]["preset"] == "set"


def test_each_method_brings_its_own_layers_and_regrowth():
    m = MotifMLP([8, 6, 3], num_threads=1)
    got = {name: (Trainer(m, evolution=name, progress=False).config["regrow"],
                  Trainer(m, evolution=name, progress=False).config["evolve_layers"]) for name in EVOLUTIONS}
    assert got["input-cosine"] == ("zero", "input")
    assert got["set"] == got["set-epoch"] == got["paper"] == ("he", "all")
    assert got["cht"] == ("zero", "all")
    assert got["rigl"][1] == got["dsr"][1] == "all"
    assert got["cosine"] == got["none"] == (defaults.FALLBACK_REGROW, defaults.FALLBACK_EVOLVE_LAYERS)
    default = Trainer(m, progress=False).config
    assert default["evolution"]["preset"] == RECIPES[defaults.DEFAULT_RECIPE]["evolution"] == "input-cosine"


def test_the_paper_recipe_keeps_its_settings():
    cfg = Trainer(MotifMLP([8, 6, 3], num_threads=1), epochs=300, recipe="paper", progress=False).config
    assert cfg["evolution"] == {"preset": "paper", "zeta": 0.2, "every": 10, "warmup": 5, "decay_fraction": 1 / 3}
    assert (cfg["optimizer"], cfg["lr"], cfg["momentum"], cfg["weight_decay"], cfg["warmup"], cfg["dropout"],
            cfg["max_grad_norm"], cfg["regrow"], cfg["evolve_layers"], cfg["batch_size"]) == \
        ("sgd", 0.01, 0.9, 5e-4, 5, 0.0, 0.0, "he", "all", 128)
    assert RunConfig("mnist", recipe="paper").network_distribution() == "uniform"


def test_the_default_lr_is_scaled_down_for_wide_hidden_layers_only(tmp_path):
    base, ref = RECIPES["motifcore"]["lr"], defaults.LR_FAN_IN
    narrow = MotifMLP([20, 64, 64, 3], density=0.5, seed=0, num_threads=1)        # hidden fan-in 32
    wide = MotifMLP([20, 400, 400, 3], motif=2, density=0.5, seed=0, num_threads=1)  # hidden fan-in 200
    one = MotifMLP([2000, 400, 3], density=0.5, seed=0, num_threads=1)             # no hidden-to-hidden layer
    fan_in = wide.layers[1].n_edges / wide.layers[1].n_out
    assert fan_in == pytest.approx(200, rel=0.05) and fan_in > ref
    assert Trainer(narrow, progress=False).lr == base
    assert Trainer(one, progress=False).lr == base                 # input width is the data's, not counted
    assert Trainer(wide, progress=False).lr == pytest.approx(base * ref / fan_in)
    assert Trainer(wide, progress=False).config["lr"] == pytest.approx(base * ref / fan_in)   # what is stored
    assert Trainer(wide, lr=base, progress=False).lr == base       # an explicit rate is used as given
    assert Trainer(wide, recipe="paper", progress=False).lr == RECIPES["paper"]["lr"]   # the paper's, unscaled
    assert defaults.recipe_lr(3e-3, 100.0, 300.0) == pytest.approx(1e-3)
    assert defaults.recipe_lr(3e-3, 100.0, 100.0) == defaults.recipe_lr(3e-3, None, 300.0) == 3e-3
    # the CLI records the resolved rate and a resumed run keeps it
    out = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--hidden", "400,400", "--motif", "2", "--density", "0.5",
                 "--epochs", "1", "--threads", "1", "--no-progress", "--out", str(out)]) == 0
    stored = json.loads((out / "config.json").read_text())
    assert stored["run"]["lr"] is None                                  # not given: the recipe's ...
    assert stored["trainer"]["lr"] == pytest.approx(base * ref / fan_in)   # ... for this network
    assert Trainer.from_checkpoint(out / "checkpoint.npz", progress=False).lr == stored["trainer"]["lr"]
    # a checkpoint keeps the rate it ran with: one written at the unscaled rate resumes at it
    t = Trainer(wide, lr=base, epochs=2, progress=False)
    t.save_checkpoint(tmp_path / "old.npz")
    assert Trainer.from_checkpoint(tmp_path / "old.npz", progress=False).lr == base


def test_a_decoupled_decay_not_given_keeps_its_shrink_per_step_when_the_rate_is_scaled(tmp_path):
    base, wd = RECIPES["motifcore"]["lr"], RECIPES["motifcore"]["weight_decay"]
    narrow = MotifMLP([20, 64, 64, 3], density=0.5, seed=0, num_threads=1)        # hidden fan-in 32
    wide = MotifMLP([20, 400, 400, 3], motif=2, density=0.5, seed=0, num_threads=1)  # hidden fan-in ~200
    t = Trainer(wide, progress=False)
    assert t.lr < base
    assert t.config["weight_decay"] == pytest.approx(wd * base / t.lr)      # lr * decay unchanged ...
    assert t.config["lr"] * t.config["weight_decay"] == pytest.approx(base * wd)
    assert Trainer(narrow, progress=False).config["weight_decay"] == wd     # ... and unscaled rates keep 0.1
    assert Trainer(wide, weight_decay=0.05, progress=False).config["weight_decay"] == 0.05   # given: as given
    assert Trainer(wide, lr=1e-3, progress=False).config["weight_decay"] == wd   # a given rate is not scaled
    assert Trainer(wide, optimizer="adam", progress=False).config["weight_decay"] == 5e-4  # L2: not decoupled
    assert Trainer(wide, recipe="paper", progress=False).config["weight_decay"] == 5e-4
    # the paper's network: 1e-3 and 0.3, printed as such
    assert defaults.decoupled_decay(0.1, 3e-3, defaults.recipe_lr(3e-3, 100.0, 300.0)) == 0.3
    out = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--hidden", "400,400", "--motif", "2", "--density", "0.5",
                 "--epochs", "1", "--threads", "1", "--no-progress", "--out", str(out)]) == 0
    stored = json.loads((out / "config.json").read_text())
    assert stored["run"]["weight_decay"] is None
    assert stored["trainer"]["weight_decay"] == pytest.approx(wd * base / stored["trainer"]["lr"])
    assert Trainer.from_checkpoint(out / "checkpoint.npz", progress=False).config["weight_decay"] == \
        stored["trainer"]["weight_decay"]


def test_a_run_stored_with_the_old_cosine_name_resumes_unchanged(tmp_path):
    # what builds before "input-cosine" wrote for the default recipe: the "cosine" preset with
    # explicit regrow/evolve_layers; it must resume bit-exactly and train as input-cosine does
    X, y = blobs()
    kw = {"epochs": 4, "batch_size": 2, "seed": 3, "progress": False}

    def model() -> MotifMLP:
        return MotifMLP([20, 16, 16, 3], density=0.3, distribution="uniform", seed=1, num_threads=1)

    old = Trainer(model(), evolution="cosine", regrow="zero", evolve_layers="input",
                  callbacks=[lambda trainer, epoch, logs: epoch == 2], **kw)     # interrupted after epoch 2
    assert old.config["evolution"]["preset"] == "cosine"
    old.fit(X, y)
    assert old.history["pruned"][1] is not None and old.history["pruned"][1][0] > 0   # evolution ran
    old.save_checkpoint(tmp_path / "ck.npz")
    resumed = Trainer.from_checkpoint(tmp_path / "ck.npz", progress=False)
    assert (resumed.regrow, resumed.evolve_layers) == ("zero", "input")
    resumed.fit(X, y)
    new = Trainer(model(), evolution="input-cosine", **kw)
    new.fit(X, y)
    for a, b in zip(resumed.model.layers, new.model.layers):
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.weights, b.weights)


def test_baseline_rows_named_set_run_set():
    assert baselines._SCRATCH["set1"] == (1, "set-epoch") and baselines._SCRATCH["motif2"] == (2, "set-epoch")


# ---- deprecated names ---------------------------------------------------------------------------

def test_the_old_schedule_flag_is_gone(capsys):
    assert main(["train", "--dataset", "digits", "--schedule", "set"]) == 2
    assert "unrecognized arguments: --schedule" in capsys.readouterr().err


# ---- the default network and the neuron metrics ---------------------------------------------------

@pytest.mark.parametrize("motif", [1, 2])
def test_the_default_network_leaves_no_neuron_without_a_path(motif):
    sizes = [784, 3000, 3000, 3000, 10]
    m = MotifMLP(sizes, motif=motif, num_threads=1)
    assert m.config["density"] == [0.1, 0.1, 0.1, 1.0]
    assert m.disconnected_neurons() == [0, 0, 0]
    paper = MotifMLP(sizes, motif=motif, distribution="uniform", num_threads=1)
    cut = paper.disconnected_neurons()
    assert cut[:2] == [0, 0] and 0.25 * 3000 < cut[2] < 0.45 * 3000     # (1 - 0.1) ** 10 = 35 %
    # the estimator's and the CLI's networks are the default one; the paper recipe's is uniform
    assert RunConfig("mnist").network_distribution() == "output-dense"
    est = MotifSETClassifier(hidden_sizes=(64, 64), epochs=1, min_steps=1).fit(*blobs(64))
    assert est.model_.config["density"][-1] == 1.0 and est.model_.disconnected_neurons() == [0, 0]


def test_disconnected_neurons_by_hand():
    # m = 1: output layer 4 -> 2 keeps only inputs 0 and 1; layer 1 keeps (out 0 <- in 0) and
    # every block into outputs 2 and 3 (which have no path)
    m = MotifMLP([4, 4, 4, 2], density=1.0, num_threads=1)
    out, mid = m.layers[2], m.layers[1]
    out.keep_where(np.isin(out.indices, [0, 1]))
    mid.keep_where(((mid.block_rows == 0) & (mid.indices == 0)) | (mid.block_rows >= 2))
    assert [p.tolist() for p in m.path_to_loss()] == [[True, False, False, False], [True, True, False, False]]
    assert m.disconnected_neurons() == [3, 2]
    # motif 2 in the hidden layers: the output layer keeps only hidden neuron 3; layer 1 (a 2 x 2
    # motif grid) keeps blocks (0, 0) and (1, 1), so output motif 1 (neurons 2, 3) has a path and
    # output motif 0 none: input motif 0 (neurons 0, 1 of the first hidden layer) feeds only it
    m2 = MotifMLP([4, 4, 4, 2], motif=[2, 2, 1], density=1.0, num_threads=1)
    o2, h2 = m2.layers[2], m2.layers[1]
    o2.keep_where(o2.indices == 3)
    h2.keep_where(h2.block_rows == h2.indices)
    assert m2.disconnected_neurons() == [2, 3]
    assert "no path" in m2.summary()


def test_dead_neurons_by_hand():
    m = MotifMLP([2, 3, 2], density=1.0, num_threads=1)
    layer = m.layers[0]
    assert layer.indices.tolist() == [0, 1, 0, 1, 0, 1]
    layer.weights = np.array([1, 1, 1, -1, -1, -1], dtype=np.float32)
    layer.bias = np.array([0, 0, -1], dtype=np.float32)
    X = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    assert m.dead_neurons(X) == [1]                     # neuron 2 is negative on every row
    assert m.dead_neurons(X[1:2]) == [2]                # on row 1 alone neuron 1 is 0 as well
    assert m.dead_neurons(X, batch_size=1) == [1]


def test_evaluations_record_the_neuron_metrics(tmp_path):
    X, y = blobs()
    m = MotifMLP([20, 16, 16, 3], density=0.3, distribution="uniform", seed=0, num_threads=1)
    Trainer(m, epochs=3, eval_every=2, evolution="none", progress=False,
            callbacks=[JSONLLogger(tmp_path / "metrics.jsonl")]).fit(X, y, X[:50], y[:50])
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["disconnected"] is None for r in rows] == [True, False, False]
    assert rows[1]["disconnected"] == m.disconnected_neurons()
    assert rows[2]["dead"] == m.dead_neurons(X[:50]) and len(rows[2]["dead"]) == 2


def test_the_neuron_metrics_do_not_change_training():
    # the evaluation's extra forward pass (dead neurons) leaves the run bit for bit as it was
    X, y = blobs()
    runs = []
    for val in (None, (X[:64], y[:64])):
        m = MotifMLP([20, 16, 16, 3], motif=2, density=0.3, seed=0, num_threads=1)
        Trainer(m, epochs=3, batch_size=16, evolution="set-epoch", progress=False).fit(X, y, *(val or ()))
        runs.append(m.get_state())
    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_each_recipe_builds_its_network(tmp_path):
    # motifcore train: the default recipe's network has a dense output layer, --recipe paper the
    # paper's uniform one; an explicit --distribution wins
    for argv, last in (([], 1.0), (["--recipe", "paper"], 0.3), (["--recipe", "paper", "--distribution",
                                                                   "output-dense"], 1.0)):
        out = tmp_path / f"run{len(argv)}"
        assert main(["train", "--dataset", "digits", "--density", "0.3", *argv, "--out", str(out), *TINY]) == 0
        meta = json.loads((out / "config.json").read_text())
        assert meta["model"]["density"] == [0.3, 0.3, last]
        assert meta["run"]["distribution"] == ("uniform" if last < 1 else "output-dense")
    # a sweep point (recipe "paper" unless the spec names another) and the estimator
    point = sweep.expand_runs({"datasets": ["digits"]})[0]
    assert RunConfig.from_sweep(point).network_distribution() == "uniform"
    mine = sweep.expand_runs({"datasets": ["digits"], "recipe": "motifcore"})[0]
    assert RunConfig.from_sweep(mine).network_distribution() == "output-dense"
    X, y = blobs(64)
    paper = MotifSETClassifier(hidden_sizes=(16,), recipe="paper", epochs=1, min_steps=1).fit(X, y)
    assert paper.model_.config["density"] == [0.1, 0.1]


def test_a_sweep_run_id_names_the_recipe_optimizer(monkeypatch):
    """The optimizer is the recipe's, not a spec key: a motifcore-recipe run of another optimizer
    (the recipe before it changed) has another id; paper-recipe ids do not name it."""
    spec = {"datasets": ["digits"], "epochs": 3, "recipe": "motifcore", "weight_decay": 5e-4}
    ids = [r["run_id"] for r in sweep.expand_runs(spec)]
    paper = [r["run_id"] for r in sweep.expand_runs({"datasets": ["digits"], "epochs": 3})]
    monkeypatch.setitem(RECIPES["motifcore"], "optimizer", "adam")
    monkeypatch.setitem(RECIPES["paper"], "optimizer", "adam")
    assert [r["run_id"] for r in sweep.expand_runs(spec)] != ids
    assert [r["run_id"] for r in sweep.expand_runs({"datasets": ["digits"], "epochs": 3})] == paper


def test_an_optimizer_picked_without_a_decay_gets_its_own_decay():
    m = MotifMLP([8, 6, 3], num_threads=1)
    assert Trainer(m, progress=False).weight_decay == RECIPES["motifcore"]["weight_decay"]
    assert Trainer(m, optimizer="adam", progress=False).weight_decay == defaults.WEIGHT_DECAY_OF["adam"] == 5e-4
    assert Trainer(m, optimizer="sgd", progress=False).weight_decay == 5e-4
    assert Trainer(m, optimizer="adam", weight_decay=0.2, progress=False).weight_decay == 0.2     # given: used
    assert Trainer(m, recipe="paper", optimizer="adamw", progress=False).weight_decay == 0.1
    assert Trainer(m, recipe="paper", optimizer="sgd", progress=False).weight_decay == RECIPES["paper"]["weight_decay"]
