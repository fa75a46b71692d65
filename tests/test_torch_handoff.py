"""motifcore.torch: the panel handoff between consecutive MotifLinear layers (the next layer takes
the previous one's output panel, the previous one the next one's input-gradient panel, instead of
converting the row-major tensor again) gives the results of the converting path bit for bit, and is
not taken when the tensor is not exactly what the other layer returned (changed in place, a copy,
a later call of the other layer, the shared gradient panel overwritten by another layer)."""

from __future__ import annotations

import sys
import threading

import motifcore
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from motifcore.torch import MotifLinear  # noqa: E402


def _layers(specs, threads=2, seed=0):
    torch.manual_seed(seed)
    return [MotifLinear(*s[:2], motif=s[2], density=s[3], activation=s[4], bias_mode=s[5], num_threads=threads)
            for s in specs]


def _run(layers, x, g, convert):
    """Output, input gradient and parameter gradients of the chain; ``convert``: break every
    handoff (a copy between layers, a copied gradient), so each layer converts its tensors."""
    for m in layers:
        for p in m.parameters():
            p.grad = None
    x = x.detach().clone().requires_grad_(True)
    h = x
    for m in layers:
        h = m(h)
        if convert:
            h = h.clone()
            h.register_hook(lambda grad: grad.clone())
    h.backward(g)
    return h.detach(), x.grad, [p.grad.clone() for m in layers for p in m.parameters()]


SPECS = [
    # (n_in, n_out, motif, density, activation, bias_mode); consecutive widths match
    [(13, 21, 1, 0.5, "relu", "neuron"), (21, 17, 1, 0.4, "relu", "neuron"), (17, 5, 1, 0.7, "linear", "neuron")],
    [(14, 20, 2, 0.5, "relu", "motif"), (20, 15, 2, 0.6, "relu", "neuron"), (15, 4, (2, 3), 0.8, "linear", "motif")],
    # motifs that differ across a boundary (m_out 3 then m_in 2, m_out 1 then m_in 4): the gradient
    # panel of the next layer holds one row per input group of its own
    [(10, 18, 3, 0.6, "relu", "neuron"), (18, 9, (1, 2), 0.5, "relu", "neuron"),
     (9, 6, (2, 4), 0.9, "linear", "neuron")],
]


@pytest.mark.parametrize("specs", SPECS)
@pytest.mark.parametrize("lead", [(7,), (3, 2)])
def test_handoff_equals_the_converting_path_bitwise(specs, lead):
    layers = _layers(specs)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(*lead, specs[0][0], generator=gen)
    g = torch.randn(*lead, specs[-1][1], generator=gen)
    y, gx, gp = _run(layers, x, g, convert=False)
    assert [m._handed_in for m in layers] == [False, True, True]
    assert [m._handed_grad for m in layers] == [True, True, False]       # the last gets the loss's gradient
    y2, gx2, gp2 = _run(layers, x, g, convert=True)
    assert not any(m._handed_in or m._handed_grad for m in layers)
    assert torch.equal(y, y2) and torch.equal(gx, gx2)
    assert all(torch.equal(a, b) for a, b in zip(gp, gp2))
    for threads in (1, 3):                                              # and on other thread counts
        for m in layers:
            m.num_threads = threads
        y3, gx3, gp3 = _run(layers, x, g, convert=False)
        assert torch.equal(y, y3) and torch.equal(gx, gx3) and all(torch.equal(a, b) for a, b in zip(gp, gp3))


def test_a_tensor_changed_in_place_is_converted_not_handed_over():
    l1, l2 = _layers([(12, 16, 2, 0.5, "relu", "neuron"), (16, 6, 2, 0.5, "linear", "neuron")])
    x = torch.randn(5, 12)
    ref = l2(l1(x).clone().mul_(2.0))
    for change in (lambda y: y.mul_(2.0),                     # in place
                   lambda y: y.view(-1).mul_(2.0),            # through a view
                   lambda y: y[:].mul_(2.0),
                   lambda y: y.detach().mul_(2.0)):           # detach() shares the version counter
        y = l1(x)
        change(y)
        out = l2(y)
        assert not l2._handed_in and torch.equal(out, ref)
    y = l1(x)
    out = l2(y * 2.0)                                        # another tensor: no tag
    assert not l2._handed_in and torch.equal(out, ref)


