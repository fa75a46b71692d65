"""motifcore inside PyTorch (needs torch; ``import motifcore`` alone never imports it).

* :class:`MotifLinear` -- a block-sparse ``nn.Module`` whose forward and backward run the engine's
  kernels; its ``weight`` (one value per active block) and ``bias`` are ordinary parameters over
  the engine's memory, so any torch optimizer, scheduler, ``state_dict`` and ``torch.save`` work.
* :class:`SET`, :class:`RigL`, :class:`DSR`, :class:`CHT` -- dynamic sparse training of every
  ``MotifLinear`` of a model, with a ``.step()`` after ``optimizer.step()``; the optimizer's
  state follows the blocks.
* :class:`SGDInBackward`, :class:`AdamInBackward`, :class:`AdamWInBackward` -- torch's SGD, Adam
  and AdamW with the update of every ``MotifLinear`` made inside its backward, in the engine (as
  ``MotifMLP.train_step`` makes it).
* :class:`MotifSequential` -- ``nn.Sequential`` that runs consecutive ``MotifLinear`` layers in
  one engine call per direction (the same results, bit for bit).
* :func:`from_linear`, :func:`from_mlp`, :func:`to_mlp` -- conversions.

See docs/torch.md.
"""

from __future__ import annotations

from .dst import CHT, DSR, SET, DynamicSparsity, RigL, motif_layers, remap_optimizer_state
from .interop import from_mlp, to_mlp
from .layer import MotifLinear, from_linear
from .optim import AdamInBackward, AdamWInBackward, SGDInBackward
from .sequential import MotifSequential

__all__ = ["AdamInBackward", "AdamWInBackward", "CHT", "DSR", "DynamicSparsity", "MotifLinear", "MotifSequential",
           "RigL", "SET", "SGDInBackward", "from_linear", "from_mlp", "motif_layers", "remap_optimizer_state", "to_mlp"]
