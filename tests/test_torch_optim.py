"""motifcore.torch.SGDInBackward / AdamInBackward / AdamWInBackward: torch's optimizers with the
update of each MotifLinear made inside its backward by the engine, checked against the torch
optimizer on the same model (an independent implementation of the same update), across threads,
writes between steps, state dicts and SET."""

from __future__ import annotations

import copy
import io

import pytest

torch = pytest.importorskip("torch")

from motifcore.torch import CHT, DSR, SET, AdamInBackward, AdamWInBackward, MotifLinear, RigL, SGDInBackward  # noqa: E402

# (torch's optimizer, the one that updates inside the backward, settings)
PAIRS = {"sgd": (torch.optim.SGD, SGDInBackward, dict(lr=0.05, momentum=0.9, weight_decay=1e-3)),
         "adam": (torch.optim.Adam, AdamInBackward, dict(lr=0.01, weight_decay=1e-3)),
         "adamw": (torch.optim.AdamW, AdamWInBackward, dict(lr=0.01, weight_decay=0.05))}
KINDS = pytest.mark.parametrize("kind", list(PAIRS))


def make_model(num_threads: int = 1, density: float = 1.0) -> torch.nn.Module:
    """Sparse layers of every kind the update meets: a motif layer with residual motifs and a fused
    ReLU, an edge-level layer on the transposed route, a norm (torch's SGD steps it), a layer
    without a bias (torch's SGD too) and a small output layer."""
    return torch.nn.Sequential(
        MotifLinear(30, 41, motif=2, density=0.4 * density, activation="relu", seed=1, num_threads=num_threads),
        torch.nn.LayerNorm(41),
        MotifLinear(41, 37, density=0.3 * density, activation="relu", seed=2, num_threads=num_threads),
        MotifLinear(37, 29, density=0.3 * density, bias=False, seed=3, num_threads=num_threads),
        torch.nn.ReLU(),
        MotifLinear(29, 5, density=0.6 * density, seed=4, num_threads=num_threads))


def batches(n: int, size: int = 24):
    gen = torch.Generator().manual_seed(5)
    return [(torch.randn(size, 30, generator=gen), torch.randint(0, 5, (size,), generator=gen)) for _ in range(n)]


def train(model, opt, data, between=None, sched=None):
    for i, (x, y) in enumerate(data):
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if sched is not None:
            sched.step()
        if between is not None:
            between(i, model)


def assert_close(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa.detach(), pb.detach(), rtol=2e-5, atol=2e-6,
                                   msg=lambda m, name=name: f"{name}: {m}")


@KINDS
def test_the_update_inside_the_backward_is_torchs(kind):
    torch_opt, in_backward, settings = PAIRS[kind]
    ref, model = make_model(), make_model()
    opt_ref = torch_opt(ref.parameters(), **settings)
    opt = in_backward(model.parameters(), **settings)
    sched_ref = torch.optim.lr_scheduler.StepLR(opt_ref, step_size=3, gamma=0.3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.3)
    data = batches(8)
    start = [p.detach().clone() for p in model.parameters()]
    train(ref, opt_ref, data, sched=sched_ref)
    train(model, opt, data, sched=sched)
    assert_close(ref, model)
    assert all(not torch.equal(p0, p.detach()) for p0, p in zip(start, model.parameters()))
    held = {id(p) for m in (model[0], model[2], model[5]) for p in (m.weight, m.bias)}
    for p in model.parameters():       # made inside the backward: no .grad; the rest as torch's SGD
        assert (p.grad is None) == (id(p) in held)


@KINDS
def test_results_do_not_depend_on_the_thread_count(kind):
    _, in_backward, settings = PAIRS[kind]
    runs = []
    for nt in (1, 2):
        model = make_model(nt)
        train(model, in_backward(model.parameters(), **settings), batches(5))
        runs.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*runs):
        assert torch.equal(a, b)


@KINDS
def test_writes_through_torch_between_steps_are_seen(kind):
    """The engine keeps a transposed copy of the weights between such steps; a write through torch
    (an in-place op, a copy, an init function) must reach both the forward and the backward."""
    def between(i, model):
        with torch.no_grad():
            if i == 1:
                model[2].weight.mul_(0.5)
            elif i == 3:
                torch.nn.init.uniform_(model[0].weight, -0.2, 0.2, generator=torch.Generator().manual_seed(9))
            elif i == 4:
                model[2].weight.copy_(model[2].weight.flip(0))

    torch_opt, in_backward, settings = PAIRS[kind]
    ref, model = make_model(), make_model()
    train(ref, torch_opt(ref.parameters(), **settings), batches(7), between)
    train(model, in_backward(model.parameters(), **settings), batches(7), between)
    assert_close(ref, model)


