"""motifcore.torch's SET / RigL / DSR / CHT: the Trainer's algorithms on MotifLinear layers, with
the optimizer's state following the blocks (checked against a full-grid reference run)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import motifcore  # noqa: E402
from motifcore.nn.mlp import layer_seed  # noqa: E402
from motifcore.torch import CHT, DSR, SET, MotifLinear, RigL, from_mlp  # noqa: E402

G_OUT, G_IN, M = 6, 7, 2
N_OUT, N_IN = 11, 14          # a residual output motif (11 = 5*2 + 1)


def expand(K_full: torch.Tensor) -> torch.Tensor:
    """Dense [N_OUT, N_IN] matrix of a full grid of block weights [G_OUT * G_IN]."""
    K = K_full.view(G_OUT, G_IN)
    return K.repeat_interleave(M, 0)[:N_OUT].repeat_interleave(M, 1)[:, :N_IN]


def make_opt(kind: str, params):
    if kind == "sgd":
        return torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=1e-3)
    if kind == "adam":
        return torch.optim.Adam(params, lr=0.01, weight_decay=1e-3)
    return torch.optim.AdamW(params, lr=0.01, weight_decay=0.05)


def loss_fn(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return ((torch.tanh(y) - t) ** 2).mean()


@pytest.mark.parametrize("kind", ["sgd", "adam", "adamw"])
@pytest.mark.parametrize("method", ["set", "rigl"])
def test_optimizer_state_follows_the_blocks(kind, method):
    torch.manual_seed(0)
    layer = MotifLinear(N_IN, N_OUT, motif=M, density=0.4, seed=2)
    opt = make_opt(kind, layer.parameters())
    if method == "set":
        dst = SET(layer, opt, zeta=0.4, interval=3, seed=7)
    else:
        dst = RigL(layer, opt, total_steps=100, alpha=0.4, interval=3, seed=7)

    # reference: the full G_OUT x G_IN grid as one dense parameter, masked to the active blocks
    mask = torch.zeros(G_OUT * G_IN)
    mask[torch.from_numpy(layer.positions)] = 1
    K_ref = torch.zeros(G_OUT * G_IN)
    K_ref[torch.from_numpy(layer.positions)] = layer.weight.detach()
    K_ref.requires_grad_(True)
    b_ref = layer.bias.detach().clone().requires_grad_(True)
    opt_ref = make_opt(kind, [K_ref, b_ref])

    gen = torch.Generator().manual_seed(1)
    updates = 0
    for step in range(1, 10):
        x = torch.randn(16, N_IN, generator=gen)
        target = torch.randn(16, N_OUT, generator=gen)
        opt.zero_grad()
        loss_fn(layer(x), target).backward()
        opt.step()
        opt_ref.zero_grad()
        loss_fn(x @ expand(K_ref).T + b_ref, target).backward()
        with torch.no_grad():
            dense_grad = K_ref.grad.clone()          # block gradients of every position (RigL's scores)
            K_ref.grad.mul_(mask)
        opt_ref.step()
        old = layer.positions
        np.testing.assert_allclose(layer.weight.detach().numpy(), K_ref.detach()[torch.from_numpy(old)].numpy(),
                                   rtol=1e-4, atol=1e-5)
        state_before = {k: v.clone() for k, v in opt.state[layer.weight].items() if v.dim() == 1}
        rec = dst.step()
        if rec is None:
            continue
        updates += 1
        new = layer.positions
        assert len(new) == len(old)                    # SET and RigL keep the block count
        assert layer.weight.shape == (len(new),)
        common, i_old, i_new = np.intersect1d(old, new, return_indices=True)
        fresh = np.setdiff1d(np.arange(len(new)), i_new)
        assert len(fresh) > 0
        for key, before in state_before.items():
            after = opt.state[layer.weight][key]
            assert after.shape == (len(new),)
            assert torch.equal(after[torch.from_numpy(i_new)], before[torch.from_numpy(i_old)])
            assert torch.all(after[torch.from_numpy(fresh)] == 0)
        if kind != "sgd":
            assert opt.state[layer.weight]["step"].item() == step          # scalar state kept
        if method == "rigl":
            # grown = the k positions of largest |block gradient| outside the kept blocks
            k = rec["pruned"][0]
            assert k == int(np.floor(dst.updater.fraction(step, 100) * len(old))) > 0
            w_after_opt = K_ref.detach()[torch.from_numpy(old)].abs().numpy()
            kept = old[np.sort(np.lexsort((np.arange(len(old)), w_after_opt))[k:])]
            cand = np.setdiff1d(np.arange(G_OUT * G_IN), kept)
            score = dense_grad.abs().numpy()[cand]
            want = np.sort(cand[np.lexsort((cand, -score))[:k]])
            np.testing.assert_array_equal(np.setdiff1d(new, kept), want)
            assert rec["regrown"][0] == k
        # the same change in the reference: dropped blocks and their state gone, new ones from the layer
        with torch.no_grad():
            mask.zero_()
            mask[torch.from_numpy(new)] = 1
            K_ref.mul_(mask)
            K_ref[torch.from_numpy(new)] = layer.weight.detach()
            for key, v in opt_ref.state[K_ref].items():
                if v.dim() == 1:
                    keep = torch.zeros_like(mask)
                    keep[torch.from_numpy(common)] = 1
                    v.mul_(keep)
    assert updates == 3
    np.testing.assert_allclose(layer.weight.detach().numpy(),
                               K_ref.detach()[torch.from_numpy(layer.positions)].numpy(), rtol=1e-4, atol=1e-5)


def test_set_runs_the_same_evolution_as_the_engine_model():
    model = motifcore.MotifMLP([20, 16, 12, 3], motif=2, density=0.4, seed=3, num_threads=1)
    net = from_mlp(model)
    s = SET(net, None, zeta=0.3, interval=2, seed=11, regrow="he")
    s.step()
    assert s.step() is not None        # t = 2
    model.evolve(0.3, seed=layer_seed(11, 2), regrow="he")
    for layer, mod in zip(model.layers, net):
        np.testing.assert_array_equal(layer.indices, mod.indices)
        np.testing.assert_array_equal(layer.weights, mod.weight.detach().numpy())


def test_set_cosine_is_the_trainers_set_schedule():
    """SET.cosine evolves with the zeta of Trainer(evolution="set") at the same steps: with one
    update interval per epoch, after every epoch of the first 75 % of the run."""
    from motifcore.train.schedules import evolution_schedule

    spe, epochs = 20, 8
    model = motifcore.MotifMLP([20, 16, 12, 3], motif=2, density=0.4, seed=3, num_threads=1)
    net = from_mlp(model)
    s = SET.cosine(net, None, total_steps=spe * epochs, interval=spe, seed=11)
    want = evolution_schedule("set", epochs, steps_per_epoch=spe, interval=spe).zetas()
    got = []
    for t in range(1, spe * epochs + 1):
        rec = s.step()
        if t % spe == 0:
            got.append(0.0 if rec is None else rec["zeta"])
        if rec is not None:
            model.evolve(rec["zeta"], seed=layer_seed(11, t), regrow="he")   # the Trainer's step
    assert got == pytest.approx(want) and sum(z > 0 for z in want) == 5       # after epochs 1-5 of 8
    assert want[0] > want[1] > want[4] > 0
    for layer, mod in zip(model.layers, net):
        np.testing.assert_array_equal(layer.indices, mod.indices)
        np.testing.assert_array_equal(layer.weights, mod.weight.detach().numpy())
    with pytest.raises(ValueError, match="stop"):
        SET.cosine(net, None, total_steps=10, stop=0.0)
    with pytest.raises(ValueError, match="zeta"):
        SET.cosine(net, None, total_steps=10, zeta=1.0)


@pytest.mark.parametrize("regrow", ["normal", "zero", "pruned"])
def test_set_takes_every_regrowth_the_trainer_has(regrow):
    """The torch SET object takes every regrowth of ``motifcore.defaults.REGROW_MODES`` and runs
    the engine model's step with it (same pattern and weights)."""
    model = motifcore.MotifMLP([20, 16, 12, 3], motif=2, density=0.4, seed=3, num_threads=1)
    net = from_mlp(model)
    s = SET(net, None, zeta=0.3, interval=1, seed=5, regrow=regrow)
    assert s.step() is not None
    model.evolve(0.3, seed=layer_seed(5, 1), regrow=regrow)
    for layer, mod in zip(model.layers, net):
        np.testing.assert_array_equal(layer.indices, mod.indices)
        np.testing.assert_array_equal(layer.weights, mod.weight.detach().numpy())
    with pytest.raises(ValueError, match="regrow must be one of"):
        SET(net, None, regrow="uniform")


