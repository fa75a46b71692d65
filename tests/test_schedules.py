"""Learning-rate and evolution schedules give the documented values at the documented epochs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from motifcore.train.schedules import EvolutionSchedule, evolution_schedule, lr_schedule


def _cos_zeta(e: int, start: float, end: float, z0: float = 0.2) -> float:
    return z0 * 0.5 * (1.0 + math.cos(math.pi * (e - start) / (end - start)))


# ---- evolution ---------------------------------------------------------------------------------


def test_paper_preset_300_epochs_exact_epochs_and_values():
    s = evolution_schedule("paper", 300)
    assert s.evolution_epochs() == list(range(15, 300, 10))
    assert len(s.evolution_epochs()) == 29
    # warmup: nothing in epochs 1..5, nor off the 10-epoch grid
    assert all(s.zeta_at(e) == 0.0 for e in range(1, 15))
    assert s.zeta_at(16) == 0.0 and s.zeta_at(20) == 0.0
    # constant 0.2 for the first two thirds (up to epoch 200)
    for e in range(15, 200, 10):
        assert s.zeta_at(e) == 0.2
    # cosine decay over epochs 200..300
    assert s.zeta_at(205) == pytest.approx(0.1 * (1 + math.cos(0.05 * math.pi)), abs=1e-15)
    assert s.zeta_at(245) == pytest.approx(0.1 * (1 + math.cos(0.45 * math.pi)), abs=1e-15)
    assert s.zeta_at(295) == pytest.approx(0.1 * (1 + math.cos(0.95 * math.pi)), abs=1e-15)
    vals = [s.zeta_at(e) for e in range(205, 300, 10)]
    assert all(a > b > 0 for a, b in zip(vals, vals[1:]))
    assert s.zeta_at(300) == 0.0


def test_paper_preset_short_run_and_parameters():
    s = evolution_schedule("paper", 30)
    assert s.evolution_epochs() == [15, 25]
    assert s.zeta_at(15) == 0.2
    assert s.zeta_at(25) == pytest.approx(_cos_zeta(25, 20.0, 30.0))  # = 0.1
    assert s.zeta_at(25) == pytest.approx(0.1)
    p = evolution_schedule("paper", 10, every=2, warmup=1, zeta=0.4)
    assert p.evolution_epochs() == [3, 5, 7, 9]
    d = 10 * 2 / 3
    assert p.zetas() == pytest.approx([0, 0, 0.4, 0, 0.4, 0, _cos_zeta(7, d, 10, 0.4), 0,
                                       _cos_zeta(9, d, 10, 0.4), 0])


def test_set_and_none_presets():
    s = evolution_schedule("set-epoch", 5)
    assert s.zetas() == [0.3, 0.3, 0.3, 0.3, 0.0]  # never after the final epoch
    assert evolution_schedule("set-epoch", 4, zeta=0.1).zetas() == [0.1, 0.1, 0.1, 0.0]
    assert EvolutionSchedule.set(5).to_config() == {"preset": "set-epoch", "zeta": 0.3}
    assert evolution_schedule("none", 7).evolution_epochs() == []
    assert evolution_schedule(None, 7).zetas() == [0.0] * 7


def test_custom_forms_and_final_epoch():
    assert evolution_schedule(lambda e: 0.1 * (e % 2), 5).zetas() == pytest.approx([0.1, 0, 0.1, 0, 0])
    assert evolution_schedule({2: 0.25, 5: 0.5}, 5).zetas() == [0, 0.25, 0, 0, 0]  # 5 is the last epoch
    assert evolution_schedule([0.1, 0.2], 4).zetas() == [0.1, 0.2, 0, 0]
    # round trip through the JSON config
    for spec in ("paper", "set", "set-epoch", {3: 0.2}, [0.1, 0.0, 0.3]):
        s = evolution_schedule(spec, 12)
        assert evolution_schedule(s.to_config(), 12).zetas() == s.zetas()
    assert evolution_schedule(lambda e: 0.1, 3).to_config() is None


def test_evolution_errors():
    with pytest.raises(ValueError, match="evolution schedule must be one of"):
        evolution_schedule("sett", 10)
    with pytest.raises(ValueError, match="zeta"):
        evolution_schedule([0.1, 1.5], 10)
    with pytest.raises(ValueError, match=r"gave zeta=2"):
        evolution_schedule(lambda e: 2.0, 10).zeta_at(1)
    with pytest.raises(ValueError, match="epoch must be in"):
        evolution_schedule("paper", 10).zeta_at(11)
    with pytest.raises(ValueError, match="for 10 epochs"):
        evolution_schedule(EvolutionSchedule.set(10), 20)


# ---- learning rate -----------------------------------------------------------------------------


def test_cosine_warmup_exact_values():
    s = lr_schedule("cosine", 0.01, epochs=10, steps_per_epoch=4, warmup=2)
    assert s.lr_for_epoch(1).tolist() == pytest.approx([0.00125, 0.0025, 0.00375, 0.005])
    assert s.lr_for_epoch(2).tolist() == pytest.approx([0.00625, 0.0075, 0.00875, 0.01])
    # cosine phase: t - Ws over T - Ws = 32 steps
    assert s.lr_at(3, 0) == 0.01
    assert s.lr_at(3, 1) == pytest.approx(0.005 * (1 + math.cos(math.pi / 32)))
    assert s.lr_at(6, 2) == pytest.approx(0.005 * (1 + math.cos(math.pi * 14 / 32)))
    assert s.lr_at(10, 3) == pytest.approx(0.005 * (1 + math.cos(math.pi * 31 / 32)))
    lrs = np.concatenate([s.lr_for_epoch(e) for e in range(1, 11)])
    # the last warmup step and the first cosine step both sit at the peak
    assert lrs[7] == lrs[8] == 0.01 == lrs.max()
    assert (np.diff(lrs[:8]) > 0).all() and (np.diff(lrs[8:]) < 0).all() and (lrs > 0).all()
    assert np.array_equal(s.lr_for_epoch(7), [s.lr_at(7, b) for b in range(4)])


def test_paper_lr_default_shape():
    s = lr_schedule("cosine", 0.01, epochs=300, steps_per_epoch=469)  # warmup 5 by default
    assert s.warmup == 5
    assert s.lr_at(1, 0) == pytest.approx(0.01 / (5 * 469))
    assert s.lr_at(6, 0) == 0.01
    assert s.lr_at(153, 234) == pytest.approx(0.005, rel=1e-3)  # half way through the decay


def test_warmup_clamped_for_short_runs():
    s = lr_schedule("cosine", 0.1, epochs=3, steps_per_epoch=2, warmup=5)
    assert s.warmup == 2
    assert s.lr_for_epoch(1).tolist() == pytest.approx([0.025, 0.05])
    assert s.lr_at(3, 0) == 0.1


def test_constant_step_and_custom():
    c = lr_schedule("constant", 0.05, 4, 3)
    assert all(c.lr_for_epoch(e).tolist() == [0.05] * 3 for e in range(1, 5))
    st = lr_schedule("step", 0.1, 7, 2, step_size=3, gamma=0.5)
    assert [st.lr_at(e) for e in range(1, 8)] == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025])
    assert st.lr_for_epoch(4).tolist() == [0.05, 0.05]
    f = lr_schedule(lambda e, b: 0.01 * e + 0.001 * b, 0.01, 3, 2)
    assert f.lr_for_epoch(2).tolist() == pytest.approx([0.02, 0.021])


def test_lr_errors():
    with pytest.raises(ValueError, match="lr schedule must be one of"):
        lr_schedule("linear", 0.01, 10, 5)
    with pytest.raises(ValueError, match="lr must be in"):
        lr_schedule("cosine", 0.0, 10, 5)
    with pytest.raises(ValueError, match="batch must be in"):
        lr_schedule("cosine", 0.1, 10, 5).lr_at(1, 5)
    with pytest.raises(ValueError, match="epoch must be in"):
        lr_schedule("cosine", 0.1, 10, 5).lr_at(0, 0)
    with pytest.raises(ValueError, match="invalid values"):
        lr_schedule(lambda e, b: -1.0, 0.1, 2, 2).lr_for_epoch(1)


def test_stored_cht_schedule_keeps_the_step_it_was_written_with():
    """A CHT schedule stored before removal/restore existed resumes with the old step (magnitude
    removal, no restore); one stored now round-trips with the CHT code's defaults."""
    old = {"preset": "cht", "zeta": 0.3, "chain_removal": True, "fill": "random", "link": "ch3_l3"}
    sched = evolution_schedule(old, 10)
    assert sched.params["removal"] == "magnitude" and sched.params["restore"] is False
    assert sched.params["fill"] == "random"
    new = EvolutionSchedule.cht(10)
    back = evolution_schedule(new.to_config(), 10)
    assert back.params == new.params
    assert new.params["removal"] == "sign" and new.params["restore"] is True and new.params["fill"] == "none"
