"""MotifMLP against the NumPy reference: loss gradients (recovered from one SGD step) checked
against central finite differences and an analytic backward, evaluate / predict_proba, the SGD
update rule, train_epoch == repeated train_step, and independence from thread count and SIMD level."""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from motifcore import MotifMLP, _core


def assert_close(actual, expected, rtol=1e-4, what=""):
    """Elementwise closeness with an absolute floor of ``rtol * max|expected|``."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * max(scale, 1e-6), err_msg=what)


def specs_of(mlp: MotifMLP):
    """The network as reference layer specs (float64 copies of the engine's parameters)."""
    specs = []
    for layer in mlp.layers:
        specs.append({
            "n_in": layer.n_in, "n_out": layer.n_out, "motif": layer.motif,
            "indptr": layer.indptr.copy(), "indices": layer.indices.copy(),
            "weights": layer.weights.astype(np.float64), "bias": layer.bias.astype(np.float64),
            "bias_mode": layer.bias_mode,
        })
    return specs


def engine_gradients(mlp: MotifMLP, x, y, lr=0.5):
    """dL/dK and dL/db of every layer as computed by the engine, recovered from one plain SGD step.

    With momentum 0 and weight decay 0 the update is exactly ``theta -= lr * grad`` (the gradient is
    evaluated at the old parameters, so lr need not be small). lr = 0.5 is a power of two: ``lr *
    grad`` is exact in float32 and ``(old - new) / lr`` recovers the float32 gradient up to one
    rounding of the new parameter. Returns (loss reported by the step, per-layer gradients)."""
    before = specs_of(mlp)
    loss = mlp.train_step(x, y, lr=lr, momentum=0.0, weight_decay=0.0, dropout=0.0)
    after = specs_of(mlp)
    for a, b in zip(before, after):  # SGD must not touch the pattern
        np.testing.assert_array_equal(a["indptr"], b["indptr"])
        np.testing.assert_array_equal(a["indices"], b["indices"])
    grads = [((a["weights"] - b["weights"]) / lr, (a["bias"] - b["bias"]) / lr) for a, b in zip(before, after)]
    return loss, before, grads


MLP_CONFIGS = {
    "square": dict(motif=[2, 3, 1], bias="neuron"),
    "rectangular": dict(motif=[(2, 3), (3, 2), 1], bias="neuron"),
    "motif-bias": dict(motif=[2, 3, 1], bias="motif"),
    "evolved": dict(motif=[2, 3, 1], bias="neuron", evolve=0.3),
    "unit-hidden": dict(motif=[1, (1, 3), 1], bias="neuron"),     # m_out = 1 hidden layers
    "mixed": dict(motif=[(1, 2), (2, 1), 1], bias="motif"),
}


@pytest.mark.parametrize("name", list(MLP_CONFIGS))
def test_loss_gradient_finite_differences(name):
    cfg = dict(MLP_CONFIGS[name])
    evolve = cfg.pop("evolve", None)
    mlp = MotifMLP([7, 9, 6, 3], density=0.6, seed=4, num_threads=2, **cfg)
    rng = np.random.default_rng(3)
    for layer in mlp.layers:  # non-zero biases so that their handling matters
        layer.bias = rng.normal(0, 0.2, layer.bias.size)
    if evolve:
        assert sum(mlp.evolve(evolve, seed=2)) > 0
    y = np.array([0, 2, 1, 2, 0])
    specs = specs_of(mlp)
    # Finite differences are only valid away from the ReLU kinks: draw a batch (deterministically)
    # whose hidden pre-activations all stay clear of 0, and check the ReLUs are really exercised.
    for _ in range(50):
        x = rng.normal(size=(5, 7)).astype(np.float32)
        if ref.min_abs_hidden_preactivation(specs, x) > 1e-4:
            break
    assert ref.min_abs_hidden_preactivation(specs, x) > 1e-4
    _, zs = ref.mlp_forward(specs, x)
    for z in zs[:-1]:
        assert (z > 0).any() and (z < 0).any()

    loss, before, eng = engine_gradients(mlp, x, y)
    ana = ref.mlp_gradients(before, x, y)
    fd = ref.mlp_fd_gradients(before, x, y, h=1e-6)
    assert loss == pytest.approx(ref.mlp_loss(before, x, y), rel=1e-5)
    for l, ((ek, eb), (ak, ab), (fk, fb)) in enumerate(zip(eng, ana, fd)):
        # The reference backward is right (float64 vs float64) ...
        assert_close(ak, fk, rtol=1e-6, what=f"layer {l} analytic dK vs finite differences")
        assert_close(ab, fb, rtol=1e-6, what=f"layer {l} analytic db vs finite differences")
        # ... and the engine agrees with both.
        assert_close(ek, fk, what=f"layer {l} engine dK vs finite differences")
        assert_close(eb, fb, what=f"layer {l} engine db vs finite differences")
        assert_close(ek, ak, what=f"layer {l} engine dK vs analytic")
        assert_close(eb, ab, what=f"layer {l} engine db vs analytic")
        assert np.abs(fk).max() > 1e-3  # the check is not vacuous


def test_sgd_momentum_weight_decay_rule():
    """Two steps with momentum and weight decay follow v = mu*v + (g + wd*w); w -= lr*v for block
    weights and biases alike, with g from the NumPy backward."""
    lr, mu, wd = 0.1, 0.9, 0.01
    mlp = MotifMLP([7, 9, 6, 3], motif=[2, (3, 2), 1], density=0.6, seed=8, num_threads=2)
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(6, 7)).astype(np.float32), rng.integers(0, 3, 6)) for _ in range(2)]
    specs = specs_of(mlp)
    vel = [(np.zeros_like(s["weights"]), np.zeros_like(s["bias"])) for s in specs]
    for x, y in batches:
        grads = ref.mlp_gradients(specs, x, y)
        new_specs, new_vel = [], []
        for s, (vk, vb), (gk, gb) in zip(specs, vel, grads):
            vk = mu * vk + gk + wd * s["weights"]
            vb = mu * vb + gb + wd * s["bias"]
            new_specs.append(dict(s, weights=s["weights"] - lr * vk, bias=s["bias"] - lr * vb))
            new_vel.append((vk, vb))
        specs, vel = new_specs, new_vel
        mlp.train_step(x, y, lr=lr, momentum=mu, weight_decay=wd)
    assert mlp.steps == 2
    for layer, s, (vk, vb) in zip(mlp.layers, specs, vel):
        assert_close(layer.weights, s["weights"], what="weights after 2 steps")
        assert_close(layer.bias, s["bias"], what="bias after 2 steps")
        assert_close(layer._core.weight_velocity, vk, what="weight velocity")
        assert_close(layer._core.bias_velocity, vb, what="bias velocity")


