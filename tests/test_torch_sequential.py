"""motifcore.torch.MotifSequential: runs of consecutive MotifLinear layers in one engine call per
direction give what ``nn.Sequential`` of the same layers gives, bit for bit -- outputs, input
gradients, parameter gradients, and the updates optimizers make (in ``step()`` or inside the
backward) -- and the run is cut wherever a module call could see or change what happens between
layers (hooks, a layer listed twice, other modules)."""

from __future__ import annotations

import copy
import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from motifcore import MotifMLP  # noqa: E402
from motifcore.torch import SET, AdamWInBackward, MotifLinear, MotifSequential, SGDInBackward, from_mlp  # noqa: E402
from motifcore.torch import sequential as seqmod  # noqa: E402

# (n_in, n_out, motif, density, activation, bias, bias_mode); consecutive widths match
SPECS = {
    "m1": [(13, 21, 1, 0.5, "relu", True, "neuron"), (21, 17, 1, 0.4, "relu", True, "neuron"),
           (17, 5, 1, 0.7, "linear", True, "neuron")],
    "motifs": [(14, 20, 2, 0.5, "relu", True, "motif"), (20, 15, 2, 0.6, "relu", False, "neuron"),
               (15, 4, (2, 3), 0.8, "linear", True, "motif")],
    # the next layer's gradient panel holds one row per input group of its own (m_out 3, then m_in 2)
    # dense layers (every block active: the engine's GEMM path) inside a run
    "dense": [(12, 16, 1, 1.0, "relu", True, "neuron"), (16, 8, 2, 0.5, "relu", True, "neuron"),
              (8, 4, 1, 1.0, "linear", True, "neuron")],
    "mixed": [(10, 18, 3, 0.6, "relu", True, "neuron"), (18, 9, (1, 2), 0.5, "relu", True, "neuron"),
              (9, 6, (2, 4), 0.9, "linear", False, "neuron")],
}


def _layers(specs, threads=2, seed=0):
    torch.manual_seed(seed)
    return [MotifLinear(s[0], s[1], motif=s[2], density=s[3], activation=s[4], bias=s[5], bias_mode=s[6],
                        num_threads=threads) for s in specs]


def _pair(specs, threads=2, seed=0):
    """The same layers (copies) in an nn.Sequential and in a MotifSequential."""
    layers = _layers(specs, threads, seed)
    return torch.nn.Sequential(*layers), MotifSequential(*copy.deepcopy(layers))


def _pass(model, x, g):
    """Output, input gradient and parameter gradients of one forward and backward."""
    model.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    y = model(x)
    y.backward(g)
    return y.detach(), x.grad, [None if p.grad is None else p.grad.clone() for p in model.parameters()]


def _assert_same(a, b):
    ya, gxa, pa = a
    yb, gxb, pb = b
    assert torch.equal(ya, yb)
    assert torch.equal(gxa, gxb)
    assert len(pa) == len(pb)
    for u, v in zip(pa, pb):
        assert (u is None and v is None) or torch.equal(u, v)


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("lead", [(7,), (3, 2)])
def test_matches_nn_sequential_bitwise(name, lead):
    specs = SPECS[name]
    ref, fused = _pair(specs)
    gen = torch.Generator().manual_seed(1)
    for _ in range(2):   # the second pass reuses the arrays of the first (spare_array)
        x = torch.randn(*lead, specs[0][0], generator=gen)
        g = torch.randn(*lead, specs[-1][1], generator=gen)
        _assert_same(_pass(ref, x, g), _pass(fused, x, g))


def test_matches_the_converting_path():
    """Against layers called one by one with a copy between them (no panel handoff at all)."""
    specs = SPECS["mixed"]
    layers = _layers(specs)
    fused = MotifSequential(*copy.deepcopy(layers))
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(6, specs[0][0], generator=gen)
    g = torch.randn(6, specs[-1][1], generator=gen)
    xr = x.clone().requires_grad_(True)
    h = xr
    for m in layers:
        h = m(h).clone()
        h.register_hook(lambda grad: grad.clone())
    h.backward(g)
    y, gx, grads = _pass(fused, x, g)
    assert torch.equal(y, h.detach()) and torch.equal(gx, xr.grad)
    for p, q in zip([p for m in layers for p in m.parameters()], grads):
        assert torch.equal(p.grad, q)


