"""The probe's attention read-outs: frozen dataclasses with a JSON round trip.

:class:`OffsetProfile` is a copier (first-layer) head's mean attention by relative offset, with
the mass it puts on its own position beside the profile; :class:`MatchCorrelation` is the
attention of the query against the GIH match indicator on ``S*``. Heads are numbered from 1, as
everywhere in the library. :mod:`numerics.probing.attention` computes them from the patterns;
``to_dict`` is :func:`numerics.probing.fields.plain_fields`, ``from_dict`` inverts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from numerics.probing.fields import decode_float, decode_set, plain_fields

__all__ = ["OffsetProfile", "MatchCorrelation"]


@dataclass(frozen=True)
class OffsetProfile:
    """Mean attention of one copier (first-layer) head by relative offset ``i = 1..M``.

    Read as :mod:`numerics.probing.attention` says for the entry's layout.

    Attributes:
        name: the attention entry's name.
        head: the head's number along the entry's head axis, from 1 (the library's numbering
            of heads and offsets).
        profile: ``(M,)`` mean attention on the key ``l - i`` over sequences and the positions
            ``l = M+1..L`` (every offset valid); the copier's ``σ_h(·, i)`` for an ``(H, M)``
            entry.
        peak_offset: ``argmax_i profile`` (1-based offset; the position itself is not a
            candidate).
        self_mass: mean attention on the position itself (offset 0) over the same sequences
            and positions, left out of ``profile``; 0 for a copier whose window is ``1..M``.
    """

    name: str
    head: int
    profile: tuple[float, ...]
    peak_offset: int
    self_mass: float

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OffsetProfile:
        return cls(name=str(data["name"]), head=int(data["head"]),
                   profile=tuple(decode_float(v) for v in data["profile"]),
                   peak_offset=int(data["peak_offset"]), self_mass=decode_float(data["self_mass"]))


@dataclass(frozen=True)
class MatchCorrelation:
    """Attention of the query over keys ``l = 1..L`` against ``Π_{h∈S} 1{x_{l-h} = x_{L+1-h}}``.

    Attributes:
        name: the attention entry's name.
        head: the head's number along the entry's head axis, from 1; None for an ``(n, L)``
            entry.
        head_set: ``S`` (theory's ``S*``).
        correlation: mean over sequences of the Pearson correlation of attention and indicator,
            over the sequences where both vary (None when none does).
        correlation_se: its standard error (None with fewer than two such sequences).
        sequences: how many sequences entered ``correlation``.
        match_mass: mean attention mass on the matching keys (1 for the ``a = ∞`` GIH whenever
            a key matches).
    """

    name: str
    head: int | None
    head_set: tuple[int, ...]
    correlation: float | None
    correlation_se: float | None
    sequences: int
    match_mass: float

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MatchCorrelation:
        return cls(name=str(data["name"]),
                   head=None if data["head"] is None else int(data["head"]),
                   head_set=decode_set(data["head_set"]), correlation=decode_float(data["correlation"]),
                   correlation_se=decode_float(data["correlation_se"]),
                   sequences=int(data["sequences"]), match_mass=decode_float(data["match_mass"]))
