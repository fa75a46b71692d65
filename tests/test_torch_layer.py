"""motifcore.torch.MotifLinear: engine forward/backward against an independent dense reference,
parameters over the engine's memory, state_dict/pickling, conversions and clear errors."""

from __future__ import annotations

import copy
import io
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import motifcore  # noqa: E402
from motifcore.torch import SET, MotifLinear, from_linear, from_mlp, to_mlp  # noqa: E402


def test_import_motifcore_does_not_import_torch():
    code = ("import sys, motifcore, motifcore.export, motifcore.train.updaters\n"
            "assert 'torch' not in sys.modules, 'import motifcore imported torch'\n"
            "import motifcore.torch\n"
            "assert 'torch' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def dense_reference(layer: MotifLinear) -> np.ndarray:
    """The effective matrix rebuilt from the pattern and the weight parameter (not the engine's
    to_dense): W[i, j] = weight[p] for the block p = (i // m_out, j // m_in) when active."""
    m_out, m_in = layer.motif
    W = np.zeros((layer.out_features, layer.in_features), np.float64)
    w = layer.weight.detach().numpy()
    indptr, indices = layer.indptr, layer.indices
    for r in range(len(indptr) - 1):
        for p in range(indptr[r], indptr[r + 1]):
            c = indices[p]
            W[r * m_out:(r + 1) * m_out, c * m_in:(c + 1) * m_in] = w[p]
    return W


def block_sums(layer: MotifLinear, G: np.ndarray) -> np.ndarray:
    """Sum of a dense [n_out, n_in] gradient over each active block, in weight order."""
    m_out, m_in = layer.motif
    indptr, indices = layer.indptr, layer.indices
    out = []
    for r in range(len(indptr) - 1):
        for p in range(indptr[r], indptr[r + 1]):
            c = indices[p]
            out.append(G[r * m_out:(r + 1) * m_out, c * m_in:(c + 1) * m_in].sum())
    return np.array(out)


@pytest.mark.parametrize("motif, n_in, n_out, lead", [
    (1, 13, 9, (5,)),
    (2, 14, 10, (3, 4)),          # divisible
    (2, 15, 9, (2, 3, 2)),        # residual motifs on both sides
    (4, 18, 11, (7,)),            # residual motifs (18 = 4*4 + 2, 11 = 2*4 + 3)
    ((2, 3), 17, 8, (4,)),        # rectangular motif
])
@pytest.mark.parametrize("bias_mode, activation", [("neuron", "linear"), ("motif", "relu")])
def test_forward_and_gradients_match_dense_reference(motif, n_in, n_out, lead, bias_mode, activation):
    torch.manual_seed(1)
    layer = MotifLinear(n_in, n_out, motif=motif, density=0.4, seed=3, bias_mode=bias_mode, activation=activation)
    with torch.no_grad():
        layer.bias.uniform_(-0.5, 0.5)
    x = torch.randn(*lead, n_in, requires_grad=True)
    y = layer(x)
    assert y.shape == (*lead, n_out)
    upstream = torch.randn(*lead, n_out)
    (y * upstream).sum().backward()

    # independent float64 reference
    W = torch.tensor(dense_reference(layer), requires_grad=True)
    b = layer.bias.detach().double()
    if bias_mode == "motif":
        b = b.repeat_interleave(layer.motif[0])[:n_out]
    b = b.clone().requires_grad_(True)
    xr = x.detach().double().requires_grad_(True)
    yr = xr @ W.T + b
    if activation == "relu":
        yr = torch.relu(yr)
    (yr * upstream.double()).sum().backward()

    np.testing.assert_allclose(y.detach().numpy(), yr.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), xr.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.weight.grad.numpy(), block_sums(layer, W.grad.numpy()), rtol=1e-4, atol=1e-4)
    gb = b.grad.numpy()
    if bias_mode == "motif":
        gb = np.add.reduceat(gb, np.arange(0, n_out, layer.motif[0]))
    np.testing.assert_allclose(layer.bias.grad.numpy(), gb, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(layer.to_dense().numpy(), dense_reference(layer).astype(np.float32))


def test_parameters_are_the_engine_memory():
    layer = MotifLinear(20, 12, motif=2, density=0.5, seed=0)
    x = torch.randn(4, 20)
    before = layer(x).detach()
    with torch.no_grad():
        layer.weight.mul_(2.0)          # an optimizer writes in place; the engine sees it
        layer.bias.add_(1.0)
    np.testing.assert_allclose(layer(x).detach().numpy(), 2 * before.numpy() + 1.0, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer._core.weights, layer.weight.detach().numpy())
    assert layer.weight.data_ptr() == layer._core.weights_view().ctypes.data


def test_reassigned_parameter_is_adopted():
    layer = MotifLinear(10, 6, density=0.5, seed=0)
    new = torch.randn(layer.n_blocks)
    layer.weight.data = new.clone()          # e.g. torch.nn.utils.vector_to_parameters
    x = torch.randn(3, 10)
    y = layer(x)
    np.testing.assert_array_equal(layer._core.weights, new.numpy())
    np.testing.assert_allclose(y.detach().numpy(), x.numpy() @ dense_reference(layer).T.astype(np.float32)
                               + layer.bias.detach().numpy(), rtol=1e-5, atol=1e-5)
    assert layer.weight.data_ptr() == layer._core.weights_view().ctypes.data


def test_no_bias_no_grad_and_layer_used_twice():
    layer = MotifLinear(8, 8, motif=2, density=0.5, bias=False, seed=2)
    assert layer.bias is None and [n for n, _ in layer.named_parameters()] == ["weight"]
    x = torch.randn(5, 8, requires_grad=True)
    with torch.no_grad():
        y0 = layer(x)
    assert not y0.requires_grad
    # the same layer twice in one graph: the engine keeps one forward, the first backward recomputes
    y = layer(torch.tanh(layer(x)))
    y.sum().backward()
    W = torch.tensor(dense_reference(layer), dtype=torch.float64, requires_grad=True)
    xr = x.detach().double().requires_grad_(True)
    (torch.tanh(xr @ W.T) @ W.T).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xr.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.weight.grad.numpy(), block_sums(layer, W.grad.numpy()), rtol=1e-4, atol=1e-4)