def _train(model, opt_class, steps=3, **kw):
    opt = opt_class(model.parameters(), **kw)
    gen = torch.Generator().manual_seed(3)
    loss_fn = torch.nn.CrossEntropyLoss()
    n_in, n_out = model[0].in_features, model[-1].out_features
    for _ in range(steps):
        x = torch.randn(9, n_in, generator=gen)
        y = torch.randint(0, n_out, (9,), generator=gen)
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("opt_class,kw", [
    (torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3}),
    (torch.optim.Adam, {"lr": 1e-2}),
    (SGDInBackward, {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3}),
    (AdamWInBackward, {"lr": 1e-2, "weight_decay": 1e-2}),
])
def test_training_matches_bitwise(opt_class, kw):
    ref, fused = _pair(SPECS["motifs"])
    for a, b in zip(_train(ref, opt_class, **kw), _train(fused, opt_class, **kw)):
        assert torch.equal(a, b)


def test_other_modules_cut_the_runs(monkeypatch):
    """A ReLU module between layers cuts the run; a run of one layer is an ordinary call."""
    torch.manual_seed(4)
    mods = [MotifLinear(12, 16, density=0.5), torch.nn.ReLU(), MotifLinear(16, 16, density=0.5, activation="relu"),
            MotifLinear(16, 8, density=0.5), torch.nn.Identity(), MotifLinear(8, 3, density=0.5)]
    ref, fused = torch.nn.Sequential(*mods), MotifSequential(*copy.deepcopy(mods))
    calls = []
    apply = seqmod._ChainFunction.apply
    monkeypatch.setattr(seqmod._ChainFunction, "apply", lambda *a: calls.append(len(a[1])) or apply(*a))
    x, g = torch.randn(5, 12), torch.randn(5, 3)
    _assert_same(_pass(ref, x, g), _pass(fused, x, g))
    assert calls == [2]   # layers 2 and 3 only


def test_hooks_and_repeated_layers_run_module_by_module(monkeypatch):
    ref, fused = _pair(SPECS["m1"])
    seen = []
    fused[1].register_forward_hook(lambda mod, inp, out: seen.append(out.detach().clone()))
    calls = []
    apply = seqmod._ChainFunction.apply
    monkeypatch.setattr(seqmod._ChainFunction, "apply", lambda *a: calls.append(len(a[1])) or apply(*a))
    x, g = torch.randn(4, 13), torch.randn(4, 5)
    _assert_same(_pass(ref, x, g), _pass(fused, x, g))
    assert calls == [] and len(seen) == 1
    assert torch.equal(seen[0], ref[1](ref[0](x)).detach())

    # a layer listed twice: the runs end before its second use (gradients of both uses summed)
    torch.manual_seed(5)
    a, b = MotifLinear(8, 8, density=0.6, activation="relu"), MotifLinear(8, 8, density=0.6, activation="relu")
    ref2 = torch.nn.Sequential(a, b, a)
    a2, b2 = copy.deepcopy(a), copy.deepcopy(b)
    fused2 = MotifSequential(a2, b2, a2)
    calls.clear()
    x, g = torch.randn(3, 8), torch.randn(3, 8)
    _assert_same(_pass(ref2, x, g), _pass(fused2, x, g))
    assert calls == [2]


def test_a_second_forward_before_the_backward():
    """retain_graph and a forward in between: the backward redoes its own forward first."""
    ref, fused = _pair(SPECS["motifs"])
    gen = torch.Generator().manual_seed(6)
    x1, x2 = torch.randn(5, 14, generator=gen), torch.randn(5, 14, generator=gen)
    g = torch.randn(5, 4, generator=gen)
    out = []
    for model in (ref, fused):
        model.zero_grad(set_to_none=True)
        y1 = model(x1)
        model(x2)
        y1.backward(g)
        out.append([p.grad.clone() for p in model.parameters()])
    for u, v in zip(*out):
        assert torch.equal(u, v)


