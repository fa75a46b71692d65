"""Reliability, round two (issue 24), the items not covered by test_output_files.py and
test_folder_lock.py: ``from_torch`` refuses what a MotifMLP cannot compute exactly (N6), CLI
messages name the real problem and the file (N9), an absurd update is caught by the step that made
it, not the next one."""

from __future__ import annotations

import numpy as np
import pytest
from motifcore import MotifLayer, MotifMLP
from motifcore.errors import DivergedError
from motifcore.cli import main


# ---- N6: MotifMLP.from_torch converts exactly or refuses, naming the module ---------------------
def _torch():
    return pytest.importorskip("torch")


def _mlp(torch, *mods):
    torch.manual_seed(0)
    return torch.nn.Sequential(*mods)


def _refused(torch):
    """The red team's cases (each converted silently before, max |delta logit| 0.35-0.67) and a few
    more, with the exception type and the words the message must hold (the module's path)."""
    nn = torch.nn
    shared = nn.Linear(16, 16)
    inner = nn.Sequential(nn.Linear(16, 16), nn.Sigmoid())

    class Custom(nn.Module):            # a forward this reading cannot see
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(12, 16), nn.Linear(16, 3)

        def forward(self, x):
            return self.b(torch.tanh(self.a(x)))

    return {
        "tanh": (_mlp(torch, nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 3)), TypeError, ["Tanh", "'1'"]),
        "no-activation": (_mlp(torch, nn.Linear(12, 16), nn.Linear(16, 3)), ValueError,
                          ["no activation", "Linear at '1'", "Linear at '0'"]),
        "layernorm": (_mlp(torch, nn.Linear(12, 16), nn.ReLU(), nn.LayerNorm(16, elementwise_affine=False),
                           nn.Linear(16, 3)), TypeError, ["LayerNorm", "'2'"]),
        "reused-linear": (_mlp(torch, nn.Linear(12, 16), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(),
                               nn.Linear(16, 3)), ValueError, ["'4'", "'2'", "second time"]),
        "nested-sigmoid": (_mlp(torch, nn.Linear(12, 16), nn.ReLU(), inner, nn.Linear(16, 3)), TypeError,
                           ["Sigmoid", "'2.1'"]),
        "relu-on-logits": (_mlp(torch, nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3), nn.ReLU()), ValueError,
                           ["ReLU at '3'", "after the last layer"]),
        "relu-first": (_mlp(torch, nn.ReLU(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3)), ValueError,
                       ["ReLU at '0'", "before the first layer"]),
        "leaky-relu": (_mlp(torch, nn.Linear(12, 16), nn.LeakyReLU(), nn.Linear(16, 3)), TypeError, ["LeakyReLU"]),
        "custom-forward": (Custom(), TypeError, ["Custom", "container"]),
        "module-list": (nn.Sequential(nn.ModuleList([nn.Linear(12, 16), nn.ReLU()]), nn.Linear(16, 3)), TypeError,
                        ["ModuleList at '0'"]),
    }


@pytest.mark.parametrize("case", ["tanh", "no-activation", "layernorm", "reused-linear", "nested-sigmoid",
                                  "relu-on-logits", "relu-first", "leaky-relu", "custom-forward", "module-list"])
def test_from_torch_refuses_what_it_cannot_represent_naming_the_module(case):
    torch = _torch()
    module, kind, words = _refused(torch)[case]
    with pytest.raises(kind) as info:
        MotifMLP.from_torch(module, num_threads=1)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def _close_to_torch(torch, module, model):
    x = np.random.default_rng(0).standard_normal((9, model.n_features)).astype(np.float32)
    with torch.no_grad():
        want = module.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.decision_function(x), want, rtol=1e-5, atol=1e-5)


def test_from_torch_still_reads_exactly_what_it_can():
    torch = _torch()
    nn = torch.nn
    ok = [
        _mlp(torch, nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3)),
        _mlp(torch, nn.Flatten(), nn.Linear(12, 16), nn.ReLU(inplace=True), nn.Dropout(0.3), nn.Linear(16, 8),
             nn.ReLU(), nn.ReLU(), nn.Identity(), nn.Linear(8, 3), nn.Dropout(0.1)),
        _mlp(torch, nn.Sequential(nn.Linear(12, 16), nn.ReLU()), nn.Sequential(nn.Linear(16, 3))),
        _mlp(torch, nn.Linear(12, 3)),
        nn.Linear(12, 3),
    ]
    for module in ok:
        _close_to_torch(torch, module, MotifMLP.from_torch(module, num_threads=1))
    # a shared ReLU module is a function, not a layer: reusing it is exact
    relu = nn.ReLU()
    module = _mlp(torch, nn.Linear(12, 16), relu, nn.Linear(16, 8), relu, nn.Linear(8, 3))
    _close_to_torch(torch, module, MotifMLP.from_torch(module, num_threads=1))
    # a compact module from to_torch (ReLU fused into its layers), with or without ReLU modules after them
    model = MotifMLP([12, 16, 8, 3], motif=2, density=0.5, seed=0, num_threads=1)
    compact = model.to_torch()
    _close_to_torch(torch, compact, MotifMLP.from_torch(compact, num_threads=1))
    with_relu = nn.Sequential(compact[0], nn.ReLU(), compact[1], compact[2])
    _close_to_torch(torch, with_relu, MotifMLP.from_torch(with_relu, num_threads=1))
    with pytest.raises(ValueError, match="after the last layer"):      # the logits layer must stay linear
        MotifMLP.from_torch(nn.Sequential(compact[0], compact[1], compact[2], nn.ReLU()), num_threads=1)
