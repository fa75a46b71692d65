"""Motif-size curriculum: the regrouping of a layer into coarser motifs against a NumPy reference
(weights as the block mean of the effective matrix, optimizer state, per-motif bias, block budget),
thread-count independence, the schedule's checks, and a Trainer run that switches motifs and
resumes bit for bit across a switch (docs/curriculum.md)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from motifcore import MotifMLP, Trainer, _core, load_model
from motifcore.cli import main
from motifcore.train.callbacks import Checkpoint, RestoreBest
from motifcore.train.checkpoint import read_metadata
from motifcore.train.curriculum import check_motif_schedule, parse_motif_schedule

TIMING = ("train_time", "eval_time", "evolution_time", "switch_time")
SIZES = [30, 38, 26, 5]     # widths not divisible by 4: residual motifs on both sides


def blobs(n=400, d=30, k=5, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(k, d))
    y = rng.integers(0, k, size=n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y.astype(np.int64)


def trained(motif=1, bias="neuron", optimizer="sgd", density=0.3, sizes=SIZES, seed=1):
    """A model with non-zero momentum (and Adam moments with optimizer='adam')."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        m = MotifMLP(sizes, motif=motif, density=density, bias=bias, seed=seed, num_threads=1)
    X, y = blobs(d=sizes[0], k=sizes[-1])
    m.train_epoch(X, y, batch_size=64, lr=0.01, optimizer=optimizer, seed=0)
    return m