def test_results_do_not_depend_on_thread_count():
    outs = []
    for nt in (1, 2, 3):
        layer = MotifLinear(300, 200, motif=2, density=0.2, seed=5, num_threads=nt)
        x = torch.randn(64, 300, generator=torch.Generator().manual_seed(0), requires_grad=True)
        y = layer(x)
        (y ** 2).sum().backward()
        outs.append((y.detach(), x.grad, layer.weight.grad, layer.bias.grad))
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            assert torch.equal(a, b)


def test_state_dict_round_trip_with_pattern():
    torch.manual_seed(0)
    a = MotifLinear(30, 20, motif=2, density=0.3, seed=1)
    opt = torch.optim.SGD(a.parameters(), lr=0.1, momentum=0.9)
    s = SET(a, opt, zeta=0.3, interval=1, seed=4)
    x = torch.randn(8, 30)
    a(x).sum().backward()
    opt.step()
    s.step()                                   # the pattern differs from a fresh layer's
    sd = a.state_dict()
    assert set(sd) == {"weight", "bias", "indptr", "indices"}
    b = MotifLinear(30, 20, motif=2, density=0.1, seed=9)     # another pattern and block count
    b.load_state_dict(sd)
    assert b.n_blocks == a.n_blocks
    np.testing.assert_array_equal(b.indices, a.indices)
    assert torch.equal(b(x), a(x))
    # state_dict holds copies: a later pattern change does not touch them
    w0 = sd["weight"].clone()
    s.update()
    assert torch.equal(sd["weight"], w0)
    # torch.save / torch.load of the state_dict and of the module; deepcopy
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    buf.seek(0)
    c = MotifLinear(30, 20, motif=2, density=0.5)
    c.load_state_dict(torch.load(buf))
    assert torch.equal(c(x), a(x))
    buf = io.BytesIO()
    torch.save(a, buf)
    buf.seek(0)
    d = torch.load(buf, weights_only=False)
    assert torch.equal(d(x), a(x))
    e = copy.deepcopy(a)
    assert torch.equal(e(x), a(x))
    with torch.no_grad():
        e.weight.zero_()
    assert not torch.equal(e(x), a(x))        # the copy has its own engine memory