def test_errors_name_the_problem():
    ref, fused = _pair(SPECS["m1"])
    x = torch.randn(4, 13)
    x[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        fused(x)
    with pytest.raises(ValueError, match="shape|13"):
        fused(torch.randn(4, 12))
    # a pattern change between forward and backward is refused, as for one layer
    y = fused(torch.randn(4, 13))
    opt = torch.optim.SGD(fused.parameters(), lr=0.1)
    SET(fused, opt, zeta=0.3, interval=1, seed=0).step()
    with pytest.raises(RuntimeError, match="pattern"):
        y.sum().backward()


def test_empty_batch_and_no_grad():
    ref, fused = _pair(SPECS["mixed"])
    x = torch.randn(0, 10, requires_grad=True)
    assert fused(x).shape == (0, 6)
    with torch.no_grad():
        z = torch.randn(8, 10)
        assert torch.equal(ref(z), fused(z))


def test_results_do_not_depend_on_threads():
    _, one = _pair(SPECS["motifs"], threads=1)
    _, two = _pair(SPECS["motifs"], threads=2)
    gen = torch.Generator().manual_seed(7)
    x, g = torch.randn(33, 14, generator=gen), torch.randn(33, 4, generator=gen)
    _assert_same(_pass(one, x, g), _pass(two, x, g))


def test_set_steps_between_training_steps():
    ref, fused = _pair(SPECS["m1"])
    out = []
    for model in (ref, fused):
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        dst = SET(model, opt, zeta=0.3, interval=1, seed=0)
        gen = torch.Generator().manual_seed(8)
        for _ in range(3):
            x, y = torch.randn(6, 13, generator=gen), torch.randint(0, 5, (6,), generator=gen)
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            dst.step()
        out.append([p.detach().clone() for p in model.parameters()] + [m.indices for m in model])
    for u, v in zip(*out):
        assert np.array_equal(np.asarray(u), np.asarray(v))


def test_two_threads_training_two_models():
    """Two threads, two models: each gets what it gets alone (the engine's shared scratch is
    guarded for the whole chain call)."""
    alone = [_train(_pair(SPECS["m1"], seed=s)[1], SGDInBackward, steps=4, lr=0.05, momentum=0.9) for s in (0, 1)]
    models = [_pair(SPECS["m1"], seed=s)[1] for s in (0, 1)]   # built here: torch's seed is global
    results = [None, None]

    def work(i):
        results[i] = _train(models[i], SGDInBackward, steps=4, lr=0.05, momentum=0.9)

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, results):
        for u, v in zip(a, b):
            assert torch.equal(u, v)


def test_from_mlp_gives_a_motif_sequential_with_the_models_logits():
    model = MotifMLP([12, 16, 9, 4], motif=1, density=0.4, seed=0)
    net = from_mlp(model)
    assert isinstance(net, MotifSequential) and isinstance(net, torch.nn.Sequential)
    assert list(net.state_dict()) == list(torch.nn.Sequential(*net).state_dict())
    x = np.random.default_rng(0).random((5, 12), dtype=np.float32)
    with torch.no_grad():
        assert np.array_equal(net(torch.from_numpy(x)).numpy(), model.decision_function(x))


def test_a_forward_that_fails_part_way():
    """The first layer's forward replaces the engine's last one before the second layer refuses the
    overflowed values: a pending backward still gets its own gradients, as with nn.Sequential."""
    ref, fused = _pair(SPECS["m1"])
    gen = torch.Generator().manual_seed(9)
    x1, g = torch.randn(4, 13, generator=gen), torch.randn(4, 5, generator=gen)
    bad = torch.full((4, 13), 3e38)
    out = []
    messages = []
    for model in (ref, fused):
        model.zero_grad(set_to_none=True)
        y1 = model(x1)
        with pytest.raises(ValueError, match="NaN or infinite") as err:
            model(bad)
        messages.append(str(err.value))
        y1.backward(g)
        out.append([p.grad.clone() for p in model.parameters()])
    assert messages[0] == messages[1]
    for u, v in zip(*out):
        assert torch.equal(u, v)


def test_a_backward_that_fails_part_way_counts_the_updates_made():
    """The last layer's update is made before the layer below refuses its overflowed gradient: the
    optimizer counts it, as with nn.Sequential."""
    ref, fused = _pair(SPECS["m1"])
    states = []
    for model in (ref, fused):
        opt = SGDInBackward(model.parameters(), lr=1e-3)
        with torch.no_grad():
            model[2].weight.fill_(1e30)
        y = model(torch.randn(4, 13, generator=torch.Generator().manual_seed(10)))
        with pytest.raises(ValueError, match="NaN or infinite") as err:
            y.backward(torch.full((4, 5), 1e30))
        states.append(([m._updated for m in model], str(err.value)))
        opt.release()
    assert states[0] == states[1]                    # the same layers updated, the same count in the message
    assert states[0][0] == [False, False, True]