def test_a_gradient_changed_in_place_by_a_hook_is_converted():
    l1, l2 = _layers([(12, 16, 1, 0.5, "relu", "neuron"), (16, 6, 2, 0.5, "linear", "neuron")])
    x, g = torch.randn(5, 12), torch.randn(5, 6)
    grads = []
    for hook in (lambda grad: grad.mul_(3.0), lambda grad: grad * 3.0):
        l1.zero_grad(set_to_none=True)
        y = l1(x)
        y.register_hook(hook)
        l2(y).backward(g)
        assert not l1._handed_grad
        grads.append(l1.weight.grad.clone())
    assert torch.equal(grads[0], grads[1])


def test_a_later_forward_of_the_producer_is_seen():
    l1, l2 = _layers([(12, 16, 1, 0.5, "relu", "neuron"), (16, 6, 1, 0.5, "linear", "neuron")])
    x1, x2 = torch.randn(5, 12), torch.randn(5, 12)
    y = l1(x1)
    l1(x2)                                 # l1's panel now holds another output
    out = l2(y)
    assert not l2._handed_in and torch.equal(out, l2(y.clone()))


def test_a_stale_gradient_panel_is_converted():
    """The gradient tensor of a backward that is no longer the producer's last call, or whose panel
    in the shared scratch another layer overwrote, is converted."""
    l1, l2, other = _layers([(12, 16, 1, 0.5, "relu", "neuron"), (16, 6, 1, 0.5, "linear", "neuron"),
                             (16, 6, 1, 0.5, "linear", "neuron")])
    x, g1, g2 = torch.randn(5, 12), torch.randn(5, 6), torch.randn(5, 6)

    def l1_grads(make_stale):
        l1.zero_grad(set_to_none=True)
        y = l1(x)
        z = l2(y)
        (gy,) = torch.autograd.grad(z, y, g1, retain_graph=True)     # tagged by l2's backward
        make_stale(y, z)
        y.backward(gy)
        return l1._handed_grad, l1.weight.grad.clone(), gy

    handed, fresh, gy = l1_grads(lambda y, z: None)
    assert handed
    handed, again, gy_again = l1_grads(lambda y, z: torch.autograd.grad(z, y, g2, retain_graph=True))
    assert not handed and torch.equal(again, fresh) and torch.equal(gy_again, gy)

    def other_backward(y, z):              # another layer's input gradient into the shared panel
        yo = y.detach().requires_grad_(True)
        other(yo).backward(g2)

    handed, again, _ = l1_grads(other_backward)
    assert not handed and torch.equal(again, fresh)


def test_non_finite_hidden_values_are_still_refused():
    l1, l2 = _layers([(8, 10, 1, 1.0, "linear", "neuron"), (10, 4, 1, 0.5, "linear", "neuron")])
    with torch.no_grad():
        l1.weight.fill_(3e38)
    x = torch.ones(3, 8)
    y = l1(x)
    n_bad = int((~torch.isfinite(y)).sum())
    assert n_bad > 0
    with pytest.raises(ValueError, match=f"x contains {n_bad} NaN or infinite values"):
        l2(y)


@pytest.mark.parametrize("batch, s, j", [(20, 3, 5), (20, 15, 39), (20, 18, 7), (20, 2, 42), (20, 19, 43),
                                         (20, 0, 0), (28, 20, 7), (28, 26, 7), (28, 27, 43), (12, 10, 7),
                                         (12, 3, 40)])
