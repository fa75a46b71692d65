"""The one parser of motif specifications: ``2``, ``"2x1"``, ``"2,2,1,1"``, ``[2, [2, 1], 1]``.

A motif is an int ``m`` (square blocks on the hidden layers, m = 1 on the output layer) or a
per-layer list whose entries are ints or ``(m_out, m_in)`` pairs. The JSON form (records, run ids,
checkpoints) spells pairs as lists; the model takes tuples (:func:`for_model`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Union

from .validation import check_int

Motif = Union[int, list]


def tokens(values: str | Sequence[str]) -> list[str]:
    """Split command-line values on commas and white space: ``["2,2", "1 1"]`` -> 4 tokens."""
    if isinstance(values, str):
        values = [values]
    return [t for v in values for t in re.split(r"[,\s]+", v.strip()) if t]


def parse_token(t: str) -> int | list[int]:
    """``"2"`` -> 2, ``"2x1"`` -> [2, 1] (m_out, m_in); sizes must be >= 1."""
    s = t.lower()
    try:
        m: Any = [int(a) for a in s.split("x")] if "x" in s else int(s)
    except ValueError:
        raise ValueError(f"bad motif {t!r}: expected a positive integer or AxB") from None
    if (isinstance(m, list) and (len(m) != 2 or min(m) < 1)) or (isinstance(m, int) and m < 1):
        raise ValueError(f"motif sizes must be >= 1, got {t!r}")
    return m


def parse(value: Any, n_layers: int, *, collapse_uniform: bool = True) -> Motif:
    """One motif spec in any spelling, checked against a network of ``n_layers`` weight layers.

    Strings (or a list of command-line strings) are split by :func:`tokens`: one integer token is a
    uniform size, anything else one entry per layer. Returns an int or a list of ``n_layers``
    entries (ints or ``[m_out, m_in]``). With ``collapse_uniform``, ``[m, ..., m, 1]`` becomes
    ``m`` (the same network; sweeps use it so that one network has one run id)."""
    texts = isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value)
    if isinstance(value, str) or texts:
        toks = tokens(value)
        if not toks:
            raise ValueError("give a motif size")
        if len(toks) == 1 and "x" not in toks[0].lower():
            return parse_token(toks[0])
        value = [parse_token(t) for t in toks]
    if isinstance(value, (list, tuple)):
        items: list[Any] = []
        for e in value:
            if isinstance(e, (list, tuple)):
                if len(e) != 2:
                    raise ValueError(f"a rectangular motif is [m_out, m_in], got {e!r}")
                items.append([check_int(e[0], "motif size", integral_float=True),
                              check_int(e[1], "motif size", integral_float=True)])
            else:
                items.append(check_int(e, "motif size", integral_float=True))
        if len(items) != n_layers:
            raise ValueError(f"{len(items)} per-layer motif sizes for {n_layers} layers: the network has {n_layers} "
                             f"weight layers (len(hidden) + 1); give one size, or exactly {n_layers}")
        if collapse_uniform and n_layers > 1 and all(isinstance(e, int) for e in items) \
                and len(set(items[:-1])) == 1 and items[-1] == 1:
            return int(items[0])
        return items
    return check_int(value, "motif size", integral_float=True)


def label(motif: Motif) -> str:
    """``2`` for a uniform size, ``2-2-1-1`` for a per-layer list (``2x1`` rectangular)."""
    if isinstance(motif, int):
        return str(motif)
    return "-".join(f"{m[0]}x{m[1]}" if isinstance(m, (list, tuple)) else str(m) for m in motif)


def to_json(motif: Any) -> Motif:
    """Pairs as lists (records, run ids, config files)."""
    return motif if isinstance(motif, int) else [list(m) if isinstance(m, (list, tuple)) else m for m in motif]


def for_model(motif: Any) -> Any:
    """Pairs as tuples, what :class:`motifcore.MotifMLP` takes."""
    return motif if isinstance(motif, int) else [tuple(m) if isinstance(m, (list, tuple)) else m for m in motif]