@pytest.mark.parametrize("name", ["m1", "motifs"])
def test_backward_inputs_updates_only_the_layers_whose_nodes_run(name):
    """``backward(inputs=...)`` skips the nodes below what it asks for: the layers there make no
    update inside the backward, as their own nodes would make none ("motifs": a layer without a
    bias in the run)."""
    specs = SPECS[name]
    ref, fused = _pair(specs)
    gen = torch.Generator().manual_seed(11)
    x, g = torch.randn(5, specs[0][0], generator=gen), torch.randn(5, specs[-1][1], generator=gen)
    before = [p.detach().clone() for p in ref.parameters()]
    for model in (ref, fused):
        opt = SGDInBackward(model.parameters(), lr=0.1)
        model(x).backward(g, inputs=list(model[1].parameters()))
        opt.step()
        opt.release()             # the layers go back to plain autograd for the second part
    for a, b in zip(ref.parameters(), fused.parameters()):
        assert torch.equal(a, b)
    changed = [not torch.equal(a, c) for a, c in zip(ref.parameters(), before)]
    assert changed[:2] == [False, False] and all(changed[2:])
    # torch's own optimizers: the gradients asked for, and only those
    for model in (ref, fused):
        model.zero_grad(set_to_none=True)
    grads = []
    for model in (ref, fused):
        xr = x.clone().requires_grad_(True)
        grads.append(torch.autograd.grad(model(xr), [xr, model[2].weight], g))
    assert len(grads[0]) == 2
    for a, b in zip(*grads):
        assert torch.equal(a, b)


def test_an_update_refused_part_way_leaves_the_layers_above_updated():
    ref, fused = _pair(SPECS["m1"])
    gen = torch.Generator().manual_seed(12)
    x, g = torch.randn(5, 13, generator=gen), torch.randn(5, 5, generator=gen)
    before = [p.detach().clone() for p in ref.parameters()]
    for model in (ref, fused):
        model[0].bias.requires_grad_(False)
        opt = SGDInBackward(model.parameters(), lr=0.1)
        with pytest.raises(RuntimeError, match="weight and bias together"):
            model(x).backward(g)
        assert [m._updated for m in model] == [False, True, True]
        del opt
    for a, b in zip(ref.parameters(), fused.parameters()):
        assert torch.equal(a, b)
    assert [not torch.equal(a, c) for a, c in zip(ref.parameters(), before)] == [False, False, True, True, True, True]


def test_a_redo_refuses_weights_changed_since_the_forward():
    """After a step and another forward, the run cannot redo its forward with the old weights."""
    _, fused = _pair(SPECS["m1"])
    opt = torch.optim.SGD(fused.parameters(), lr=0.1)
    x, g = torch.randn(5, 13), torch.randn(5, 5)
    y = fused(x)
    y.backward(g, retain_graph=True)
    opt.step()
    fused(torch.randn(5, 13))
    with pytest.raises(RuntimeError, match="run the forward again"):
        y.backward(g)


def test_forwards_and_set_steps_from_two_threads_finish():
    """MotifSequential and the DST objects take the layers' locks in one order: a forward loop and
    a SET loop on the same model (layers made in another order than the model's) both finish."""
    torch.manual_seed(13)
    c = MotifLinear(10, 4, density=0.7, num_threads=1)
    b = MotifLinear(12, 10, density=0.5, num_threads=1)
    a = MotifLinear(8, 12, density=0.5, num_threads=1)
    model = MotifSequential(a, b, c)
    dst = SET(model, None, zeta=0.1, interval=1)
    x = torch.randn(4, 8)

    def infer():
        for _ in range(300):
            with torch.no_grad():
                model(x)

    def evolve():
        for _ in range(300):
            dst.step()

    threads = [threading.Thread(target=f, daemon=True) for f in (infer, evolve)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert dst.t == 300


def test_a_failed_chain_backward_leaves_no_gradients_to_score():
    """A backward refused on an overflowed gradient panel (after a good one on the same forward)
    leaves the layer without gradients: RigL's scoring refuses instead of ranking NaN scores."""
    from motifcore import _core
    layers = [_core.Layer(12, 10, density=0.6, seed=1, activation="relu"),
              _core.Layer(10, 8, density=0.6, seed=2, activation="relu"), _core.Layer(8, 6, density=0.6, seed=3)]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 12)).astype(np.float32)
    g = rng.standard_normal((5, 6)).astype(np.float32)
    _core.chain_forward(layers, x, [1, 1, 1])
    _core.chain_backward(layers, g, [None] * 3, [None] * 3, [None] * 3, [1, 1, 1], True)
    assert np.all(np.isfinite(layers[1].grad_topk(3)[1]))
    layers[2].set_weights(np.full(layers[2].n_blocks, 1e30, np.float32))
    done = np.zeros(3, np.uint8)
    with pytest.raises(ValueError, match="NaN or infinite"):
        _core.chain_backward(layers, np.full((5, 6), 1e30, np.float32), [None] * 3, [None] * 3, [None] * 3,
                             [1, 1, 1], True, done=done)
    assert done.tolist() == [0, 0, 1]
    with pytest.raises(ValueError):
        layers[1].grad_topk(3)