def test_load_state_dict_errors():
    a = MotifLinear(10, 6, seed=0)
    sd = a.state_dict()
    sd["indices"] = sd["indices"] + 100
    with pytest.raises(RuntimeError, match="block pattern"):
        MotifLinear(10, 6).load_state_dict(sd)
    with pytest.raises(RuntimeError, match="indptr"):
        MotifLinear(10, 6).load_state_dict({"weight": a.weight.detach(), "bias": a.bias.detach()})


def test_clear_errors():
    layer = MotifLinear(6, 4, density=0.5)
    with pytest.raises(TypeError, match="float32"):
        layer(torch.randn(3, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(\*, 6\)"):
        layer(torch.randn(3, 5))
    with pytest.raises(TypeError, match="CPU"):
        layer(torch.randn(3, 6, device="meta"))            # stands in for a GPU tensor
    with pytest.raises(TypeError, match="dense"):
        layer(torch.randn(3, 6).to_sparse())
    with pytest.raises(TypeError, match="float32"):
        layer(torch.ones(3, 6, dtype=torch.int64))
    with pytest.raises(ValueError, match="NaN"):
        layer(torch.full((2, 6), float("nan")))
    layer.double()
    with pytest.raises(TypeError, match="float32 CPU"):
        layer(torch.randn(3, 6))
    with pytest.raises(ValueError, match="motif"):
        MotifLinear(6, 4, motif=0)
    with pytest.raises(ValueError, match="density"):
        MotifLinear(6, 4, density=0.0)


def test_pattern_change_between_forward_and_backward_is_refused():
    layer = MotifLinear(20, 10, density=0.5, seed=0)
    y = layer(torch.randn(4, 20))
    SET(layer, None, zeta=0.3, interval=1).update()
    with pytest.raises(RuntimeError, match="changed between its forward and its backward"):
        y.sum().backward()


def test_empty_batch():
    layer = MotifLinear(6, 4, density=0.5)
    x = torch.zeros(0, 6, requires_grad=True)
    y = layer(x)
    assert y.shape == (0, 4)
    y.sum().backward()
    assert x.grad.shape == (0, 6) and torch.equal(layer.weight.grad, torch.zeros(layer.n_blocks))


def test_from_linear_keeps_largest_blocks():
    torch.manual_seed(0)
    lin = torch.nn.Linear(12, 8)
    exact = from_linear(lin, motif=1, density=1.0)
    assert torch.equal(exact.to_dense(), lin.weight.detach())
    assert torch.equal(exact.bias.detach(), lin.bias.detach())
    m = from_linear(lin, motif=2, density=0.5)
    W = lin.weight.detach().double().numpy()
    mag = np.abs(W).reshape(4, 2, 6, 2).mean(axis=(1, 3))
    mean = W.reshape(4, 2, 6, 2).mean(axis=(1, 3))
    keep = np.zeros(24, bool)
    keep[np.argsort(-mag.ravel(), kind="stable")[:12]] = True
    np.testing.assert_array_equal(np.sort(m.positions), np.flatnonzero(keep))
    np.testing.assert_allclose(m.weight.detach().numpy(), mean.ravel()[keep], rtol=1e-6)
    assert "motif=2" in repr(m) and "blocks=12" in repr(m)


def test_mlp_round_trip_bit_for_bit():
    model = motifcore.MotifMLP([20, 16, 12, 3], motif=2, density=0.4, seed=3, num_threads=1)
    X = np.random.default_rng(0).normal(size=(64, 20)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 3, 64)
    model.train_step(X, y, lr=0.05)
    net = from_mlp(model)
    assert [type(m).__name__ for m in net] == ["MotifLinear"] * 3
    np.testing.assert_allclose(net(torch.from_numpy(X)).detach().numpy(), model.decision_function(X), rtol=1e-5,
                               atol=1e-6)
    # train in torch, come back, and the arrays are the module's bit for bit
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.from_numpy(X)), torch.from_numpy(y)).backward()
        opt.step()
    back = to_mlp(net)
    for layer, mod in zip(back.layers, net):
        np.testing.assert_array_equal(layer.weights, mod.weight.detach().numpy())
        np.testing.assert_array_equal(layer.bias, mod.bias.detach().numpy())
        np.testing.assert_array_equal(layer.indices, mod.indices)
        np.testing.assert_array_equal(layer.indptr, mod.indptr)
        assert layer.motif == mod.motif
    np.testing.assert_allclose(back.decision_function(X), net(torch.from_numpy(X)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    again = from_mlp(back)
    for a, b in zip(again, net):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


@pytest.mark.parametrize("bias", ["neuron", "motif"])
def test_from_mlp_trains_and_comes_back_with_from_torch(bias):
    """from_mlp(model) -> train in torch (Adam, SET) -> MotifMLP.from_torch: the model
    holds the module's patterns, weights and biases bit for bit."""
    model = motifcore.MotifMLP([20, 15, 12, 3], motif=[2, (2, 3), 1], density=0.4, bias=bias, seed=3, num_threads=1)
    net = from_mlp(model)
    assert [type(m) for m in net] == [MotifLinear] * 3
    assert [m.activation for m in net] == ["relu", "relu", "linear"] and net[0].bias_mode == bias
    X = np.random.default_rng(0).normal(size=(32, 20)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 3, 32)
    np.testing.assert_allclose(net(torch.from_numpy(X)).detach().numpy(), model.decision_function(X), rtol=1e-5,
                               atol=1e-6)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    evo = SET(net, opt, zeta=0.3, interval=2, seed=1)
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.from_numpy(X)), torch.from_numpy(y)).backward()
        opt.step()
        evo.step()
    back = motifcore.MotifMLP.from_torch(net, num_threads=1)
    for layer, mod, old in zip(back.layers, net, model.layers):
        np.testing.assert_array_equal(layer.weights, mod.weight.detach().numpy())
        np.testing.assert_array_equal(layer.bias, mod.bias.detach().numpy())
        np.testing.assert_array_equal(layer.indptr, mod.indptr)
        np.testing.assert_array_equal(layer.indices, mod.indices)
        assert layer.motif == mod.motif == old.motif and layer.bias_mode == bias
    assert len(evo.history) == 2 and not np.array_equal(back.layers[0].indices, model.layers[0].indices)
    np.testing.assert_allclose(back.decision_function(X), net(torch.from_numpy(X)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(TypeError, match="Tanh"):
        motifcore.MotifMLP.from_torch(torch.nn.Sequential(net[0], torch.nn.Tanh(), net[2]))


def test_torch_training_matches_engine_train_step():
    """The same SGD steps through torch (MotifLinear + cross_entropy + torch.optim.SGD) and
    through the engine's fused train_step give the same weights (float tolerance)."""
    model = motifcore.MotifMLP([30, 24, 5], motif=2, density=0.5, seed=0, num_threads=1)
    net = from_mlp(model)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    for _ in range(5):
        X = rng.normal(size=(32, 30)).astype(np.float32)
        y = rng.integers(0, 5, 32)
        model.train_step(X, y, lr=0.05, momentum=0.9, weight_decay=5e-4)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.from_numpy(X)), torch.from_numpy(y)).backward()
        opt.step()
    for layer, mod in zip(model.layers, net):
        np.testing.assert_allclose(mod.weight.detach().numpy(), layer.weights, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(mod.bias.detach().numpy(), layer.bias, rtol=1e-4, atol=1e-5)


def test_optimizers_schedulers_clipping_work():
    torch.manual_seed(0)
    net = torch.nn.Sequential(MotifLinear(10, 16, motif=2, density=0.5, activation="relu"), MotifLinear(16, 3))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    X, y = torch.randn(40, 10), torch.randint(0, 3, (40,))
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(X), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    sched.step()
    assert losses[-1] < losses[0]


def _compile_pair():
    """Two copies of one model (motif layers with a residual motif, a fused ReLU, a layer used
    twice, torch layers between) for an eager / compiled comparison."""
    def build():
        torch.manual_seed(0)
        return torch.nn.ModuleDict({
            "a": MotifLinear(10, 15, motif=2, density=0.5, activation="relu", seed=1),
            "norm": torch.nn.LayerNorm(15),
            "b": MotifLinear(15, 15, motif=(2, 3), density=0.6, seed=2),
            "c": MotifLinear(15, 4, density=0.7, bias=False, seed=3),
        })
    return build(), build()


def _run(m, x):
    h = m["norm"](m["a"](x))
    h = torch.tanh(m["b"](h)) + m["b"](h * 0.5)        # "b" used twice in the graph
    return m["c"](h)


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph_matches_eager(backend):
    """torch.compile(fullgraph=True) traces MotifLinear as custom ops (no graph break): forward,
    input gradient, parameter gradients and optimizer steps (with a SET update in between, which
    re-points the parameters) equal the eager run's, and the parameters stay the engine's memory."""
    from motifcore.torch import SET

    torch._dynamo.reset()
    eager, comp = _compile_pair()
    compiled = torch.compile(lambda x: _run(comp, x), backend=backend, fullgraph=True)
    runs = []
    for model, fn in ((eager, lambda x: _run(eager, x)), (comp, compiled)):
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        evo = SET(model, opt, zeta=0.3, interval=2, seed=4)
        gen = torch.Generator().manual_seed(0)
        outs = []
        for _ in range(4):
            x = torch.randn(3, 2, 10, generator=gen, requires_grad=True)        # several leading dims
            opt.zero_grad()
            y = fn(x)
            (y ** 2).mean().backward()
            outs.append((y.detach(), x.grad, [p.grad.clone() for p in model.parameters()]))
            opt.step()
            evo.step()
        runs.append((outs, [p.detach().clone() for p in model.parameters()]))
        assert len(evo.history) == 2
    exact = backend == "aot_eager"      # inductor fuses the torch ops around the layers (float rounding)
    close = (lambda a, b: torch.equal(a, b)) if exact else (lambda a, b: torch.allclose(a, b, rtol=1e-4, atol=1e-5))
    (eo, ep), (co, cp) = runs
    for (ye, gxe, gpe), (yc, gxc, gpc) in zip(eo, co):
        assert yc.shape == (3, 2, 4) and close(ye, yc) and close(gxe, gxc)
        assert all(close(a, b) for a, b in zip(gpe, gpc))
    assert all(close(a, b) for a, b in zip(ep, cp))
    for name in "abc":
        layer = comp[name]
        assert layer.weight.data_ptr() == layer._engine_pointer()               # zero copy after the steps
        assert layer.pattern_version == eager[name].pattern_version == 2
        np.testing.assert_array_equal(layer.indices, eager[name].indices)


@pytest.mark.parametrize("method", ["dsr", "rigl"])
def test_torch_compile_follows_dsr_and_rigl(method):
    """DSR changes the weights' sizes (the compiled model recompiles), RigL reads the engine's
    panels of the compiled pass: the compiled run keeps computing what the eager one does (same
    patterns, bitwise the same parameters)."""
    from motifcore.torch import DSR, RigL

    runs = []
    for compiled in (False, True):
        torch._dynamo.reset()
        torch.manual_seed(0)
        net = torch.nn.Sequential(MotifLinear(30, 40, motif=2, density=0.3, activation="relu", seed=1),
                                  MotifLinear(40, 4, density=0.5, seed=2))
        fn = torch.compile(net, backend="aot_eager", fullgraph=True) if compiled else net
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        if method == "dsr":
            dsr = DSR(net, opt, total_steps=30, threshold=0.05, periods=(5,), starts=(0.0,))
        else:
            dsr = RigL(net, opt, total_steps=30, alpha=0.4, interval=5)
        gen = torch.Generator().manual_seed(0)
        counts = []
        for _ in range(30):
            X, y = torch.randn(32, 30, generator=gen), torch.randint(0, 4, (32,), generator=gen)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(fn(X), y).backward()
            opt.step()
            dsr.step()
            counts.append(tuple(int(m.positions.sum()) for m in net) + tuple(m.n_blocks for m in net))
        runs.append((counts, [p.detach().clone() for p in net.parameters()]))
        assert len(dsr.history) >= 4
    (ce, pe), (cc, pc) = runs
    assert ce == cc and len(set(ce)) > 2
    assert all(torch.equal(a, b) for a, b in zip(pe, pc))


def test_torch_compile_has_no_graph_break_and_checks_inputs():
    torch._dynamo.reset()
    layer = MotifLinear(6, 4, density=0.5, seed=0)
    explain = torch._dynamo.explain(layer)(torch.randn(2, 6))
    assert explain.graph_break_count == 0 and explain.graph_count == 1
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    with pytest.raises(TypeError, match="float32"):
        compiled(torch.randn(2, 6, dtype=torch.float64))
    with torch.no_grad():                                                         # inference: no backward graph
        assert torch.equal(compiled(torch.ones(3, 6)), layer(torch.ones(3, 6)))


def test_pattern_changed_behind_the_module_is_followed_not_read_after_free():
    layer = MotifLinear(30, 20, density=0.3, seed=0)
    layer._core.keep_where(np.ones(layer.n_blocks, np.uint8))      # a no-op compaction: same memory
    layer._core.prune_smallest(5)
    layer._core.grow_random(40, 1, "he")                           # grows past the old capacity
    x = torch.randn(3, 30)
    with pytest.warns(RuntimeWarning, match="outside its DST objects"):
        y = layer(x)
    assert layer.weight.shape == (layer.n_blocks,)
    np.testing.assert_array_equal(layer.weight.detach().numpy(), layer._core.weights)
    np.testing.assert_allclose(y.detach().numpy(), x.numpy() @ dense_reference(layer).T.astype(np.float32)
                               + layer.bias.detach().numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("how", ["pruned", "loaded"])
def test_a_layer_without_blocks_computes_its_bias_and_warns_nothing(how):
    """An empty pattern (every block pruned by a pattern change, as the DST objects make it, or an
    empty pattern loaded) gives an empty weight tensor, whose data_ptr() is 0, while the engine's K
    may keep its memory: that is not a pattern changed behind the module."""
    layer = MotifLinear(6, 4, density=0.5, seed=0)
    if how == "pruned":
        with torch.no_grad():
            layer.bias.copy_(torch.arange(4.0))
        with layer._pattern_change():
            layer._core.prune_smallest(layer.n_blocks)
    else:
        state = layer.state_dict()
        state.update(indptr=torch.zeros(5, dtype=torch.int64), indices=torch.zeros(0, dtype=torch.int64),
                     weight=torch.zeros(0), bias=torch.arange(4.0))
        layer.load_state_dict(state)
    assert layer.n_blocks == 0 and layer.weight.shape == (0,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            y = layer(torch.ones(3, 6))
            y.sum().backward()
    torch.testing.assert_close(y.detach(), torch.arange(4.0).expand(3, 4))
    assert layer.weight.grad.shape == (0,)
    torch.testing.assert_close(layer.bias.grad, torch.full((4,), 6.0))


def test_double_backward_is_refused():
    layer = MotifLinear(6, 4, density=0.5)
    x = torch.randn(2, 6, requires_grad=True)
    (g,) = torch.autograd.grad(layer(x).pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|twice"):
        g.sum().backward()


# ---- gradients written by the engine straight into torch tensors (Layer.backward_into) ----------

@pytest.mark.parametrize("motif, density, bias_mode, need_x", [
    (1, 0.3, "neuron", True),
    (2, 0.5, "motif", False),
    (3, 1.0, "neuron", True),      # every block active: the dense (GEMM) path
])
def test_backward_into_equals_the_layers_own_gradients(motif, density, bias_mode, need_x):
    core = motifcore._core.Layer(17, 11, motif, motif, density, 0.0, bias_mode, "relu", 4)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 17), dtype=np.float32)
    g = rng.standard_normal((6, 11), dtype=np.float32)
    core.forward(x, 1)
    gin_ref = core.backward(g, 1, need_x)
    gw_ref, gb_ref = core.grad_weights, core.grad_bias
    core.forward(x, 2)
    gw = np.full(core.n_blocks, np.nan, np.float32)
    gb = np.full(core.n_bias, np.nan, np.float32)
    gin = core.backward_into(g, gw, gb, 2, need_x)
    np.testing.assert_array_equal(gw, gw_ref)      # bitwise: the same kernels, another destination
    np.testing.assert_array_equal(gb, gb_ref)
    if need_x:
        np.testing.assert_array_equal(gin, gin_ref)
    else:
        assert gin is None
    # None: into the layer's own gradients, as backward
    core.forward(x, 1)
    core.backward_into(g, None, None, 1, need_x)
    np.testing.assert_array_equal(core.grad_weights, gw_ref)


def test_backward_into_checks_its_buffers():
    core = motifcore._core.Layer(10, 6, 1, 1, 0.5, 0.0, "neuron", "linear", 0)
    x, g = np.ones((3, 10), np.float32), np.ones((3, 6), np.float32)
    core.forward(x, 1)
    nb = core.n_blocks
    with pytest.raises(ValueError, match=f"grad_weights must hold {nb}"):
        core.backward_into(g, np.zeros(nb + 1, np.float32), None, 1, True)
    with pytest.raises(ValueError, match="grad_bias must hold 6"):
        core.backward_into(g, None, np.zeros(5, np.float32), 1, True)
    with pytest.raises(TypeError, match="float32"):
        core.backward_into(g, np.zeros(nb, np.float64), None, 1, True)
    ro = np.zeros(nb, np.float32)
    ro.setflags(write=False)
    with pytest.raises(TypeError, match="writable"):
        core.backward_into(g, ro, None, 1, True)
    with pytest.raises(TypeError, match="NumPy array or None"):
        core.backward_into(g, [0.0] * nb, None, 1, True)
    # a buffer sharing memory with the parameters would be overwritten before the input gradient
    # reads the weights: refused, and the parameters are unchanged
    w0 = core.weights.copy()
    with pytest.raises(ValueError, match="grad_weights overlaps the layer's weights"):
        core.backward_into(g, core.weights_view(), None, 1, True)
    with pytest.raises(ValueError, match="grad_bias overlaps"):
        core.backward_into(g, None, core.bias_view(), 1, True)
    both = np.zeros(nb + 6, np.float32)
    with pytest.raises(ValueError, match="grad_weights and grad_bias overlap"):
        core.backward_into(g, both[:nb], both[nb - 1:nb + 5], 1, True)
    np.testing.assert_array_equal(core.weights, w0)
    core.backward_into(g, both[:nb], both[nb:], 1, True)          # adjacent, not overlapping: fine


def test_gradients_accumulate_over_backward_calls():
    torch.manual_seed(0)
    layer = MotifLinear(12, 7, motif=2, density=0.5, seed=1, activation="relu")
    x1, x2 = torch.randn(5, 12), torch.randn(3, 2, 12)
    layer(x1).pow(2).sum().backward()
    g1w, g1b = layer.weight.grad.clone(), layer.bias.grad.clone()
    layer.zero_grad(set_to_none=True)
    layer(x2).sum().backward()
    g2w, g2b = layer.weight.grad.clone(), layer.bias.grad.clone()
    # torch's rule: a second backward adds to .grad; a zeroed (not None) .grad is added to as well
    layer.zero_grad(set_to_none=False)
    layer(x1).pow(2).sum().backward()
    layer(x2).sum().backward()
    assert torch.equal(layer.weight.grad, g1w + g2w) and torch.equal(layer.bias.grad, g1b + g2b)
    # both outputs in one graph: autograd sums the two gradients of the parameter
    layer.zero_grad(set_to_none=True)
    (layer(x1).pow(2).sum() + layer(x2).sum()).backward()
    np.testing.assert_allclose(layer.weight.grad.numpy(), (g1w + g2w).numpy(), rtol=1e-6, atol=1e-6)


def test_gradients_are_new_tensors_and_reach_the_hooks():
    torch.manual_seed(0)
    layer = MotifLinear(9, 6, density=0.6, seed=2)
    seen = []
    layer.weight.register_hook(lambda g: seen.append(("hook", g.clone())))
    layer.weight.register_post_accumulate_grad_hook(lambda p: seen.append(("post", p.grad.clone())))
    x = torch.randn(4, 9)
    layer(x).sum().backward()
    first = layer.weight.grad
    snapshot = first.clone()
    assert [k for k, _ in seen] == ["hook", "post"] and torch.equal(seen[0][1], snapshot)
    layer.zero_grad(set_to_none=True)
    layer(2 * x).pow(2).sum().backward()        # another backward writes a new tensor, not the old one
    assert torch.equal(first, snapshot) and not torch.equal(layer.weight.grad, snapshot)
    assert first.data_ptr() != layer.weight.data_ptr()
    W = torch.tensor(dense_reference(layer), requires_grad=True)
    ((2 * x.double()) @ W.T + layer.bias.detach().double()).pow(2).sum().backward()
    np.testing.assert_allclose(layer.weight.grad.numpy(), block_sums(layer, W.grad.numpy()), rtol=1e-5, atol=1e-4)


def test_reassigned_parameter_gets_its_gradient():
    layer = MotifLinear(10, 6, density=0.5, seed=0)
    layer.weight.data = torch.randn(layer.n_blocks)      # adopted on the next call
    x = torch.randn(3, 10)
    layer(x).sum().backward()
    W = torch.tensor(dense_reference(layer), requires_grad=True)
    (x.double() @ W.T).sum().backward()
    np.testing.assert_allclose(layer.weight.grad.numpy(), block_sums(layer, W.grad.numpy()), rtol=1e-5, atol=1e-5)
    layer.weight.data = torch.randn(layer.n_blocks + 1)  # a wrong shape stays a clear error
    with pytest.raises(ValueError, match="one value per active block"):
        layer(x)


def test_gradients_are_float32_whatever_the_default_dtype():
    # torch.empty / torch.zeros without a dtype would follow torch's default dtype, which the
    # engine cannot write into; the gradients must be float32 like the parameters
    layer = MotifLinear(6, 4, density=0.5, seed=0)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for n in (3, 0):                          # a batch, and the empty batch
            layer.zero_grad(set_to_none=True)
            x = torch.randn(n, 6, dtype=torch.float32, requires_grad=True)
            layer(x).sum().backward()
            assert layer.weight.grad.dtype == torch.float32 and layer.bias.grad.dtype == torch.float32
            assert x.grad.dtype == torch.float32 and x.grad.shape == (n, 6)
    finally:
        torch.set_default_dtype(old)


def test_functional_call_is_refused_and_leaves_the_layer_intact():
    """torch.func.functional_call puts plain tensors in place of the parameters for one call: the
    engine cannot compute with them (it holds one copy of the weights), so the call is refused,
    and the layer's own parameters keep their values and memory (they used to end up viewing freed
    memory)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(MotifLinear(8, 12, density=0.5, activation="relu"), MotifLinear(12, 4, density=0.7))
    x = torch.randn(6, 8)
    before = [p.detach().clone() for p in model.parameters()]
    y = model(x).detach()
    params = {k: v.detach().clone() * 1.5 for k, v in model.named_parameters()}
    with pytest.raises(TypeError, match="functional_call"):
        torch.func.functional_call(model, params, (x,))
    for p, q in zip(model.parameters(), before):
        assert torch.equal(p, q)
    assert torch.equal(model(x), y)


def test_views_of_the_weights_survive_values_set_from_outside():
    """Pointing a parameter elsewhere (weight.data = t) copies its values into the engine in place:
    any earlier view of the weights (an optimizer's, a user's) sees them, no view dangles."""
    layer = MotifLinear(10, 6, density=0.6, seed=0)
    view = layer._core.weights_view()
    new = torch.randn(layer.n_blocks)
    with torch.no_grad():
        layer.weight.data = new.clone()
    layer(torch.randn(2, 10))            # the next call adopts the values
    assert torch.equal(torch.from_numpy(view), new)
    assert torch.equal(layer.weight.detach(), new)