@pytest.mark.parametrize("bias", ["neuron", "motif"])
def test_evaluate_and_predict_proba(bias):
    mlp = MotifMLP([7, 9, 6, 4], motif=[2, 3, 1], density=0.6, bias=bias, seed=1, num_threads=2)
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 7)).astype(np.float32)
    y = rng.integers(0, 4, 50)
    mlp.train_epoch(X, y, batch_size=8, lr=0.2, seed=0)  # move away from the init
    specs = specs_of(mlp)
    logits = ref.mlp_logits(specs, X)
    loss, acc = mlp.evaluate(X, y, batch_size=16)  # chunked: 16, 16, 16, 2
    assert loss == pytest.approx(ref.cross_entropy(logits, y), rel=1e-5)
    assert acc == pytest.approx(np.mean(logits.argmax(axis=1) == y))
    assert_close(mlp.decision_function(X, batch_size=7), logits, rtol=1e-5, what="logits")
    proba = mlp.predict_proba(X)
    assert proba.shape == (50, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(proba, ref.softmax(logits), atol=1e-6)
    np.testing.assert_array_equal(mlp.predict(X), logits.argmax(axis=1))
    assert mlp.score(X, y) == acc


def test_train_epoch_equals_repeated_train_step():
    """One native epoch over an explicit order == train_step on the same batches (last one
    smaller), including dropout masks and momentum."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(45, 7)).astype(np.float32)
    y = rng.integers(0, 3, 45)
    order = rng.permutation(45)
    lrs = np.linspace(0.05, 0.01, 4)
    kw = dict(momentum=0.9, weight_decay=1e-3, dropout=0.2)
    a = MotifMLP([7, 9, 6, 3], motif=[2, 3, 1], density=0.6, seed=6, num_threads=2)
    b = MotifMLP([7, 9, 6, 3], motif=[2, 3, 1], density=0.6, seed=6, num_threads=2)
    loss_a = a.train_epoch(X, y, batch_size=12, lr=lrs, order=order, **kw)
    losses = []
    for k, start in enumerate(range(0, 45, 12)):
        idx = order[start:start + 12]
        losses.append(b.train_step(X[idx], y[idx], lr=lrs[k], **kw) * idx.size)
    assert a.steps == b.steps == 4
    assert loss_a == pytest.approx(sum(losses) / 45, rel=1e-6)
    for la, lb in zip(a.layers, b.layers):
        assert_close(la.weights, lb.weights, rtol=1e-6)
        assert_close(la.bias, lb.bias, rtol=1e-6)


def _train(num_threads, seed=5):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 60)).astype(np.float32)
    y = rng.integers(0, 10, 150)
    mlp = MotifMLP([60, 200, 90, 10], motif=[(1, 3), (2, 1), 1], density=0.3, seed=seed, num_threads=num_threads)
    losses = [mlp.train_epoch(X, y, batch_size=37, lr=0.05, seed=0, dropout=0.1)]
    mlp.evolve(0.2, seed=1)
    losses.append(mlp.train_epoch(X, y, batch_size=37, lr=0.05, seed=1, dropout=0.1))
    for _ in range(2):
        losses.append(mlp.train_step(X[:20], y[:20], lr=0.05))
    return mlp, losses


def test_mlp_threads_give_same_training():
    one, loss1 = _train(1)
    two, loss2 = _train(2)
    assert one.num_threads == 1 and two.num_threads == 2
    assert loss2 == loss1                      # bitwise, as docs/engine.md promises
    for l1, l2 in zip(one.layers, two.layers):
        np.testing.assert_array_equal(l1.indptr, l2.indptr)
        np.testing.assert_array_equal(l1.indices, l2.indices)
        np.testing.assert_array_equal(l2.weights, l1.weights)
        np.testing.assert_array_equal(l2.bias, l1.bias)
    # The training did something (otherwise equality is vacuous).
    fresh = MotifMLP([60, 200, 90, 10], motif=[(1, 3), (2, 1), 1], density=0.3, seed=5)
    assert not np.allclose(fresh.layers[0].weights[:10], one.layers[0].weights[:10])


def test_mlp_simd_levels_agree(simd_levels):
    results = {}
    for level in simd_levels:
        _core.set_simd_level(level)
        mlp, losses = _train(2)
        results[level] = (np.concatenate([l.weights for l in mlp.layers]), losses)
    base_w, base_loss = results["generic"]
    for level, (w, losses) in results.items():
        assert_close(w, base_w, what=f"weights at {level}")
        np.testing.assert_allclose(losses, base_loss, rtol=1e-4, err_msg=level)


# ---- dropout against a NumPy re-derivation of its masks ------------------------------------------

_M64 = (1 << 64) - 1


def _splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & _M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return state, z ^ (z >> 31)


def _hash4(a, b, c, d):
    s, h = _splitmix64(a)
    s, h = _splitmix64(h ^ b)
    s, h = _splitmix64(h ^ c)
    s, h = _splitmix64(h ^ d)
    return h


def dropout_keep(seed, step, layer, n, batch, p):
    """The engine's documented mask: neuron i of `layer` at `step` draws a splitmix64 stream seeded
    by hash4(seed, step, layer, i); each draw gives two 24-bit uniforms (bits 40-63, then 16-39),
    for samples t and t+1; a sample is dropped when its uniform is below p."""
    thr = int(p * (1 << 24))
    keep = np.ones((batch, n), dtype=bool)
    for i in range(n):
        x = _hash4(seed, step, layer, i)
        for t in range(0, batch, 2):
            x, r = _splitmix64(x)
            keep[t, i] = (r >> 40) >= thr
            if t + 1 < batch:
                keep[t + 1, i] = ((r >> 16) & 0xFFFFFF) >= thr
    return keep


def test_dropout_forward_and_gradients_match_numpy():
    p = 0.3
    rng = np.random.default_rng(5)
    mlp = MotifMLP([12, 20, 16, 4], motif=[2, 2, 1], density=0.5, seed=3, num_threads=1)
    x = rng.normal(size=(7, 12)).astype(np.float32)
    y = rng.integers(0, 4, size=7)
    specs = specs_of(mlp)
    seed, step = int(mlp._net.dropout_seed), mlp.steps
    masks = [dropout_keep(seed, step, l, s["n_out"], 7, p) / (1 - p) for l, s in enumerate(specs[:-1])]
    dropped = np.concatenate([(m == 0).ravel() for m in masks])
    assert 0.15 < dropped.mean() < 0.45                                # about p of them dropped

    # forward with the masks, then plain backprop through them (float64, dense matrices)
    a, inputs, zs = x.astype(np.float64), [], []
    for l, s in enumerate(specs):
        inputs.append(a)
        z = a @ ref.spec_matrix(s).T + ref.spec_bias(s)
        zs.append(z)
        a = np.maximum(z, 0) * masks[l] if l + 1 < len(specs) else z
    loss = ref.cross_entropy(zs[-1], y)
    dz = ref.softmax(zs[-1])
    dz[np.arange(7), y] -= 1
    dz /= 7
    grads = []
    for l in range(len(specs) - 1, -1, -1):
        s = specs[l]
        grads.append((ref.block_grads_from_dense(dz.T @ inputs[l], s["motif"], s["indptr"], s["indices"]),
                      ref.reduce_bias_grad(dz.sum(axis=0), s["n_out"], s["motif"][0], s["bias_mode"])))
        if l > 0:
            dz = (dz @ ref.spec_matrix(s)) * masks[l - 1] * (zs[l - 1] > 0)
    grads = grads[::-1]

    got = mlp.train_step(x, y, lr=1.0, momentum=0.0, weight_decay=0.0, dropout=p)
    assert got == pytest.approx(loss, rel=1e-5)
    for layer, s, (gk, gb) in zip(mlp.layers, specs, grads):
        assert_close(s["weights"] - layer.weights, gk, what="dK with dropout")
        assert_close(s["bias"] - layer.bias, gb, what="db with dropout")
