"""The selector's rest point between two mutually invading sets at a fixed temperature.

At a finite ``a`` the loss is not linear in ``c̃``, so a selector split between two sets can do
better than either vertex: with ``c̃ = (1 - w) e_S + w e_T`` and ``K_T <= K_S`` (``T ⊇ S``) the
similarity gives full weight to the positions matching on ``T``, a part ``1 - w`` to those
matching on ``S`` only, a smoothed back-off between the two contexts. On the edge the
replicator moves ``w`` at the rate ``w(1 - w)`` times the fitness gap
``Δf(w) = f_T - f_S`` (:func:`theory.dynamics.finite_temperature.selector_fitness`):

- ``Δf(0) > 0 > Δf(1)`` (each vertex invaded by the other): a stable rest point ``w*`` with
  ``Δf(w*) = 0`` inside the edge, found by Brent's method on the sample mean;
- ``Δf(0) <= 0`` and ``Δf(1) <= 0``: the vertex ``S`` is stable on the edge (``w* = 0``);
  ``Δf(0) >= 0`` and ``Δf(1) >= 0``: the vertex ``T`` (``w* = 1``); ``Δf(0) < 0 < Δf(1)``:
  both vertices are stable, no single rest point (``w* = None``).

The rest point is that of the edge alone (the other sets at 0 weight). Its standard error is
the delta method's, ``SE(Δf(w*)) / |Δf'(w*)|``, with the derivative by a central difference on
the same sample; the ends are decided at ``DECIDABLE_Z`` paired standard errors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq

from theory.criterion.estimates import DECIDABLE_Z
from theory.criterion.values import check_head_set
from theory.dynamics.finite_temperature import selector_fitness
from theory.errors import require
from theory.validation import is_real

__all__ = ["EDGE_XTOL", "EDGE_STEP", "EdgeRestPoint", "edge_rest_point"]

EDGE_XTOL = 1e-6
"""Absolute tolerance of ``w*`` in Brent's method, far below its sampling error (~0.01 at
20000 sequences)."""

EDGE_STEP = 1e-4
"""Half-width of the central difference for ``Δf'(w*)``: ``Δf`` is smooth in ``w`` on the
scale of the whole edge, so the difference error is ~1e-8 relative."""


@dataclass(frozen=True)
class EdgeRestPoint:
    """The replicator's rest point on the edge between two sets at one temperature.

    Attributes:
        first, second: the sets ``S`` (``w = 0``) and ``T`` (``w = 1``).
        temperature: ``a``.
        weight: ``w*``, the weight on ``second``; 0 or 1 at a stable vertex, None when both
            vertices are stable.
        stderr: its standard error (0 at a vertex, nan when None).
        gap_ends: mean ``Δf`` at ``w = 0`` and ``w = 1``.
        gap_ends_se: their paired standard errors.
        decided: both ends' signs at least ``DECIDABLE_Z`` standard errors from 0.
        samples: sequences behind the means.
    """

    first: tuple[int, ...]
    second: tuple[int, ...]
    temperature: float
    weight: float | None
    stderr: float
    gap_ends: tuple[float, float]
    gap_ends_se: tuple[float, float]
    decided: bool
    samples: int

    @property
    def interior(self) -> bool:
        """Whether the rest point splits the selector between the two sets."""
        return self.weight is not None and 0.0 < self.weight < 1.0


def edge_rest_point(tokens: Any, sets: Sequence[Sequence[int]], first: Sequence[int],
                    second: Sequence[int], a: float, *, vocab_size: int, loss: str = "nll"
                    ) -> EdgeRestPoint:
    """The rest point of the replicator on the edge ``first``–``second`` (module docstring).

    Args:
        tokens: integer ``(n, L+1)``, a sample (a Monte Carlo draw, or a training sample).
        sets: the head sets of the selector (offsets), containing both ``first`` and ``second``.
        first: one set of the edge.
        second: the other set of the edge.
        a: the temperature, a finite number.
        vocab_size: ``d``.
        loss: one of :data:`theory.dynamics.finite_temperature.TEMPERATURE_LOSS_KINDS`.

    Returns:
        :class:`EdgeRestPoint`.
    """
    checked = tuple(check_head_set(s) for s in sets)
    i, j = (check_head_set(first), check_head_set(second))
    require(i in checked and j in checked and i != j, "first, second",
            f"two different sets of {checked}", (first, second))
    require(is_real(a) and math.isfinite(a), "a", "a finite number", a)
    lo, hi = checked.index(i), checked.index(j)

    def gaps(w: float) -> np.ndarray:  # (n,) per-sequence f_T - f_S at c̃ = (1-w) e_S + w e_T
        weights = np.zeros(len(checked))
        weights[lo], weights[hi] = 1.0 - w, w
        fit = selector_fitness(tokens, checked, float(a), vocab_size=vocab_size, weights=weights,
                               loss=loss)
        return fit[:, hi] - fit[:, lo]

    ends = [gaps(0.0), gaps(1.0)]
    n = ends[0].shape[0]
    means = tuple(float(g.mean()) for g in ends)
    ses = tuple(float(g.std(ddof=1) / math.sqrt(n)) for g in ends)
    decided = all(abs(m) >= DECIDABLE_Z * s for m, s in zip(means, ses))
    if means[0] > 0 > means[1]:
        w = float(brentq(lambda v: float(gaps(v).mean()), 0.0, 1.0, xtol=EDGE_XTOL))
        at = gaps(w)
        step = min(EDGE_STEP, w, 1.0 - w)
        slope = float((gaps(w + step).mean() - gaps(w - step).mean()) / (2 * step))
        stderr = float(at.std(ddof=1) / math.sqrt(n) / abs(slope)) if slope != 0 else math.inf
        weight: float | None = w
    elif means[0] <= 0 and means[1] <= 0:
        weight, stderr = 0.0, 0.0
    elif means[0] >= 0 and means[1] >= 0:
        weight, stderr = 1.0, 0.0
    else:
        weight, stderr = None, math.nan
    return EdgeRestPoint(i, j, float(a), weight, stderr, means, ses, decided, n)
