"""The bookkeeping of issue 22's tools: scripts/learning_ablation.py (its "zscore" input is the
loaders' own, the other inputs are what they say, the table's delta, rank and worse-set columns)
and scripts/quality.py (the width of the equal-parameter dense MLP)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from motifcore import datasets

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import learning_ablation as la  # noqa: E402
import quality  # noqa: E402


def test_zscore_input_is_the_loaders() -> None:
    X, y, Xt, yt = datasets.load("digits", seed=1)
    Xr, yr, Xtr, ytr = datasets.load("digits", seed=1, normalize=False)
    A, B = la.preprocess("zscore", Xr, Xtr, image=False)
    assert np.array_equal(A, X) and np.array_equal(B, Xt)


def test_clipped_and_global_inputs() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)).astype(np.float32)
    X[0, 0] = 1000.0                          # an outlier: 14 standard deviations after the z-score
    Xt = rng.normal(size=(50, 5)).astype(np.float32) * 20
    A, B = la.preprocess("clip5", X, Xt, image=False)
    assert A.max() == 5.0 and np.abs(B).max() == 5.0 and A.dtype == np.float32
    G, H = la.preprocess("global", X, Xt, image=False)
    assert abs(float(G.mean())) < 1e-5 and abs(float(G.std()) - 1.0) < 1e-5
    # one scale for all features: differences between features are kept
    assert np.allclose((G[:, 1] - G[:, 2]) * X.std(dtype=np.float64), X[:, 1] - X[:, 2], atol=1e-3)
    with pytest.raises(ValueError, match="unknown preprocessing"):
        la.preprocess("minmax", X, Xt, image=False)


def test_candidates_change_one_thing_and_the_fmnist_budget_holds() -> None:
    prep, kw = la.settings("skf:COIL20", "default", 6)
    assert (prep, kw) == ("zscore", la.BASELINE) == ("zscore", {"lr": 1e-3, "input_clip": 0.0, "optimizer": "adam",
                                                              "weight_decay": 5e-4, "label_smoothing": 0.0})
    assert la.settings("skf:COIL20", "lr-3e-3", 6)[1]["lr"] == 3e-3
    for name, (p, k, _) in la.CANDIDATES.items():
        if name in la.COMBINATIONS:
            continue
        assert (p != "zscore") + len(k) - ("weight_decay" in k and "optimizer" in k) <= 1, name
    prep, kw = la.settings("fashion-mnist", "min-steps-500", 6)
    assert kw == {**la.BASELINE, "min_steps": 0, "hidden_sizes": (512, 512), "epochs": 6}
    assert la.settings("fashion-mnist", "default", 6) == (prep, kw)


def test_ablation_table() -> None:
    done = {}
    for seed, (d, a, b) in enumerate([(90, 95, 80), (91, 96, 81), (92, 97, 79)]):
        for c, v in (("default", d), ("better", a), ("worse", b)):
            done[("s1", c, seed)] = {"accuracy": v / 100}
            done[("s2", c, seed)] = {"accuracy": (v + 1) / 100}
    text = la.table(done, ["s1", "s2"], ["default", "better", "worse"])
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()[2:]}
    assert "91.00 ± 1.00" in rows["default"] and "+5.00" in rows["better"] and "-11.00" in rows["worse"]
    assert rows["better"].split(" | ")[-2] == "1.00" and rows["worse"].split(" | ")[-2] == "3.00"
    assert rows["worse"].rstrip(" |").endswith("s1, s2") and rows["better"].rstrip(" |").endswith("-")


@pytest.mark.parametrize("n_features,n_classes", [(784, 10), (5748, 4), (500, 2), (617, 26)])
def test_dense_width_matches_the_parameter_count(n_features: int, n_classes: int) -> None:
    target = 72_509
    w = quality.dense_width(target, n_features, n_classes)
    got = quality.dense_params(w, n_features, n_classes)
    k = 1 if n_classes == 2 else n_classes
    step = n_features + 1 + k                 # one unit more or less
    assert abs(got - target) <= step / 2 + 1
    assert quality.dense_params(w + 1, n_features, n_classes) - got == step


def test_quality_estimator_params_reach_the_estimator_and_the_record(tmp_path: Path) -> None:
    out = tmp_path / "q.jsonl"
    params = {"hidden_sizes": [16], "epochs": 2, "min_steps": 1}
    quality.main(["--datasets", "digits", "--methods", "estimator", "--seeds", "0", "--out", str(out),
                  "--estimator-params", json.dumps(params)])
    row = json.loads(out.read_text().splitlines()[0])
    assert row["estimator_params"] == params
    assert row["n_iter"] == 2                      # the estimator ran the 2 epochs it was given
    assert 0.0 <= row["accuracy"] <= 1.0


@pytest.mark.parametrize("bad", ["{min_steps: 1}", "[1, 2]", '{"random_state": 3}', '{"no_such_setting": 1}'])
def test_quality_estimator_params_must_be_a_json_object(tmp_path: Path, bad: str) -> None:
    with pytest.raises(SystemExit):
        quality.main(["--datasets", "digits", "--methods", "estimator", "--out", str(tmp_path / "q.jsonl"),
                      "--estimator-params", bad])


def test_quality_refuses_to_mix_estimator_settings_in_one_file(tmp_path: Path) -> None:
    out = tmp_path / "q.jsonl"
    args = ["--datasets", "digits", "--methods", "estimator", "--seeds", "0", "--out", str(out)]
    quality.main([*args, "--estimator-params", json.dumps({"hidden_sizes": [16], "epochs": 1, "min_steps": 1})])
    with pytest.raises(SystemExit):
        quality.main([*args, "--estimator-params", json.dumps({"hidden_sizes": [16], "epochs": 2, "min_steps": 1})])