def test_one_infinite_hidden_value_is_counted_wherever_it_lands(batch, s, j, simd_levels):
    """The output rows come from 8 x 8 register blocks (which check the values they move) and from
    what the blocks leave over: of 44 features, 40 are in blocks; of 20 samples, 16 (the last tile
    of 4 has none), of 28, 24 (a last tile of 12: blocks for 8, 4 left), of 12, 8. One infinity at
    any of those places, on every SIMD level, is the one value the next layer refuses."""
    for level in simd_levels:
        motifcore._core.set_simd_level(level)
        l1, l2 = _layers([(6, 44, 1, 1.0, "linear", "neuron"), (44, 4, 1, 0.5, "linear", "neuron")])
        with torch.no_grad():
            l1.weight.zero_()
            l1.bias.zero_()
            l1.weight[j * 6] = 1e10            # dense pattern in CSR order: block (j, 0)
        x = torch.zeros(batch, 6)
        x[s, 0] = 1e38
        y = l1(x)
        assert torch.isinf(y[s, j]) and int((~torch.isfinite(y)).sum()) == 1
        with pytest.raises(ValueError, match="x contains 1 NaN or infinite values"):
            l2(y)
        y = l1(torch.ones(batch, 6))           # and a finite output passes
        assert torch.isfinite(l2(y)).all()