def ceil_div(a, b):
    return -(-a // b)


def reference(layer, state, i, k_out, k_in, budget):
    """The regrouped arrays of layer i computed from its effective dense matrix (NumPy, float64)."""
    m_out, m_in = layer.motif
    n_out, n_in = layer.n_out, layer.n_in
    M_out, M_in = m_out * k_out, m_in * k_in
    H_out, H_in = ceil_div(n_out, M_out), ceil_div(n_in, M_in)
    W = layer.to_dense().astype(np.float64)
    # K': the mean of W over each new block (the least-squares projection onto block-constant W)
    K = np.array([[W[R * M_out:(R + 1) * M_out, C * M_in:(C + 1) * M_in].mean() for C in range(H_in)]
                  for R in range(H_out)])
    rows = np.repeat(np.arange(layer.groups[0]), np.diff(state[f"layer{i}.indptr"]))
    R, C = rows // k_out, state[f"layer{i}.indices"] // k_in
    active = np.zeros((H_out, H_in), bool)
    active[R, C] = True
    V = np.zeros((H_out, H_in))
    np.add.at(V, (R, C), state[f"layer{i}.weight_velocity"].astype(np.float64))
    adam = f"layer{i}.weight_sq" in state
    S = np.zeros((H_out, H_in))
    if adam:
        np.add.at(S, (R, C), np.sqrt(state[f"layer{i}.weight_sq"].astype(np.float64)))
    S = S ** 2
    pos = np.flatnonzero(active.ravel())
    if 0 <= budget < pos.size:
        mag = np.abs(K.ravel()[pos].astype(np.float32))
        pos = np.sort(pos[np.lexsort((pos, -mag))[:budget]])
    r, c = pos // H_in, pos % H_in
    out = {"indptr": np.concatenate([[0], np.cumsum(np.bincount(r, minlength=H_out))]), "indices": c,
           "weights": K.ravel()[pos], "weight_velocity": V.ravel()[pos]}
    if adam:
        out["weight_sq"] = S.ravel()[pos]
    b, vb = state[f"layer{i}.bias"].astype(np.float64), state[f"layer{i}.bias_velocity"].astype(np.float64)
    sb = state[f"layer{i}.bias_sq"].astype(np.float64) if adam else None
    if layer.bias_mode == "neuron":
        out.update(bias=b, bias_velocity=vb)
        if adam:
            out["bias_sq"] = sb
    else:
        per_neuron = np.repeat(b, m_out)[:n_out]
        out["bias"] = np.array([per_neuron[R * M_out:(R + 1) * M_out].mean() for R in range(H_out)])
        group = np.arange(layer.groups[0]) // k_out
        out["bias_velocity"] = np.bincount(group, vb, minlength=H_out)
        if adam:
            out["bias_sq"] = np.bincount(group, np.sqrt(sb), minlength=H_out) ** 2
    return out


def check_against_reference(model, target, budget, keep_norm=False):
    layers, state = model.layers, model.get_state()
    n = len(layers)
    targets = [(t, t) for t in [target] * (n - 1)] + [(1, 1)]
    quotas = []
    for layer, (t_out, t_in), i in zip(layers, targets, range(n)):
        quotas.append(_core.target_blocks(layer.n_in, layer.n_out, t_in, t_out, model.config["density"][i])
                      if budget == "density" else -1)
    refs = [reference(layer, state, i, t_out // layer.motif[0], t_in // layer.motif[1], q)
            if (t_out, t_in) != layer.motif else None
            for i, (layer, (t_out, t_in), q) in enumerate(zip(layers, targets, quotas))]
    dense_before = [layer.to_dense().astype(np.float64) for layer in layers]
    report = model.regroup(target, budget=budget, keep_norm=keep_norm)
    after = model.get_state()
    for i, ref in enumerate(refs):
        if ref is None:     # the output layer keeps its motif and every array
            assert report[i]["from"] == report[i]["to"] == [1, 1]
            for k in state:
                if k.startswith(f"layer{i}."):
                    assert np.array_equal(after[k], state[k]), k
            continue
        assert model.layers[i].motif == targets[i]
        if keep_norm:    # one factor per layer: the regrouped layer has the Frobenius norm it had
            kept = ref["weights"]
            r_new = np.repeat(np.arange(ceil_div(layers[i].n_out, targets[i][0])), np.diff(ref["indptr"]))
            sizes_out = np.minimum(targets[i][0], layers[i].n_out - r_new * targets[i][0])
            sizes_in = np.minimum(targets[i][1], layers[i].n_in - ref["indices"] * targets[i][1])
            scale = np.linalg.norm(dense_before[i]) / np.sqrt((kept ** 2 * sizes_out * sizes_in).sum())
            ref["weights"] = kept * scale
            assert report[i]["scale"] == pytest.approx(scale, rel=1e-6) and report[i]["scale"] > 1
            np.testing.assert_allclose(np.linalg.norm(model.layers[i].to_dense()), np.linalg.norm(dense_before[i]),
                                       rtol=1e-5)
        else:
            assert report[i]["scale"] == 1.0
        assert np.array_equal(after[f"layer{i}.indptr"], ref["indptr"])
        assert np.array_equal(after[f"layer{i}.indices"], ref["indices"])
        for k in ("weights", "weight_velocity", "weight_sq", "bias", "bias_velocity", "bias_sq"):
            if k not in ref:
                assert f"layer{i}.{k}" not in after, k
                continue
            assert after[f"layer{i}.{k}"].dtype == np.float32
            np.testing.assert_allclose(after[f"layer{i}.{k}"], ref[k], rtol=2e-6, atol=1e-7, err_msg=f"layer{i}.{k}")
        assert report[i]["blocks"] == after[f"layer{i}.indices"].size
        assert report[i]["covered"] >= report[i]["blocks"]
        if budget == "density":
            assert report[i]["blocks"] == min(report[i]["covered"], quotas[i])
            assert report[i]["covered"] > quotas[i]      # the budget really dropped blocks
        else:
            assert report[i]["blocks"] == report[i]["covered"]
    assert int(after["step"]) == int(state["step"]) and int(after["dropout_seed"]) == int(state["dropout_seed"])
    return report


@pytest.mark.parametrize("start, target", [(1, 2), (2, 4), (1, 4)])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("budget", ["covered", "density"])
def test_regroup_matches_numpy_reference(start, target, optimizer, budget):
    model = trained(motif=start, optimizer=optimizer)
    check_against_reference(model, target, budget)


@pytest.mark.parametrize("start, target, budget", [(1, 2, "density"), (2, 4, "covered"), (1, 4, "density")])
def test_regroup_keep_norm_matches_numpy_reference(start, target, budget):
    model = trained(motif=start, optimizer="adam")
    check_against_reference(model, target, budget, keep_norm=True)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_regroup_per_motif_bias(optimizer):
    model = trained(motif=1, bias="motif", optimizer=optimizer)
    check_against_reference(model, 2, "covered")
    # per-motif biases of a motif layer regroup again (sizes-weighted mean over residual motifs)
    check_against_reference(model, 4, "density")
    assert model.layers[0].bias.size == ceil_div(SIZES[1], 4)


def test_regroup_preserves_motif_mean_output_for_motif_constant_inputs():
    """With every covered block kept, the layer's pre-activation averaged over each new output
    motif is unchanged for inputs constant over each new input motif."""
    model = trained(motif=1, optimizer="adam")
    layer = model.layers[0]
    W, b = layer.to_dense().astype(np.float64), layer.bias.astype(np.float64)
    model.regroup(4, budget="covered")
    W2, b2 = model.layers[0].to_dense().astype(np.float64), model.layers[0].bias.astype(np.float64)
    rng = np.random.default_rng(0)
    x = np.repeat(rng.normal(size=ceil_div(SIZES[0], 4)), 4)[:SIZES[0]]
    z, z2 = W @ x + b, W2 @ x + b2
    means = [z[r:r + 4].mean() for r in range(0, SIZES[1], 4)]
    means2 = [z2[r:r + 4].mean() for r in range(0, SIZES[1], 4)]
    np.testing.assert_allclose(means2, means, rtol=1e-5, atol=1e-6)
    assert not np.allclose(z2, z)   # the neurons of a motif now agree: the output itself changes


def test_regroup_does_not_depend_on_the_thread_count():
    # > 65536 blocks, so the engine really splits the rows over threads
    def build(threads):
        m = MotifMLP([600, 600, 10], motif=1, density=0.25, seed=4, num_threads=threads)
        X = np.random.default_rng(0).normal(size=(256, 600)).astype(np.float32)
        y = np.arange(256) % 10
        m.train_epoch(X, y, batch_size=128, lr=0.01, optimizer="adam", seed=0)
        m.regroup(4)
        return m.get_state()
    a, b = build(1), build(3)
    assert a["layer0.indices"].size > 0
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_regroup_engine_call_thread_independent_and_checked():
    rng = np.random.default_rng(1)
    G_out, G_in, nnz = 400, 400, 70_000
    pos = np.sort(rng.choice(G_out * G_in, nnz, replace=False))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(pos // G_in, minlength=G_out))]).astype(np.int64)
    indices = (pos % G_in).astype(np.int32)
    f = [rng.normal(size=nnz).astype(np.float32) for _ in range(2)]
    s = rng.random(nnz).astype(np.float32)
    b = [rng.normal(size=G_out).astype(np.float32) for _ in range(2)]
    sb = rng.random(G_out).astype(np.float32)
    args = (G_out, G_in, 1, 1, "neuron", 3, 2, indptr, indices, f[0], b[0], f[1], b[1], s, sb)
    one, many = _core.regroup_blocks(*args, 5000, False, 1), _core.regroup_blocks(*args, 5000, False, 4)
    normed = [_core.regroup_blocks(*args, 5000, True, nt) for nt in (1, 4)]
    for k in one:
        assert np.array_equal(np.asarray(normed[0][k]), np.asarray(normed[1][k])), k
    assert normed[0]["scale"] > 1 and np.allclose(normed[0]["weights"], one["weights"] * normed[0]["scale"])
    for k in one:
        assert np.array_equal(np.asarray(one[k]), np.asarray(many[k])), k
    assert one["kept"] == 5000 and one["covered"] > 5000
    with pytest.raises(ValueError, match="regroup factors"):
        _core.regroup_blocks(*args[:5], 0, 1, *args[7:])
    with pytest.raises(ValueError, match="wider than"):
        _core.regroup_blocks(*args[:5], 401, 1, *args[7:])
    bad = f[0].copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _core.regroup_blocks(*args[:9], bad, *args[10:])
    with pytest.raises(ValueError, match="second moments"):
        _core.regroup_blocks(*args[:13], -s, sb)
    with pytest.raises(ValueError, match="both weights and biases"):
        _core.regroup_blocks(*args[:14], np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="indptr"):
        _core.regroup_blocks(*args[:7], indptr[:-1], *args[8:])


def test_regroup_rejects_what_it_cannot_do():
    model = trained(motif=2)
    with pytest.raises(ValueError, match="whole multiple"):
        model.regroup(3)
    with pytest.raises(ValueError, match="budget"):
        model.regroup(4, budget="all")
    with pytest.raises(ValueError, match="wider than"):
        model.regroup(32)
    model.layers[0].set_codebook(np.zeros(model.layers[0].n_blocks, np.int32), np.zeros(1, np.float32))
    before = model.get_state()
    with pytest.raises(ValueError, match="codebook"):
        model.regroup(4)
    after = model.get_state()     # all or nothing
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_regrouped_model_trains_and_checkpoints(tmp_path):
    model = trained(motif=1, optimizer="adam")
    model.regroup(2)
    X, y = blobs()
    model.train_epoch(X, y, batch_size=64, lr=0.01, optimizer="adam", seed=1)
    path = tmp_path / "m.npz"
    from motifcore.train.checkpoint import save_checkpoint
    save_checkpoint(path, model)
    back = load_model(path)
    assert back.config["motif"] == [[2, 2], [2, 2], [1, 1]] == model.config["motif"]
    assert np.array_equal(back.decision_function(X), model.decision_function(X))


# ---- the schedule --------------------------------------------------------------------------------

def test_schedule_parsing_and_epochs():
    s = parse_motif_schedule("0:1, 0.5:2,0.8:4")
    assert s.stages == ((0.0, 1), (0.5, 2), (0.8, 4)) and str(s) == "0:1,0.5:2,0.8:4"
    assert s.start_after(50) == [0, 25, 40]
    assert [s.motif_for_epoch(e, 50) for e in (1, 25, 26, 40, 41, 50)] == [1, 1, 2, 2, 4, 4]
    assert s.motif_after(0, 50) == 1 and s.motif_after(25, 50) == 1 and s.motif_after(26, 50) == 2
    assert check_motif_schedule([(0, 1), (0.29, 2)]).start_after(100) == [0, 29]
    assert check_motif_schedule(s.to_config()) == s


@pytest.mark.parametrize("value, match", [
    ([], "non-empty"),
    ([(0.1, 1), (0.5, 2)], "start at fraction 0"),
    ([(0, 1), (0.5, 3), (0.4, 6)], "increase"),
    ([(0, 2), (0.5, 3)], "multiple"),
    ([(0, 2), (0.5, 2)], "multiple"),
    ([(0, 1), (1.0, 2)], r"\[0, 1\)"),
    ([(0, 0)], ">= 1"),
    ([(0, 1.5)], "integer"),
    ([(0, 1, 2)], "pair"),
    ("0:1,0.5", "FRACTION:MOTIF"),
    ("0:1,half:2", "FRACTION:MOTIF"),
])
def test_schedule_errors(value, match):
    with pytest.raises((ValueError, TypeError), match=match):
        check_motif_schedule(value)


def test_trainer_checks_the_schedule_against_the_model():
    m = trained(motif=1)
    with pytest.raises(ValueError, match="no stage"):
        Trainer(m, epochs=4, motif_schedule=[(0, 2), (0.5, 4)], progress=False)
    with pytest.raises(ValueError, match="does not fit"):
        Trainer(m, epochs=4, motif_schedule=[(0, 1), (0.5, 32)], progress=False)
    with pytest.raises(ValueError, match="dsr"):
        Trainer(m, epochs=4, motif_schedule="0:1,0.5:2", evolution="dsr", progress=False)
    t = Trainer(m, epochs=4, motif_schedule="0:1,0.5:2", progress=False)
    m.regroup(2)     # the model no longer has the motif the run starts with
    X, y = blobs()
    with pytest.raises(ValueError, match="has m = 1 after epoch 0"):
        t.fit(X, y)


def strip_timing(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def assert_same_state(a, b):
    sa, sb = a.get_state(), b.get_state()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert np.array_equal(sa[k], sb[k]), k


@pytest.mark.parametrize("recipe, evolution, stop_at, keep_norm", [
    ("motifcore", "input-cosine", 2, False),   # Adam; cut right before the first switch
    ("motifcore", "set-epoch", 3, True),             # Adam; cut between the switches
    ("paper", "set-epoch", 4, False),                # SGD momentum; cut right before the second switch
])
def test_switching_run_resumes_bit_exact(tmp_path, recipe, evolution, stop_at, keep_norm):
    X, y = blobs()
    Xv, yv = blobs(150, seed=1)
    kw = {"epochs": 6, "recipe": recipe, "batch_size": 64, "evolution": evolution, "seed": 5, "progress": False,
          "motif_schedule": [(0, 1), (0.4, 2), (0.7, 4)], "motif_keep_norm": keep_norm}

    def model():
        return MotifMLP(SIZES, motif=1, density=0.3, seed=2, num_threads=1)
    full = Trainer(model(), **kw)
    full.fit(X, y, Xv, yv)
    h = full.history
    assert h["motif"] == [1, 1, 2, 2, 4, 4]
    switches = [s for s in h["motif_switch"] if s is not None]
    assert [(s["from"], s["to"]) for s in switches] == [(1, 2), (2, 4)]
    assert h["motif_switch"][2]["from"] == 1 and h["switch_time"][2] > 0 and h["switch_time"][1] == 0.0
    assert full.model.config["motif"] == [[4, 4], [4, 4], [1, 1]]
    assert full.config["motif_schedule"] == [[0.0, 1], [0.4, 2], [0.7, 4]]
    assert full.config["motif_keep_norm"] is keep_norm
    assert (switches[0]["scale"][0] > 1) is keep_norm and switches[0]["scale"][-1] == 1.0

    path = tmp_path / "ck.npz"
    part = Trainer(model(), callbacks=[Checkpoint(path), lambda t, e, logs: e == stop_at], **kw)
    part.fit(X, y, Xv, yv)
    meta = read_metadata(path)
    assert meta["epoch"] == stop_at and meta["trainer"]["motif_schedule"] == [[0.0, 1], [0.4, 2], [0.7, 4]]
    have = {2: 1, 3: 2, 4: 2}[stop_at]
    assert meta["model_config"]["motif"][0] == [have, have]

    resumed = Trainer.resume(path, X, y, Xv, yv, progress=False, num_threads=2)
    assert resumed.epoch == 6
    assert_same_state(full.model, resumed.model)
    assert strip_timing(resumed.history.rows) == strip_timing(full.history.rows)


def test_restore_best_restores_across_a_switch():
    X, y = blobs()
    Xv, yv = blobs(150, seed=1)
    best = {}

    def snap(t, e, logs):
        best[e] = (t.model.get_state(), [list(m) for m in t.model.config["motif"]])
    rb = RestoreBest()
    t = Trainer(MotifMLP(SIZES, motif=1, density=0.3, seed=2, num_threads=1), epochs=4, batch_size=64,
                motif_schedule="0:1,0.5:2", callbacks=[rb, snap], progress=False, seed=1)
    t.fit(X, y, Xv, yv)
    state, motif = best[rb.best_epoch]
    assert t.model.config["motif"] == motif
    after = t.model.get_state()
    assert all(np.array_equal(after[k], state[k]) for k in state)


def test_cli_motif_schedule(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--dataset", "digits", "--hidden", "32", "32", "--epochs", "2", "--threads", "1",
               "--no-progress", "--motif-schedule", "0:1,0.5:2", "--out", str(out)])
    assert rc == 0
    assert "motif 1 -> 2" in capsys.readouterr().out
    rows = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["motif"] for r in rows] == [1, 2]
    assert rows[0]["motif_switch"] is None and rows[1]["motif_switch"]["to"] == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["motif_schedule"] == [[0.0, 1], [0.5, 2]] and summary["motif"][0] == [2, 2]
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["motif_schedule"] == [[0.0, 1], [0.5, 2]]
    assert read_metadata(out / "checkpoint.npz")["model_config"]["motif"][0] == [2, 2]


@pytest.mark.parametrize("flags, match", [
    (["--motif-schedule", "0:1,0.5"], "FRACTION:MOTIF"),
    (["--motif-schedule", "0:2,0.5:3"], "multiple"),
    (["--motif-schedule", "0:1,0.5:2", "--motif", "2"], "starts at m = 1"),
    (["--motif-schedule", "0:1,0.5:2", "--evolution", "dsr"], "dsr"),
    (["--motif-keep-norm"], "only with --motif-schedule"),
])
def test_cli_motif_schedule_errors(tmp_path, capsys, flags, match):
    rc = main(["train", "--dataset", "digits", "--hidden", "32", "--epochs", "2", "--no-progress", *flags,
               "--out", str(tmp_path / "run")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--motif-" in err and match in err


def test_paper_block_grad_follows_the_motif_switch():
    """With ``block_grad="paper"`` the 1/m factor of every layer is the one of its motif after a
    switch (1/2 for the regrouped hidden layers, 1 for the m = 1 output layer)."""
    X, y = blobs()
    seen = {}

    def record(t, e, logs):
        seen[e] = list(t.weight_grad_factor)
    t = Trainer(MotifMLP([32, 32, 32, 5], motif=1, density=0.3, seed=2, num_threads=1), epochs=4,
                batch_size=64, motif_schedule="0:1,0.5:2", block_grad="paper", callbacks=[record],
                progress=False, seed=1)
    t.fit(X[:, :32] if X.shape[1] >= 32 else np.pad(X, ((0, 0), (0, 32 - X.shape[1]))), y)
    assert seen[1] == [1.0, 1.0, 1.0]
    assert seen[4] == [0.5, 0.5, 1.0]
