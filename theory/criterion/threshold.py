"""How concentrated the initial copier must be for stage 1 to select ``S*`` (docs/theory.md §3.7).

Stage 1 trains the selector against the *initial* copier, so it reaches the argmax of the
criterion at that copier (:func:`theory.criterion.estimates.copier_criterion`), which can differ
from ``S*``, the argmax at the exact copier. :func:`stage1_mass_threshold` scans the initial
copier mass ``m`` that every head puts on its own offset (the rest spread evenly over the other
``M - 1`` offsets, as ``ModelSpec``'s ``w_+``/``w_-`` initialisation does) and reports, on one
shared Monte Carlo sample (common random numbers across masses and sets), the stage-1 set at every
``m`` and the smallest grid mass from which it stays equal to the exact-copier argmax.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from theory.criterion.estimates import copier_criterion
from theory.errors import require
from theory.predictors.copier import exact_attention
from theory.sources.spec import ModelSpec, Source
from theory.validation import is_int, is_real

__all__ = ["DEFAULT_MASSES", "MassThreshold", "mass_attention", "stage1_mass_threshold"]

DEFAULT_MASSES = tuple(float(m) for m in np.round(np.linspace(0.4, 0.99, 12), 4))
"""Initial copier masses scanned by default: from a barely concentrated head (0.4, about the
default ``w_+ = 1`` at ``M = 4``) to the nearly exact copier (0.99)."""


def mass_attention(heads: int, window: int, mass: float) -> np.ndarray:
    """``(H, M)`` copier attention: ``mass`` on each head's own offset, the rest spread evenly.

    Args:
        heads: H >= 1.
        window: M >= H.
        mass: in ``(0, 1]``; exactly 1 when ``M = 1``.
    """
    require(is_int(heads) and is_int(window) and 1 <= heads <= window, "sizes",
            "integers 1 <= H <= M", (heads, window))
    require(is_real(mass) and 0.0 < float(mass) <= 1.0
            and (window > 1 or float(mass) == 1.0), "mass",
            "a number in (0, 1] (1 when M = 1)", mass)
    if window == 1:
        return exact_attention(heads, window)
    att = np.full((heads, window), (1.0 - float(mass)) / (window - 1))  # (H, M)
    att[np.arange(heads), np.arange(heads)] = float(mass)
    return att


@dataclass(frozen=True)
class MassThreshold:
    """What :func:`stage1_mass_threshold` found.

    Attributes:
        masses: ``(K,)`` the scanned masses, increasing.
        stage1_sets: ``(K,)`` the argmax set of the criterion at each mass.
        margins_se: ``(K,)`` its lead over the runner-up in standard errors of the paired
            per-sequence difference (inf with a single set).
        exact_set: the argmax at the exact copier on the same sequences (``S*`` of this sample).
        threshold: the smallest scanned mass from which every larger scanned mass selects
            ``exact_set``, or None when the largest does not.
        samples: Monte Carlo sequences behind every value.
    """

    masses: tuple[float, ...]
    stage1_sets: tuple[tuple[int, ...], ...]
    margins_se: tuple[float, ...]
    exact_set: tuple[int, ...]
    threshold: float | None
    samples: int


def _argmax_and_margin(per_sample: np.ndarray, sets: Sequence[tuple[int, ...]]
                       ) -> tuple[tuple[int, ...], float]:
    """Argmax set of the mean signal ``(samples, n_sets)`` and its paired lead in SE."""
    means = per_sample.mean(axis=0)  # (n_sets,)
    order = np.argsort(-means, kind="stable")
    best = int(order[0])
    if len(sets) == 1:
        return sets[best], float("inf")
    diff = per_sample[:, best] - per_sample[:, int(order[1])]  # (samples,)
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    return sets[best], float(diff.mean() / se) if se > 0 else float("inf")


def stage1_mass_threshold(source: Source, spec: ModelSpec, *, seq_len: int,
                          masses: Sequence[float] = DEFAULT_MASSES, samples: int = 1000,
                          rng: np.random.Generator) -> MassThreshold:
    """The stage-1 set at each initial copier mass, and the mass above which it is ``S*``.

    Args:
        source: the source.
        spec: the model sizes (H, M, D give the head sets; its own initialisation is not used).
        seq_len: L, as for :func:`theory.criterion.estimates.copier_criterion`.
        masses: the masses to scan, each in ``(0, 1]``; sorted increasing here.
        samples: Monte Carlo sequences, >= 2, shared by every mass (common random numbers).
        rng: numpy generator, the only randomness (one seed is drawn from it).

    Returns:
        :class:`MassThreshold`.

    Raises:
        InductionHeadsError: on bad sizes, masses, length, sample count or rng.
    """
    require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", type(spec).__name__)
    require(isinstance(rng, np.random.Generator), "rng", "a numpy.random.Generator",
            type(rng).__name__)
    grid = sorted(float(m) for m in masses)
    require(len(grid) >= 1, "masses", "one or more masses", masses)
    H, M, sets = spec.heads, spec.window, spec.sets
    seed = int(rng.integers(2**63))

    def signal(attention: np.ndarray) -> np.ndarray:
        est = copier_criterion(source, sets, seq_len, attention, samples=samples,
                               rng=np.random.default_rng(seed))
        return est.per_sample  # (samples, n_sets)

    exact_set, _ = _argmax_and_margin(signal(exact_attention(H, M)), sets)
    chosen, margins = [], []
    for m in grid:
        best, margin = _argmax_and_margin(signal(mass_attention(H, M, m)), sets)
        chosen.append(best)
        margins.append(margin)
    threshold = None
    for k in range(len(grid) - 1, -1, -1):
        if chosen[k] != exact_set:
            break
        threshold = grid[k]
    return MassThreshold(tuple(grid), tuple(chosen), tuple(margins), exact_set, threshold,
                         int(samples))