def test_layers_of_two_threads_share_the_scratch_safely():
    """Row-major calls of all layers share one backward scratch; calls from two threads take turns
    and give the results of running one after the other."""
    specs = [(20, 48, 1, 0.3, "relu", "neuron"), (48, 48, 2, 0.4, "relu", "neuron"),
             (48, 5, 1, 0.6, "linear", "neuron")]

    def train(layers, seed, out):
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.SGD([p for m in layers for p in m.parameters()], lr=0.01, momentum=0.9)
        for _ in range(15):
            x, t = torch.randn(16, 20, generator=gen), torch.randn(16, 5, generator=gen)
            opt.zero_grad()
            h = x
            for m in layers:
                h = m(h)
            ((h - t) ** 2).mean().backward()
            opt.step()
        out.append([p.detach().clone() for m in layers for p in m.parameters()])

    seq = [], []
    for k in range(2):
        train(_layers(specs, seed=k), 10 + k, seq[k])
    par = [], []
    threads = [threading.Thread(target=train, args=(_layers(specs, seed=k), 10 + k, par[k])) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(2):
        assert all(torch.equal(a, b) for a, b in zip(seq[k][0], par[k][0]))


def test_in_place_relu_between_layers_gives_the_gradients_of_the_plain_relu():
    """nn.ReLU(inplace=True) changes the first layer's output in place: the next layer converts the
    changed tensor, and autograd routes the gradients through the ReLU as for nn.ReLU()."""
    torch.manual_seed(3)
    a = MotifLinear(12, 20, motif=2, density=0.5)
    b = MotifLinear(20, 4, motif=2, density=0.6)
    x, g = torch.randn(6, 12), torch.randn(6, 4)
    results = []
    for relu in (torch.nn.ReLU(inplace=True), torch.nn.ReLU()):
        model = torch.nn.Sequential(a, relu, b)
        model.zero_grad(set_to_none=True)
        xr = x.clone().requires_grad_(True)
        y = model(xr)
        y.backward(g)
        results.append((y.detach(), xr.grad, a.weight.grad.clone(), b.weight.grad.clone(), b._handed_in))
    assert not results[0][4] and not results[1][4]
    assert all(torch.equal(p, q) for p, q in zip(results[0][:4], results[1][:4]))


def test_tagged_tensors_save_load_and_copy_as_any_other():
    """Outputs and gradients of MotifLinear pickle (torch.save / load, weights_only included) and
    deep-copy as any tensor; a loaded or copied tensor is converted, not handed over."""
    import copy
    import io

    l1, l2 = _layers([(12, 16, 1, 0.5, "relu", "neuron"), (16, 6, 1, 0.5, "linear", "neuron")])
    x = torch.randn(5, 12, requires_grad=True)
    y = l1(x)
    l2(y).sum().backward()
    for t in (y, x.grad):
        buf = io.BytesIO()
        torch.save(t, buf)
        buf.seek(0)
        assert torch.equal(torch.load(buf), t)
    y = l1(x.detach())
    for other in (copy.deepcopy(y.detach()), y.detach().clone()):
        out = l2(other)
        assert not l2._handed_in and torch.equal(out, l2(y.clone()))


def test_a_loaded_tensor_never_takes_a_panel_even_at_the_same_address():
    """A tag is not saved with its tensor: a loaded tensor is converted, even when it is bitwise the
    saved one and lands where a tagged tensor was."""
    import io

    l1, l2 = _layers([(12, 16, 1, 0.5, "relu", "neuron"), (16, 6, 1, 0.5, "linear", "neuron")])
    with torch.no_grad():
        y = l1(torch.randn(5, 12))
        expected = l2(y * 2).clone()
        y.mul_(2)                       # version 1; l1's panel holds the values before the change
        buf = io.BytesIO()
        torch.save(y, buf)
        del y
        buf.seek(0)
        z = torch.load(buf)             # version 0, maybe at y's address
        out = l2(z)
    assert not l2._handed_in and torch.equal(out, expected)


def test_inference_mode_runs_and_never_hands_off():
    l1, l2 = _layers([(12, 16, 2, 0.5, "relu", "neuron"), (16, 6, 1, 0.5, "linear", "neuron")])
    x = torch.randn(4, 3, 12)
    with torch.no_grad():
        expected = l2(l1(x).clone())
    with torch.inference_mode():
        out = l2(l1(x))
    assert not l2._handed_in and torch.equal(out, expected)


@pytest.mark.parametrize("batch", [128, 131])
def test_streamed_rows_equal_the_cached_ones(batch):
    """Large output and input-gradient rows of a training step go past the caches (panel_to_rows'
    stream_rows: n a multiple of 8, at least 256 KiB); their values are those of the plain stores
    (the same layer under no_grad; the dense reference's gradient), also with samples left over by
    the 8 x 8 blocks (131)."""
    torch.manual_seed(0)
    l1 = MotifLinear(40, 1032, density=0.2, activation="relu", num_threads=2)
    l2 = MotifLinear(1032, 24, density=0.3, num_threads=2)
    x = torch.randn(batch, 40)
    with torch.no_grad():
        cached = l1(x)
    h = l1(x)                               # grad mode: streamed rows
    assert h.shape == (batch, 1032) and torch.equal(h, cached)
    seen = {}
    h.register_hook(lambda g: seen.setdefault("grad_h", g.clone()))
    l2(h).square().sum().backward()
    # dL/dh through the dense weights of l2 (the streamed input-gradient rows of l2's backward)
    with torch.no_grad():
        y = h @ l2.to_dense().T + l2.dense_bias()
        expected = (2 * y) @ l2.to_dense()
    assert torch.allclose(seen["grad_h"], expected, rtol=1e-4, atol=1e-4)


def test_result_arrays_are_reused_only_when_nothing_holds_them():
    """A layer writes its next output (and input gradient) into the array of its last one only once
    no tensor, view or NumPy array made from that one is alive: what the caller keeps never changes."""
    (layer,) = _layers([(12, 40, 1, 0.5, "relu", "neuron")], threads=1)
    xs = [torch.randn(9, 12, generator=torch.Generator().manual_seed(k)) for k in range(6)]
    with torch.no_grad():
        expected = [layer(x).clone() for x in xs]    # (inference tensors are never tagged: no reuse)
    y0 = layer(xs[0])
    kept = y0.clone()
    y1 = layer(xs[1])                                  # y0 is alive: a new array
    assert y1.data_ptr() != y0.data_ptr() and torch.equal(y0, kept)
    ptr1 = y1.data_ptr()
    del y0, y1
    y2 = layer(xs[2])                                  # nothing holds y1's array: reused
    assert y2.data_ptr() == ptr1 and torch.equal(y2, expected[2])
    view = y2[3:]                                      # a view holds the memory
    arr = y2.detach().numpy()                          # and so does a NumPy array of it
    del y2
    y3 = layer(xs[3])
    assert torch.equal(y3, expected[3]) and torch.equal(view, expected[2][3:]) and np.array_equal(arr, expected[2])
    del view
    y4 = layer(xs[4])                                  # arr still holds y2's array, y3 holds its own
    assert np.array_equal(arr, expected[2]) and torch.equal(y4, expected[4])
    del arr, y3, y4
    assert torch.equal(layer(xs[5]), expected[5])
    # the input gradient: kept ones stay as they were
    g = torch.randn(9, 40)
    x = xs[0].clone().requires_grad_(True)
    layer(x).backward(g)
    g_first = x.grad
    kept = g_first.clone()
    x.grad = None
    layer(x).backward(2 * g)
    assert torch.equal(g_first, kept) and torch.allclose(x.grad, 2 * kept, atol=1e-6)


def test_the_engine_refuses_a_bad_result_array():
    (layer,) = _layers([(12, 40, 1, 0.5, "linear", "neuron")], threads=1)
    core = layer._core
    x = np.random.default_rng(0).normal(size=(9, 12)).astype(np.float32)
    good = np.empty((9, 40), np.float32)
    out, _, _ = core.forward_handoff(x, 1, None, 0, False, good)
    assert out is good or np.shares_memory(out, good)
    np.testing.assert_array_equal(good, core.forward_handoff(x, 1)[0])
    with pytest.raises(ValueError, match=r"out must have shape \(9, 40\)"):
        core.forward_handoff(x, 1, None, 0, False, np.empty((9, 41), np.float32))
    with pytest.raises(TypeError, match="writable, aligned, C-contiguous 2-D float32"):
        core.forward_handoff(x, 1, None, 0, False, np.empty((9, 40), np.float64))
    with pytest.raises(TypeError, match="writable, aligned, C-contiguous 2-D float32"):
        core.forward_handoff(x, 1, None, 0, False, np.empty((40, 9), np.float32).T)
    raw = np.zeros(9 * 40 * 4 + 1, np.uint8)                                   # float32 rows at an odd address
    with pytest.raises(TypeError, match="aligned"):
        core.forward_handoff(x, 1, None, 0, False, raw[1:].view(np.float32).reshape(9, 40))
    rows = np.zeros((9, 40), np.float32)
    with pytest.raises(ValueError, match="shares memory with the input"):     # x is the start of out
        core.forward_handoff(rows.reshape(-1)[: 9 * 12].reshape(9, 12), 1, None, 0, False, rows)
    g = np.ones((9, 40), np.float32)
    with pytest.raises(TypeError, match="grad_weights must be a writable, aligned, C-contiguous 1-D float32"):
        core.backward_handoff(g, np.empty(layer.n_blocks, np.float64), None, 1, True)
    with pytest.raises(TypeError, match="grad_bias must be a writable, aligned, C-contiguous 1-D float32"):
        core.backward_handoff(g, None, np.empty(80, np.float32)[::2], 1, True)
    with pytest.raises(ValueError, match="shares memory with the input"):     # grad_in inside grad_out
        core.backward_handoff(g, None, None, 1, True, None, 0, False, g.reshape(-1)[: 9 * 12].reshape(9, 12))


@pytest.mark.parametrize("set_to_none", [True, False])
def test_kept_weight_gradients_never_change(set_to_none):
    """The block and bias gradients come from arrays the layer reuses once nothing holds them:
    a gradient the caller kept stays as it was, and accumulation adds as for any parameter."""
    (layer,) = _layers([(12, 40, 1, 0.5, "relu", "neuron")], threads=1)
    opt = torch.optim.SGD(layer.parameters(), lr=0.0)          # lr 0: the weights stay, the gradients vary
    xs = [torch.randn(9, 12, generator=torch.Generator().manual_seed(k)) for k in range(4)]

    def grads(x):
        opt.zero_grad(set_to_none=set_to_none)
        layer(x).pow(2).sum().backward()
        return layer.weight.grad, layer.bias.grad

    ref = [tuple(t.clone() for t in grads(x)) for x in xs]     # every gradient, copied at once
    kept_w, kept_b = grads(xs[0])                               # kept: the same tensors the layer made
    for x, (w, b) in zip(xs[1:], ref[1:]):
        gw, gb = grads(x)
        assert torch.equal(gw, w) and torch.equal(gb, b)
    if set_to_none:                                              # the first ones are still held here
        assert torch.equal(kept_w, ref[0][0]) and torch.equal(kept_b, ref[0][1])
    opt.zero_grad(set_to_none=set_to_none)
    layer(xs[1]).pow(2).sum().backward()
    layer(xs[2]).pow(2).sum().backward()                         # accumulated
    torch.testing.assert_close(layer.weight.grad, ref[1][0] + ref[2][0])
    torch.testing.assert_close(layer.bias.grad, ref[1][1] + ref[2][1])


def test_reuse_reads_reference_counts_as_this_interpreter_gives_them():
    """Whether an array is free is read from its reference count, calibrated at import through the
    same call (counts differ between CPython versions): a held array must count one more."""
    from motifcore.torch import layer as L

    assert L._FREE_REFS is not None
    mod = type("M", (), {})()
    mod._rows = {"out": np.empty((2, 3), np.float32)}
    assert L.spare_array(mod, "out", (2, 3)) is not None             # nothing else held it
    held = np.empty((2, 3), np.float32)
    mod._rows = {"out": held}
    assert L.spare_array(mod, "out", (2, 3)) is None                 # `held` holds it
    mod._rows = {"out": np.empty((2, 3), np.float32)}
    assert L.spare_array(mod, "out", (3, 2)) is None                 # another shape
    assert L._aligned_empty(1000).ctypes.data % 64 == 0


def test_one_layer_used_from_two_threads_gives_each_its_own_gradients():
    """Forwards and backwards of the same layer from two threads take turns (the layer's lock):
    each backward runs against its own forward, whatever the other thread did in between."""
    (layer,) = _layers([(64, 64, 1, 0.5, "relu", "neuron")], threads=1)
    xs = [torch.randn(33, 64, generator=torch.Generator().manual_seed(k)) for k in range(8)]
    ref = []
    for x in xs:
        xx = x.clone().requires_grad_(True)
        ref.append(tuple(g.clone() for g in torch.autograd.grad(layer(xx).pow(2).sum(), [xx, layer.weight])))
    bad = []

    def work(tid):
        for it in range(60):
            k = (it * 5 + tid) % len(xs)
            xx = xs[k].clone().requires_grad_(True)
            gx, gw = torch.autograd.grad(layer(xx).pow(2).sum(), [xx, layer.weight])
            if not (torch.equal(gx, ref[k][0]) and torch.equal(gw, ref[k][1])):
                bad.append((tid, it))

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)                                  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(switch)
    assert not bad


def test_evaluation_keeps_no_result_array():
    """Only training calls (grad mode) keep their output array for reuse: an evaluation of a large
    batch leaves none of its size behind."""
    (layer,) = _layers([(12, 40, 1, 0.5, "relu", "neuron")], threads=1)
    y = layer(torch.randn(9, 12))
    kept = layer._rows["out"]
    del y
    with torch.no_grad():
        layer(torch.randn(5000, 12))
    assert layer._rows["out"] is kept and kept.shape == (9, 40)