def test_rigl_needs_the_last_backward():
    layer = MotifLinear(20, 10, density=0.3, seed=0)
    r = RigL(layer, None, total_steps=10, interval=1)
    with pytest.raises(RuntimeError, match="last backward"):
        r.step()
    layer(torch.randn(4, 20)).sum().backward()
    with torch.no_grad():
        layer(torch.randn(4, 20))         # an evaluation pass after the backward
    with pytest.raises(RuntimeError, match="last backward"):
        r.update()


def test_dsr_moves_blocks_between_layers_and_optimizer_follows():
    torch.manual_seed(0)
    net = torch.nn.Sequential(MotifLinear(30, 40, motif=2, density=0.3, activation="relu"),
                              MotifLinear(40, 4, density=0.5))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    dsr = DSR(net, opt, total_steps=40, threshold=0.05, periods=(5,), starts=(0.0,))
    total = sum(m.n_blocks for m in net)
    X, y = torch.randn(64, 30), torch.randint(0, 4, (64,))
    moved = False
    for _ in range(40):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(X), y).backward()
        opt.step()
        counts = [m.n_blocks for m in net]
        if dsr.step() is not None:
            moved |= [m.n_blocks for m in net] != counts
        assert sum(m.n_blocks for m in net) == total
        for m in net:
            assert m.weight.shape == (m.n_blocks,)
            for v in opt.state[m.weight].values():
                assert v.dim() == 0 or v.shape == m.weight.shape
    assert moved and dsr.updater.updates > 0


