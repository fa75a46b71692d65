"""Structural diagnostics of a :class:`~motifcore.MotifMLP`: which hidden neurons have a path to
the loss, which ReLU neurons are dead on given data, and the layer table of ``summary()``. A mixin
of ``MotifMLP`` (it reads the model's layers, lock and counts); nothing here trains."""

from __future__ import annotations

from typing import Any, List

import numpy as np

from .._internal.validation import as_float_matrix, check_int

__all__ = ["Diagnostics"]


class Diagnostics:
    """Path-to-loss, dead-neuron and summary methods of :class:`~motifcore.MotifMLP`."""

    def path_to_loss(self) -> List[np.ndarray]:
        """For each hidden layer (outputs of layers ``0 .. L-2``), a bool array over its neurons:
        ``True`` where the neuron has a path to the loss, i.e. an active outgoing block into a
        neuron that has one (every output neuron has one). Computed from the block pattern only
        (a block whose weight happens to be 0 still counts: it receives a gradient)."""
        live = np.ones(self.n_classes, dtype=bool)
        out: List[np.ndarray] = []
        for layer in reversed(self._layers[1:]):
            (m_out, m_in), (g_out, g_in) = layer.motif, layer.groups
            # an output motif reaches the loss if any of its neurons does
            group_live = np.bincount(np.arange(layer.n_out) // m_out, weights=live, minlength=g_out) > 0
            rows = np.repeat(np.arange(g_out), np.diff(layer.indptr))
            in_live = np.zeros(g_in, dtype=bool)
            in_live[layer.indices[group_live[rows]]] = True
            live = in_live[np.arange(layer.n_in) // m_in]
            out.append(live)
        return out[::-1]

    def disconnected_neurons(self) -> List[int]:
        """Per hidden layer, the number of neurons without a path to the loss
        (:meth:`path_to_loss`): they get no gradient and never learn."""
        return [int((~live).sum()) for live in self.path_to_loss()]

    def dead_neurons(self, X: Any, batch_size: int = 256) -> List[int]:
        """Per hidden layer, the number of ReLU neurons whose output is 0 on every row of ``X``
        (no dropout; one forward pass in chunks of ``batch_size`` rows)."""
        Xa = as_float_matrix(X, self.n_features, "X")
        step = check_int(batch_size, "batch_size")
        alive = [np.zeros(layer.n_out, dtype=bool) for layer in self._layers[:-1]]
        with self._lock:
            for lo in range(0, Xa.shape[0], step):
                h = Xa[lo:lo + step]
                for i, layer in enumerate(self._layers[:-1]):
                    h = layer.forward(h)
                    alive[i] |= (h > 0).any(axis=0)
        return [int((~a).sum()) for a in alive]

    def summary(self) -> str:
        """A table of the layers and their counts; ``no path`` is the number of the layer's
        output neurons without a path to the loss (:meth:`disconnected_neurons`)."""
        cut = [*self.disconnected_neurons(), 0]
        rows = [f"{'layer':<7}{'shape':>15}{'motif':>8}{'blocks':>12}{'edges':>13}{'density':>9}{'no path':>9}"]
        for i, l in enumerate(self._layers):
            m = l.motif
            ms = str(m[0]) if m[0] == m[1] else f"{m[0]}x{m[1]}"
            rows.append(f"{i:<7}{f'{l.n_in}->{l.n_out}':>15}{ms:>8}{l.n_blocks:>12,}{l.n_edges:>13,}{l.density:>9.4f}"
                        f"{cut[i]:>9,}")
        rows.append(f"unique params {self.n_params:,}  edges {self.n_edges:,}  block MACs/sample "
                    f"{self.macs_per_sample:,}  dense-equivalent params {self.dense_params:,}")
        return "\n".join(rows)