def halves(kind: str):
    """Six batches, a model trained on all of them, and a model with its optimizer trained on the
    first three (to be resumed)."""
    _, in_backward, settings = PAIRS[kind]
    data = batches(6)
    whole = make_model()
    train(whole, in_backward(whole.parameters(), **settings), data)
    first = make_model()
    opt = in_backward(first.parameters(), **settings)
    train(first, opt, data[:3])
    return data, whole, first, opt


@KINDS
def test_state_dict_resumes_the_run_and_moves_to_the_torch_optimizer(kind):
    torch_opt, in_backward, settings = PAIRS[kind]
    data, whole, first, opt = halves(kind)
    buf = io.BytesIO()
    torch.save({"model": first.state_dict(), "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf)
    keys = {"momentum_buffer"} if kind == "sgd" else {"step", "exp_avg", "exp_avg_sq"}
    assert all(set(s) == keys for s in saved["opt"]["state"].values())
    assert len(saved["opt"]["state"]) == len(list(first.parameters()))

    resumed = make_model()
    resumed.load_state_dict(saved["model"])
    opt2 = in_backward(resumed.parameters(), **settings)
    opt2.load_state_dict(copy.deepcopy(saved["opt"]))     # (torch's SGD steps loaded buffers in place)
    train(resumed, opt2, data[3:])
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert torch.equal(a.detach(), b.detach())

    plain = make_model()                       # the same state dict drives torch's own optimizer
    plain.load_state_dict(saved["model"])
    opt3 = torch_opt(plain.parameters(), **settings)
    opt3.load_state_dict(copy.deepcopy(saved["opt"]))
    train(plain, opt3, data[3:])
    assert_close(plain, whole)


DST = {"set": lambda m, o: SET(m, o, zeta=0.3, interval=2, seed=3),
       "rigl": lambda m, o: RigL(m, o, total_steps=7, alpha=0.3, interval=2, seed=3),
       "dsr": lambda m, o: DSR(m, o, total_steps=7, threshold=0.05, periods=(2,), starts=(0.0,), seed=3),
       "cht": lambda m, o: CHT(m, o, zeta=0.3, interval=2, seed=3, restore=True)}


@KINDS
@pytest.mark.parametrize("method", list(DST))
def test_dst_moves_the_state_with_the_blocks(kind, method):
    """SET / RigL / DSR / CHT between steps: the engine's optimizer state follows the blocks as
    remap_optimizer_state moves torch's (kept blocks keep theirs, regrown ones start at zero; DSR
    moves blocks between layers, so the parameters change size)."""
    torch_opt, in_backward, settings = PAIRS[kind]
    ref, model = make_model(), make_model()
    opt_ref = torch_opt(ref.parameters(), **settings)
    opt = in_backward(model.parameters(), **settings)
    set_ref, set_new = DST[method](ref, opt_ref), DST[method](model, opt)
    train(ref, opt_ref, batches(7), lambda i, m: set_ref.step())
    train(model, opt, batches(7), lambda i, m: set_new.step())
    assert len(set_new.history) >= 2 and set_new.history == set_ref.history
    for a, b in zip((ref[0], ref[2], ref[5]), (model[0], model[2], model[5])):
        assert (a.positions == b.positions).all()
    assert_close(ref, model)


def test_misuse_is_a_clear_error():
    model = make_model()
    opt = SGDInBackward(model.parameters(), **PAIRS["sgd"][2])
    x, y = batches(1)[0]
    torch.nn.functional.cross_entropy(model(x), y).backward()
    with pytest.raises(RuntimeError, match="second backward"):
        torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    torch.nn.functional.cross_entropy(model(x), y).backward()     # fine again after step()
    opt.step()

    layer = MotifLinear(8, 6, density=0.5, seed=0)
    only_weight = SGDInBackward([layer.weight], lr=0.1)       # not both: torch's SGD steps the layer
    layer(torch.randn(4, 8)).sum().backward()
    assert layer.weight.grad is not None and layer.bias.grad is not None
    only_weight.step()
    with pytest.raises(ValueError, match="nesterov"):
        SGDInBackward(layer.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    with pytest.raises(ValueError, match="dampening"):
        SGDInBackward(layer.parameters(), lr=0.1, momentum=0.9, dampening=0.1)
    first = SGDInBackward(layer.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="another optimizer"):
        AdamInBackward(layer.parameters(), lr=0.1)
    other = MotifLinear(8, 6, density=0.5, seed=0)
    with pytest.raises(ValueError, match="amsgrad"):
        AdamInBackward(other.parameters(), amsgrad=True)
    del first                                  # a layer whose optimizer is gone can be taken again
    SGDInBackward(layer.parameters(), lr=0.1)

    layer = MotifLinear(8, 6, density=0.5, seed=0)
    opt = SGDInBackward(layer.parameters(), lr=0.1)
    layer.bias.requires_grad_(False)
    with pytest.raises(RuntimeError, match="both must require"):
        layer(torch.randn(4, 8)).sum().backward()

    layer = MotifLinear(8, 6, density=0.5, seed=0)
    opt = SGDInBackward(layer.parameters(), lr=0.1)
    layer.weight.grad = torch.zeros_like(layer.weight)        # one gradient set by hand, not the other
    with pytest.raises(RuntimeError, match="both need a gradient"):
        opt.step()


@KINDS
def test_gradients_the_backward_did_not_use_are_stepped_from_grad(kind):
    """A compiled model's backward makes no update (the custom operators hand the gradients to
    autograd), nor do gradients set by hand: step() makes the update from .grad, on the engine's
    state, as the torch optimizer would."""
    torch_opt, in_backward, settings = PAIRS[kind]
    data = batches(4)
    ref, model = make_model(), make_model()
    opt_ref, opt = torch_opt(ref.parameters(), **settings), in_backward(model.parameters(), **settings)
    train(ref, opt_ref, data[:2])
    train(model, opt, data[:2])                             # two updates inside the backward first
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    for x, y in data[2:]:
        for m, o in ((ref, opt_ref), (compiled, opt)):
            o.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            o.step()
    assert model[0].weight.grad is not None                 # made by the compiled graph's backward
    assert_close(ref, model)
    train(model, opt, data[:1])                             # and eager again: inside the backward
    train(ref, opt_ref, data[:1])
    assert_close(ref, model)


def test_a_fused_torch_optimizer_after_the_update_inside_the_backward():
    """torch's fused optimizers write the weights without bumping their version counter: after a
    switch to one, the engine must not keep using its transposed copy of the weights."""
    data = batches(8)
    ref, model = make_model(), make_model()
    train(ref, torch.optim.SGD(ref.parameters(), **PAIRS["sgd"][2]), data[:3])
    first = SGDInBackward(model.parameters(), **PAIRS["sgd"][2])
    train(model, first, data[:3])
    first.release()                                       # hand the layers over
    for m in (ref, model):
        train(m, torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.5, fused=True), data[3:])
    assert_close(ref, model)


def test_writes_that_bypass_the_version_counter_when_reported():
    def between(i, model):
        if i == 2:
            model[2].weight.data.mul_(0.5)                # .data: no version bump
            model[2].weights_written()

    ref, model = make_model(), make_model()
    train(ref, torch.optim.SGD(ref.parameters(), **PAIRS["sgd"][2]), batches(5), between)
    train(model, SGDInBackward(model.parameters(), **PAIRS["sgd"][2]), batches(5), between)
    assert_close(ref, model)


@KINDS
def test_the_optimizer_state_survives_loading_the_model_and_pickling(kind):
    """model.load_state_dict of the same pattern keeps the engine's optimizer state (the optimizer
    loaded first, as torch allows); torch.save / deepcopy of model and optimizer together carry it."""
    _, in_backward, settings = PAIRS[kind]
    data, whole, first, opt = halves(kind)
    model_state, opt_state = copy.deepcopy(first.state_dict()), copy.deepcopy(opt.state_dict())
    resumed = make_model()
    opt2 = in_backward(resumed.parameters(), **settings)
    opt2.load_state_dict(opt_state)                       # the optimizer first, then the model
    resumed.load_state_dict(model_state)
    buf = io.BytesIO()
    torch.save((first, opt), buf)
    buf.seek(0)
    unpickled = torch.load(buf, weights_only=False)
    copied = copy.deepcopy((first, opt))
    for m, o in ((resumed, opt2), unpickled, copied):
        train(m, o, data[3:])
        for a, b in zip(whole.parameters(), m.parameters()):
            assert torch.equal(a.detach(), b.detach())
        assert m[0].weight.grad is None                   # still updated inside the backward


def test_sgd_momentum_switched_off_and_on_and_an_empty_batch():
    """A group's momentum 0 -> 0.9 starts from a zero buffer and 0.9 -> 0 -> 0.9 takes the old one
    up again, as torch's SGD; a state dict taken in between moves that buffer; an empty batch makes
    the update of zero gradients (Adam counts it), as torch's optimizers."""
    data = batches(9)
    for schedule in ((0.0, 0.9), (0.9, 0.0, 0.9)):
        ref, model = make_model(), make_model()
        opts = [torch.optim.SGD(ref.parameters(), lr=0.05, momentum=schedule[0]),
                SGDInBackward(model.parameters(), lr=0.05, momentum=schedule[0])]
        for m, o in zip((ref, model), opts):
            for k, mu in enumerate(schedule):
                o.param_groups[0]["momentum"] = mu
                train(m, o, data[3 * k:3 * k + 3])
        assert_close(ref, model)
        assert len(opts[1].state_dict()["state"]) == len(opts[0].state_dict()["state"])

    first = make_model()                                  # a state dict taken without momentum
    opt = SGDInBackward(first.parameters(), lr=0.05, momentum=0.9)
    train(first, opt, data[:2])
    opt.param_groups[0]["momentum"] = 0.0
    train(first, opt, data[2:4])
    saved_model, saved = copy.deepcopy(first.state_dict()), copy.deepcopy(opt.state_dict())
    assert len(saved["state"]) == len(list(first.parameters()))
    runs = []
    for opt_class in (torch.optim.SGD, SGDInBackward):
        m = make_model()
        m.load_state_dict(saved_model)
        o = opt_class(m.parameters(), lr=0.05, momentum=0.0)
        o.load_state_dict(copy.deepcopy(saved))
        o.param_groups[0]["momentum"] = 0.9
        train(m, o, data[4:])
        runs.append(m)
    assert_close(*runs)

    def motif_only():       # no parameter beside the held layers
        torch.manual_seed(0)
        return torch.nn.Sequential(MotifLinear(30, 20, density=0.5, activation="relu", seed=1),
                                   MotifLinear(20, 5, density=0.5, seed=2))

    runs = []
    for opt_class in (torch.optim.Adam, AdamInBackward):
        m = motif_only()
        o = opt_class(m.parameters(), lr=0.01)
        train(m, o, data[:2])
        o.zero_grad()
        m(torch.zeros(0, 30)).sum().backward()
        o.step()
        train(m, o, data[2:])
        runs.append(m)
    assert_close(*runs)


def test_release_hooks_groups_and_a_refused_step():
    data = batches(6)
    ref, model = make_model(), make_model()
    opt_ref, opt = torch.optim.Adam(ref.parameters(), lr=0.01), AdamInBackward(model.parameters(), lr=0.01)
    calls = []
    opt.register_step_post_hook(lambda *a: calls.append(1))
    train(ref, opt_ref, data[:3])
    train(model, opt, data[:3])
    assert len(calls) == 3                                # once per step (a torch Adam exists too)
    opt.release()                                         # torch's Adam from here on, with the state
    train(ref, opt_ref, data[3:])
    train(model, opt, data[3:])
    assert model[0].weight.grad is not None
    assert_close(ref, model)

    other = MotifLinear(8, 6, density=0.5, seed=0)
    with pytest.raises(ValueError, match="amsgrad"):
        opt.add_param_group({"params": list(other.parameters()), "amsgrad": True})
    assert len(opt.param_groups) == 1                     # the refused group is not added

    model = make_model()
    opt = SGDInBackward(model.parameters(), **PAIRS["sgd"][2])
    before = [p.detach().clone() for p in model.parameters()]
    model[0].weight.grad = torch.ones_like(model[0].weight)      # set by hand, both: fine
    model[0].bias.grad = torch.ones_like(model[0].bias)
    model[5].weight.grad = torch.ones_like(model[5].weight)      # one of two: refused
    with pytest.raises(RuntimeError, match="both need a gradient"):
        opt.step()
    for p0, p in zip(before, model.parameters()):         # checked before anything was updated
        assert torch.equal(p0, p.detach())

    opt.zero_grad(set_to_none=True)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)                      # as zero_grad(set_to_none=False) leaves them
    train(model, opt, data[:1])                           # zeros beside the update: not refused


def test_what_the_update_inside_the_backward_cannot_take_is_refused():
    model = make_model()
    opt = SGDInBackward(model.parameters(), **PAIRS["sgd"][2])
    x, y = batches(1)[0]
    # a loss term on the weights: the update was made without it, so step() refuses
    (torch.nn.functional.cross_entropy(model(x), y) + model[2].weight.abs().sum()).backward()
    with pytest.raises(RuntimeError, match="regularizer"):
        opt.step()

    model = make_model()
    opt = SGDInBackward(model.parameters(), **PAIRS["sgd"][2])
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    scaler.scale(torch.nn.functional.cross_entropy(model(x), y)).backward()
    with pytest.raises(RuntimeError, match="GradScaler"):
        scaler.step(opt)

    model = make_model()
    opt = SGDInBackward(model.parameters(), **PAIRS["sgd"][2])
    train(model, opt, batches(2))
    other = make_model(density=0.5)                       # the state of another pattern
    other_opt = SGDInBackward(other.parameters(), **PAIRS["sgd"][2])
    train(other, other_opt, batches(2))
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(ValueError, match="another block pattern"):
        opt.load_state_dict(other_opt.state_dict())
    after = opt.state_dict()
    for k, v in before["state"].items():
        assert torch.equal(v["momentum_buffer"], after["state"][k]["momentum_buffer"])