def test_cht_runs_and_checks_the_chain():
    model = motifcore.MotifMLP([20, 16, 12, 3], motif=1, density=0.3, seed=3, num_threads=1)
    net = from_mlp(model)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    c = CHT(net, opt, zeta=0.3, interval=1, seed=5)
    rec = c.update()
    # the defaults are the Trainer's "cht" step (the CHT code's): removal by sign, no random
    # top-up, restore
    ref = model.evolve_cht(0.3, seed=layer_seed(5, 0), fill="none", removal="sign", restore=True)
    assert rec["stats"] == ref
    for layer, mod in zip(model.layers, net):
        np.testing.assert_array_equal(layer.indices, mod.indices)
    with pytest.raises(ValueError, match="chain"):
        CHT(torch.nn.Sequential(MotifLinear(10, 8), MotifLinear(9, 3)), None)


@pytest.mark.parametrize("restore", [True, False])
def test_cht_optimizer_state_follows_the_engine(restore):
    # the engine model and its torch copy hold the same weights and momentum; one CHT update on
    # each must leave the same pattern, weights and momentum: kept blocks keep theirs, restored
    # blocks (removed and regrown at the same position) keep theirs with restore=True and start at
    # 0 without it, new blocks start at 0
    model = motifcore.MotifMLP([20, 16, 12, 3], motif=1, density=0.3, seed=3, num_threads=1)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 20)).astype(np.float32), rng.integers(0, 3, 64)
    for _ in range(3):
        model.train_step(X, y, lr=0.05, momentum=0.9)
    net = from_mlp(model)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    state = model.get_state()
    for k, m in enumerate(net):
        opt.state[m.weight]["momentum_buffer"] = torch.from_numpy(state[f"layer{k}.weight_velocity"].copy())
    rec = CHT(net, opt, zeta=0.3, interval=1, seed=5, restore=restore).update()
    ref = model.evolve_cht(0.3, seed=layer_seed(5, 0), fill="none", removal="sign", restore=restore)
    assert rec["stats"] == ref
    assert sum(s["restored"] for s in ref) > 0           # the case this test is about occurs
    after = model.get_state()
    for k, m in enumerate(net):
        np.testing.assert_array_equal(m.indices, model.layers[k].indices)
        np.testing.assert_array_equal(m.weight.detach().numpy(), after[f"layer{k}.weights"])
        np.testing.assert_array_equal(opt.state[m.weight]["momentum_buffer"].numpy(),
                                      after[f"layer{k}.weight_velocity"])


def test_dst_arguments_are_checked():
    layer = MotifLinear(10, 6)
    with pytest.raises(ValueError, match="no MotifLinear"):
        SET(torch.nn.Linear(3, 3), None)
    with pytest.raises(ValueError, match="zeta"):
        SET(layer, None, zeta=1.5)
    with pytest.raises(TypeError, match="optimizer"):
        SET(layer, [object()])


def test_dsr_state_dict_resumes_the_same_decisions():
    def run(resume_at=None):
        torch.manual_seed(0)
        net = torch.nn.Sequential(MotifLinear(30, 40, motif=2, density=0.3, activation="relu", seed=1),
                                  MotifLinear(40, 4, density=0.5, seed=2))
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        dsr = DSR(net, opt, total_steps=30, threshold=0.05, periods=(5,), starts=(0.0,))
        gen = torch.Generator().manual_seed(0)
        for step in range(30):
            X, y = torch.randn(32, 30, generator=gen), torch.randint(0, 4, (32,), generator=gen)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(X), y).backward()
            opt.step()
            dsr.step()
            if step + 1 == resume_at:      # save everything, rebuild from scratch, load
                saved = (net.state_dict(), opt.state_dict(), dsr.state_dict())
                net = torch.nn.Sequential(MotifLinear(30, 40, motif=2, density=0.3, activation="relu"),
                                          MotifLinear(40, 4, density=0.5))
                net.load_state_dict(saved[0])
                opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
                opt.load_state_dict(saved[1])
                dsr = DSR(net, opt, total_steps=30, threshold=0.05, periods=(5,), starts=(0.0,))
                dsr.load_state_dict(saved[2])
        return net, dsr

    a, da = run()
    b, db = run(resume_at=12)
    assert da.updater.threshold == db.updater.threshold
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(x, y)
