"""Optimizers (SGD, Adam, AdamW), gradient clipping, regrowth modes and the new training options,
each checked against an independent NumPy computation or a hand-derived value."""

from __future__ import annotations

import math

import numpy as np
import pytest
from motifcore import MotifLayer, MotifMLP, Trainer
from motifcore.recipes import RECIPES, recipe
from motifcore.train.callbacks import RestoreBest, as_callback
from motifcore.train.schedules import evolution_schedule, lr_schedule


def blobs(n=600, d=20, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(k, d))
    y = rng.integers(0, k, size=n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y.astype(np.int64)


def with_grads(layer, rng):
    x = rng.normal(size=(16, layer.n_in)).astype(np.float32)
    layer.forward(x)
    layer.backward(rng.normal(size=(16, layer.n_out)).astype(np.float32))
    return layer.grad_weights.astype(np.float64), layer.grad_bias.astype(np.float64)


# ---- one optimizer update against NumPy --------------------------------------------------------

def numpy_adam(w, m, s, g, t, lr, b1, b2, eps, wd, decoupled):
    if decoupled:
        w = w * (1 - lr * wd)
    else:
        g = g + wd * w
    m = b1 * m + (1 - b1) * g
    s = b2 * s + (1 - b2) * g * g
    mhat, shat = m / (1 - b1 ** t), s / (1 - b2 ** t)
    return w - lr * mhat / (np.sqrt(shat) + eps), m, s


@pytest.mark.parametrize("kind", ["adam", "adamw"])
@pytest.mark.parametrize("motif", [1, 2])
def test_adam_steps_match_numpy(kind, motif):
    rng = np.random.default_rng(3)
    layer = MotifLayer(24, 18, motif=motif, density=0.4, seed=1, num_threads=1)
    w = layer.weights.astype(np.float64)
    b = layer.bias.astype(np.float64) + rng.normal(size=layer.bias.shape) * 0.1
    layer.bias = b
    mw = sw = np.zeros_like(w)
    mb = sb = np.zeros_like(b)
    lr, b1, b2, eps, wd = 0.01, 0.8, 0.95, 1e-6, 0.05
    for t in (1, 2, 3, 4):
        gw, gb = with_grads(layer, rng)
        layer.optimizer_step(kind, lr, betas=(b1, b2), eps=eps, weight_decay=wd, t=t)
        w, mw, sw = numpy_adam(w, mw, sw, gw, t, lr, b1, b2, eps, wd, kind == "adamw")
        b, mb, sb = numpy_adam(b, mb, sb, gb, t, lr, b1, b2, eps, wd, kind == "adamw")
        np.testing.assert_allclose(layer.weights, w, rtol=2e-5, atol=1e-7)
        np.testing.assert_allclose(layer.bias, b, rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose(layer._core.weight_sq, sw, rtol=1e-4, atol=1e-10)


def test_sgd_step_and_grad_scale_match_numpy():
    rng = np.random.default_rng(0)
    layer = MotifLayer(30, 20, motif=1, density=0.3, seed=2, num_threads=1)
    w = layer.weights.astype(np.float64)
    v = np.zeros_like(w)
    for _ in range(3):
        gw, _ = with_grads(layer, rng)
        layer.optimizer_step("sgd", 0.1, momentum=0.7, weight_decay=0.01, grad_scale=0.25)
        v = 0.7 * v + (0.25 * gw + 0.01 * w)
        w = w - 0.1 * v
        np.testing.assert_allclose(layer.weights, w, rtol=1e-5, atol=1e-7)


def test_optimizer_arguments_are_validated():
    layer = MotifLayer(8, 8, density=0.5)
    with pytest.raises(ValueError, match="optimizer must be"):
        layer.optimizer_step("rmsprop", 0.1)
    with pytest.raises(ValueError, match="betas"):
        layer.optimizer_step("adam", 0.1, betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="betas"):
        layer.optimizer_step("adam", 0.1, betas=0.9)
    with pytest.raises(ValueError, match="eps"):
        layer.optimizer_step("adam", 0.1, eps=0.0)
    m = MotifMLP([4, 8, 2], density=0.5)
    X, y = np.zeros((4, 4), np.float32), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="max_grad_norm"):
        m.train_step(X, y, max_grad_norm=-1.0)
    with pytest.raises(ValueError, match="optimizer"):
        Trainer(m, optimizer="lbfgs")
    with pytest.raises(ValueError, match="recipe"):
        Trainer(m, recipe="fancy")


# ---- gradient clipping -------------------------------------------------------------------------

def test_clipping_rescales_the_global_gradient_norm():
    """With plain SGD (no momentum, no decay, lr 1) a step moves every parameter by -g; clipping
    to c moves it by -g * min(1, c / ||g||) with ||g|| over all layers together."""
    X, y = blobs(64)
    models = [MotifMLP([20, 32, 16, 3], motif=[2, 2, 1], density=0.4, seed=5, num_threads=1) for _ in range(3)]
    before = models[0].get_state()
    kw = dict(lr=1.0, momentum=0.0, weight_decay=0.0)
    models[0].train_step(X, y, **kw)
    after = models[0].get_state()
    keys = [k for k in before if k.endswith(".weights") or k.endswith(".bias")]
    g = {k: before[k].astype(np.float64) - after[k] for k in keys}
    norm = math.sqrt(sum(float((v ** 2).sum()) for v in g.values()))
    for model, c in ((models[1], norm / 3), (models[2], norm * 2)):
        model.train_step(X, y, max_grad_norm=c, **kw)
        got = model.get_state()
        scale = min(1.0, c / norm)
        for k in keys:
            np.testing.assert_allclose(got[k], before[k] - scale * g[k], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_optimizers_and_clipping_do_not_depend_on_threads(optimizer):
    X, y = blobs(256, d=40)
    states = []
    for threads in (1, 2):
        m = MotifMLP([40, 600, 600, 3], density=0.5, seed=1, num_threads=threads)
        m.train_epoch(X, y, batch_size=64, lr=0.01, optimizer=optimizer, max_grad_norm=0.5, seed=0)
        states.append(m.get_state())
    assert all(np.array_equal(states[0][k], states[1][k]) for k in states[0])


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_update_inside_the_backward_matches_the_update_after_it(optimizer):
    """Without clipping, a layer on the fused backward route updates its weights inside its backward
    (Network::backward_update); a clipping bound no gradient reaches keeps every update after the
    whole backward, with the gradient scale 1: the same arithmetic, so the same bits."""
    X, y = blobs(300, d=60)
    states = []
    for clip in (0.0, 1e30):
        m = MotifMLP([60, 500, 400, 3], motif=[1, 2, 1], density=0.1, seed=2, num_threads=2)
        m.train_epoch(X, y, batch_size=64, lr=0.01, optimizer=optimizer, max_grad_norm=clip, seed=0)
        m.train_step(X[:50], y[:50], lr=0.02, optimizer=optimizer, max_grad_norm=clip)
        st = m.get_state()
        st.update({f"grad{i}": layer._core.grad_weights for i, layer in enumerate(m.layers)})
        states.append(st)
    assert states[0].keys() == states[1].keys()
    assert all(np.array_equal(states[0][k], states[1][k]) for k in states[0])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_update_in_transposed_order_survives_what_happens_between_steps(optimizer):
    """A layer that updates inside its backward keeps its weights' transposed copy, its gradient and
    its optimizer state in transposed order from one step to the next. Everything that may come
    between two steps -- an evaluation, reading the state, SET and CHT evolution, loading a state,
    a step that clips -- must see and leave the same values as a model that updates after the
    backward (a clipping bound no gradient reaches), bit for bit. Random labels: the gradients stay
    large, so a stale value anywhere shows in the weights. 302 samples: each epoch ends with a batch
    of 2, which the fused kernel does not take (off the route, straight after a step on it)."""
    X, _ = blobs(302, d=60)
    y = np.random.default_rng(1).integers(0, 3, size=302)
    states = []
    for clip in (0.0, 1e30):
        m = MotifMLP([60, 500, 400, 3], motif=1, density=0.1, seed=5, num_threads=2)
        kw = dict(batch_size=50, lr=0.01, optimizer=optimizer, max_grad_norm=clip)
        m.train_epoch(X, y, seed=0, **kw)
        m.predict_proba(X[:20])
        m.train_epoch(X, y, seed=1, **kw)
        m.evolve(0.2, seed=3)
        m.train_epoch(X, y, seed=2, **kw)
        mid = m.get_state()
        m.train_epoch(X, y, seed=3, **kw)
        m.set_state(mid)                     # back to the middle, then on again
        m.train_epoch(X, y, seed=3, **kw)
        m.train_step(X[:50], y[:50], lr=0.01, optimizer=optimizer, max_grad_norm=1.0)   # clips: after the backward
        m.train_epoch(X, y, seed=4, **kw)
        m.evolve_cht(0.1, seed=4)
        m.train_epoch(X, y, seed=5, **kw)
        st = m.get_state()
        st.update({f"grad{i}": layer._core.grad_weights for i, layer in enumerate(m.layers)})
        states.append(st)
    assert states[0].keys() == states[1].keys()
    assert all(np.array_equal(states[0][k], states[1][k]) for k in states[0])


# ---- regrowth modes ----------------------------------------------------------------------------

@pytest.mark.parametrize("regrow", ["zero", "pruned", "he"])
def test_regrowth_values_and_optimizer_state(regrow):
    rng = np.random.default_rng(0)
    layer = MotifLayer(40, 30, motif=2, density=0.3, seed=4, num_threads=1)
    for t in (1, 2):
        with_grads(layer, rng)
        layer.optimizer_step("adam", 0.01, t=t)
    old = set(zip(layer.block_rows.tolist(), layer.indices.tolist()))
    w_old = dict(zip(zip(layer.block_rows.tolist(), layer.indices.tolist()), layer.weights.tolist()))
    k = round(0.2 * layer.n_blocks)
    threshold = np.sort(np.abs(layer.weights))[k - 1]
    assert layer.prune_regrow(0.2, seed=9, regrow=regrow) == k
    pos = list(zip(layer.block_rows.tolist(), layer.indices.tolist()))
    new = np.array([p not in old for p in pos])
    assert new.sum() == k
    w = layer.weights
    for arr in (layer._core.weight_velocity, layer._core.weight_sq):
        assert np.all(arr[new] == 0) and np.any(arr[~new] != 0)
    # survivors keep their weights exactly
    assert all(w[i] == w_old[p] for i, p in enumerate(pos) if not new[i])
    if regrow == "zero":
        assert np.all(w[new] == 0)
    elif regrow == "pruned":
        assert np.all(np.abs(w[new]) <= threshold) and np.any(w[new] != 0)
    else:
        assert np.any(np.abs(w[new]) > threshold)   # He bound of 2x2 blocks >> smallest weights


def test_regrow_argument_checks():
    layer = MotifLayer(8, 8, density=0.5)
    with pytest.raises(ValueError, match="regrow must be"):
        layer.prune_regrow(0.2, regrow="random")
    with pytest.raises(ValueError, match="contradicts"):
        layer.prune_regrow(0.2, zero_init=True, regrow="he")


@pytest.mark.parametrize("spec, evolved", [("all", {0, 1, 2}), ("hidden", {0, 1}), ("input", {0}), ([1, 2], {1, 2})])
def test_evolve_layers_chooses_the_layers(spec, evolved):
    X, y = blobs()
    # uniform: a dense output layer (the default network) has no free position, so evolution cannot
    # change it whichever layers are chosen
    m = MotifMLP([20, 32, 32, 3], density=0.3, distribution="uniform", seed=0, num_threads=1)
    before = [layer.indices.copy() for layer in m.layers]
    Trainer(m, epochs=2, evolution="set-epoch", evolve_layers=spec, progress=False).fit(X, y)
    changed = {i for i, layer in enumerate(m.layers) if not np.array_equal(layer.indices, before[i])}
    assert changed == evolved


def test_evolve_layers_is_validated():
    m = MotifMLP([20, 32, 3], density=0.3, seed=0, num_threads=1)
    with pytest.raises(ValueError, match="evolve_layers"):
        Trainer(m, evolve_layers="output")
    with pytest.raises(ValueError, match="out of range"):
        Trainer(m, evolve_layers=[2])


def test_output_layer_can_be_kept_out_of_evolution():
    X, y = blobs()
    m = MotifMLP([20, 32, 32, 3], density=0.3, seed=0, num_threads=1)
    out_before = m.layers[-1].indices.copy()
    hid_before = m.layers[0].indices.copy()
    Trainer(m, epochs=3, evolution="set-epoch", evolve_layers="hidden", progress=False).fit(X, y)
    assert np.array_equal(m.layers[-1].indices, out_before)
    assert not np.array_equal(m.layers[0].indices, hid_before)


# ---- schedules counted in steps ----------------------------------------------------------------

def test_warmup_fraction_values():
    s = lr_schedule("cosine", 0.1, epochs=3, steps_per_epoch=10, warmup=0.1)   # 3 warmup steps of 30
    assert s.warmup_steps == 3
    assert s.lr_at(1, 0) == pytest.approx(0.1 / 3)
    assert s.lr_at(1, 2) == pytest.approx(0.1)
    assert s.lr_at(1, 3) == pytest.approx(0.1)                                   # cos(0)
    assert s.lr_at(2, 8) == pytest.approx(0.05 * (1 + math.cos(math.pi * 15 / 27)))
    with pytest.raises(ValueError, match="fraction"):
        lr_schedule("cosine", 0.1, 3, 10, warmup=1.5)


def test_cosine_evolution_schedule_values():
    # 10 epochs of 30 steps, every 100 steps, stop at 75 % (t_end = 225): multiples of 100 fall in
    # epochs 4 (t = 120) and 7 (t = 210); epoch 10 (t = 300) is past the stop.
    s = evolution_schedule("cosine", 10, 30)
    assert s.evolution_epochs() == [4, 7]
    assert s.zeta_at(4) == pytest.approx(0.15 * (1 + math.cos(math.pi * 120 / 225)))
    assert s.zeta_at(7) == pytest.approx(0.15 * (1 + math.cos(math.pi * 210 / 225)))
    # a big epoch (spe >= interval) evolves after every epoch of the first 75 %
    big = evolution_schedule("cosine", 8, 469)
    assert big.evolution_epochs() == [1, 2, 3, 4, 5]
    # one batch per epoch: every 100 epochs
    tiny = evolution_schedule("cosine", 1000, 1, zeta=0.5, interval=100)
    assert tiny.evolution_epochs() == [100, 200, 300, 400, 500, 600, 700]
    assert tiny.to_config() == {"preset": "cosine", "zeta": 0.5, "interval": 100, "stop": 0.75}


def test_trainer_resolves_the_schedule_for_the_data_size():
    X, y = blobs(600)
    tr = Trainer(MotifMLP([20, 32, 3], density=0.3, seed=0, num_threads=1), epochs=10, batch_size=20,
                 evolution="cosine", progress=False)
    tr.fit(X, y)   # 30 steps per epoch: evolution after epochs 4 and 7
    assert [r["epoch"] - 1 for r in tr.history.rows if r["zeta"]] == [4, 7]


def test_short_run_warmup_fits_the_run():
    """The default recipe's warmup is 5 % of the run: a 3-epoch run is not all warmup."""
    X, y = blobs(640)
    tr = Trainer(MotifMLP([20, 32, 3], density=0.3, seed=0, num_threads=1), epochs=3, batch_size=64,
                 progress=False)
    tr.fit(X, y)
    base = RECIPES["motifcore"]["lr"]
    assert tr.history["lr_end"][0] == pytest.approx(base / 2 * (1 + math.cos(math.pi * 8 / 29)))
    paper = Trainer(MotifMLP([20, 32, 3], density=0.3, seed=0, num_threads=1), epochs=3, batch_size=64,
                    recipe="paper", progress=False)
    paper.fit(X, y)
    assert paper.history["lr_end"][1] == pytest.approx(0.01)   # 2 warmup epochs of 3


# ---- recipes, restoring the best weights, checkpoints with Adam ------------------------------

def test_recipes_fill_only_unset_settings():
    m = MotifMLP([20, 32, 3], density=0.3, seed=0, num_threads=1)
    tr = Trainer(m, recipe="paper", lr=0.05)
    cfg = tr.config
    assert cfg["lr"] == 0.05 and cfg["recipe"] == "paper"
    for key in ("optimizer", "momentum", "weight_decay", "warmup", "max_grad_norm"):
        assert cfg[key] == RECIPES["paper"][key]
    # regrowth and layers are the paper evolution's own (SET's: every layer, fresh He draws)
    assert cfg["evolution"]["preset"] == "paper" and (cfg["regrow"], cfg["evolve_layers"]) == ("he", "all")
    assert recipe("motifcore") == RECIPES["motifcore"] and recipe("motifcore") is not RECIPES["motifcore"]


def test_restore_best_returns_the_best_epoch_bit_for_bit():
    X, y = blobs(300, seed=1)
    Xv, yv = blobs(200, seed=2)
    seen = {}

    def record(trainer, epoch, logs):
        seen[epoch] = {k: v.copy() for k, v in trainer.model.get_state().items()}

    best = RestoreBest("val_loss")
    tr = Trainer(MotifMLP([20, 16, 3], density=0.3, seed=0, num_threads=1), epochs=12, lr=0.5,
                 lr_schedule="constant", evolution="set-epoch", callbacks=[record, best], progress=False)
    tr.fit(X, y, Xv, yv)
    losses = tr.history["val_loss"]
    want = int(np.argmin(losses)) + 1
    assert best.best_epoch == want
    state = tr.model.get_state()
    assert all(np.array_equal(state[k], seen[want][k]) for k in state)
    if want != 12:
        assert not all(np.array_equal(seen[12][k], seen[want][k]) for k in state)


def test_adam_run_resumes_bit_exactly(tmp_path):
    X, y = blobs()
    kw = dict(epochs=4, optimizer="adam", lr=0.003, evolution="set-epoch", regrow="zero", progress=False)
    full = Trainer(MotifMLP([20, 32, 3], density=0.3, seed=0, num_threads=1), **kw)
    full.fit(X, y)
    half = Trainer(MotifMLP([20, 32, 3], density=0.3, seed=0, num_threads=1), **{**kw, "epochs": 4})
    half.callbacks.append(as_callback(lambda t, e, logs: e == 2))
    half.fit(X, y)
    half.save_checkpoint(tmp_path / "ck.npz")
    resumed = Trainer.from_checkpoint(tmp_path / "ck.npz", progress=False)
    assert resumed.config == full.config
    resumed.fit(X, y)
    a, b = full.model.get_state(), resumed.model.get_state()
    assert "layer0.weight_sq" in a and all(np.array_equal(a[k], b[k]) for k in a)


# ---- the update inside a row-major backward (what motifcore.torch.SGDInBackward calls) -----------
@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("geometry", [(40, 36, 1, 0.3, True), (40, 36, 1, 0.3, False), (40, 36, 2, 0.4, True),
                                      (20, 18, 1, 1.0, True)])
def test_update_inside_the_backward_is_the_backward_then_the_update(kind, geometry):
    """Layer.backward_handoff(update=...) against backward_into + optimizer_step on a twin layer,
    bit for bit, over steps with a write of the weights through the tracked view in between: on the
    transposed route (input gradient, sparse), off it (no input gradient: a first layer), with
    motifs and on the dense path."""
    from motifcore import _core

    n_in, n_out, m, density, need_in = geometry
    a, b = (_core.Layer(n_in, n_out, m, m, density, 0.0, "neuron", "relu", 3) for _ in range(2))
    view = a.weights_view(tracked=True)
    settings = dict(lr=0.05, momentum=0.8, weight_decay=0.01)
    rng = np.random.default_rng(0)
    for t in range(1, 6):
        if t == 3:                          # a write through the view, reported as the caller must
            view *= 0.5
            a.weights_written()
            b.set_weights(b.weights * 0.5)
        x = rng.normal(size=(12, n_in)).astype(np.float32)
        g = rng.normal(size=(12, n_out)).astype(np.float32)
        a.forward(x, 2)
        b.forward(x, 1)
        gin, _, _ = a.backward_handoff(g, None, None, 2, need_in, update={"optimizer": kind, "t": t, **settings})
        gin_b = b.backward_into(g, None, None, 1, need_in)
        b.optimizer_step(kind, settings["lr"], momentum=settings["momentum"], weight_decay=settings["weight_decay"],
                         t=t, num_threads=1)
        if need_in:
            np.testing.assert_array_equal(gin, gin_b)
        np.testing.assert_array_equal(a.weights, b.weights)
        np.testing.assert_array_equal(a.bias, b.bias)
        np.testing.assert_array_equal(a.grad_weights, b.grad_weights)
        np.testing.assert_array_equal(a.weight_velocity, b.weight_velocity)
        np.testing.assert_array_equal(a.weight_sq, b.weight_sq)
    assert not np.array_equal(a.weights, _core.Layer(n_in, n_out, m, m, density, 0.0, "neuron", "relu", 3).weights)
    none = np.zeros(0, np.float32)
    a.set_moments(np.ones(a.n_blocks, np.float32), none, np.full(a.n_blocks, 2, np.float32),
                  np.full(a.n_bias, 3, np.float32))
    np.testing.assert_array_equal(a.weight_velocity, np.ones(a.n_blocks, np.float32))
    np.testing.assert_array_equal(a.bias_velocity, np.zeros(a.n_bias, np.float32))
    np.testing.assert_array_equal(a.weight_sq, np.full(a.n_blocks, 2, np.float32))
    np.testing.assert_array_equal(a.bias_sq, np.full(a.n_bias, 3, np.float32))
    a.set_moments(none, none, none, none)
    assert a.weight_sq.size == 0 and not a.weight_velocity.any()
    with pytest.raises(ValueError, match="one per block"):
        a.set_moments(np.ones(a.n_blocks + 1, np.float32), none, none, none)
    with pytest.raises(ValueError, match="NaN or infinite"):
        a.set_moments(np.full(a.n_blocks, np.inf, np.float32), none, none, none)
    with pytest.raises(ValueError, match=">= 0"):
        a.set_moments(none, none, np.full(a.n_blocks, -1, np.float32), np.zeros(a.n_bias, np.float32))
    with pytest.raises(ValueError, match="or neither"):
        a.set_moments(none, none, np.zeros(a.n_blocks, np.float32), none)
    a.forward(x, 1)
    with pytest.raises(ValueError, match="grad_weights and grad_bias must be None"):
        a.backward_handoff(g, np.zeros(a.n_blocks, np.float32), None, 1, True, update={"optimizer": "sgd", "lr": 0.1})
    with pytest.raises(ValueError, match="unknown setting 'betas'"):
        a.backward_handoff(g, None, None, 1, True, update={"optimizer": "sgd", "lr": 0.1, "betas": 0.9})
    with pytest.raises(ValueError, match="momentum"):
        a.backward_handoff(g, None, None, 1, True, update={"optimizer": "sgd", "lr": 0.1, "momentum": 1.5})


def test_update_from_given_gradients():
    """Layer.update_from: the stored gradients replaced by the given ones, then the update."""
    from motifcore import _core

    a, b = (_core.Layer(20, 16, 1, 1, 0.3, 0.0, "neuron", "linear", 4) for _ in range(2))
    rng = np.random.default_rng(1)
    gw = rng.normal(size=a.n_blocks).astype(np.float32)
    gb = rng.normal(size=a.n_bias).astype(np.float32)
    w0, b0 = a.weights, a.bias
    a.update_from(gw, gb, {"optimizer": "sgd", "lr": 0.25, "momentum": 0.0}, 2)   # plain SGD: w - lr * g
    np.testing.assert_array_equal(a.weights, w0 - np.float32(0.25) * gw)
    np.testing.assert_array_equal(a.bias, b0 - np.float32(0.25) * gb)
    np.testing.assert_array_equal(a.grad_weights, gw)
    b.update_from(gw, gb, {"optimizer": "sgd", "lr": 0.25, "momentum": 0.0}, 1)
    for t in (1, 2):                                     # Adam on 2 threads and on 1: the same bits
        for layer, nt in ((a, 2), (b, 1)):
            layer.update_from(gw * t, gb, {"optimizer": "adam", "lr": 0.01, "weight_decay": 0.1, "t": t}, nt)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.weight_sq, b.weight_sq)
    with pytest.raises(ValueError, match="must hold"):
        a.update_from(np.zeros(3, np.float32), np.zeros(a.n_bias, np.float32), {"optimizer": "sgd", "lr": 0.1}, 1)
