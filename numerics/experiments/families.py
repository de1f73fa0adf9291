"""Source families the notebooks sweep, and the selection the theory predicts over them.

**Mixture family** (docs/theory.md §1): ``π(·|z) = (1-w)·π_1(·|x_{l-1}) + w·π_12(·|x_{l-1},
x_{l-2})`` with both components' rows i.i.d. Dirichlet(α), so ``P = (1, 2)`` always but the
second parent carries weight ``w``: :func:`mixture_family`. :func:`predicted_selection_map` ranks
the head sets by ``G`` (or ``G_L``) on a ``(w, α)`` grid.

**The official run** (docs/theory.md §4): :data:`OFFICIAL_MODEL`, the main-figure
initialisation in this library's window convention, and :data:`OFFICIAL_REPORTED`, the numbers
its saved trajectory reports (for comparison, never used in training).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from theory.criterion_estimates import expected_criterion, finite_length_criterion
from theory.errors import require
from theory.spec import Mixture, MixtureComponent, ModelSpec, Source, head_sets

__all__ = ["mixture_family", "SelectionMap", "predicted_selection_map", "OFFICIAL_MODEL",
           "OFFICIAL_REPORTED"]

OFFICIAL_MODEL = ModelSpec(heads=3, window=3, degree=2, w_plus=3.0, w_minus=0.1, c_init=0.01,
                           a_init=0.01)
"""docs/theory.md §4's main-figure initialisation in our window convention (head h starts on offset h of
the shared window 1..M, M = H = 3; the official head h sees offsets h+1..h+H instead)."""

OFFICIAL_REPORTED = {"lr": 1.0, "steps": 50_000, "sequences": 10_000, "train_sequences": 9_000,
                     "seq_len": 100, "selected_set": (1, 2), "c_tilde_099_by_step": 9,
                     "final_a": 11.35}
"""The official main-figure run as docs/theory.md §4 reports it (for comparison, not used in training)."""


def mixture_family(weight: float, alpha: float, *, vocab_size: int = 3) -> Source:
    """``(1-w)·Dir(α) over parent {1} + w·Dir(α) over parents {1, 2}`` on ``P = (1, 2)``.

    ``w = 1`` is the paper's Dirichlet trigram source (a single component); ``w`` near 0 makes
    ``x_{l-2}`` almost irrelevant.

    Args:
        weight: ``w`` in (0, 1], the weight of the component that uses both parents.
        alpha: the components' concentration ``α > 0``.
        vocab_size: ``d``.
    """
    require(isinstance(weight, (int, float)) and not isinstance(weight, bool)
            and 0 < weight <= 1, "weight", "a number w in (0, 1]", weight)
    comps = [MixtureComponent((1, 2), float(weight), alpha)]
    if weight < 1:
        comps.insert(0, MixtureComponent((1,), 1.0 - float(weight), alpha))
    return Source(vocab_size, (1, 2), Mixture(tuple(comps)))


@dataclass(frozen=True, eq=False)
class SelectionMap:
    """Predicted S* on a grid of mixture priors (:func:`mixture_family`).

    Attributes:
        weights: ``(n_w,)`` second-parent weights ``w``.
        alphas: ``(n_a,)`` concentrations ``α``.
        sets: the ranked head sets (:func:`theory.spec.head_sets` order).
        criterion: ``(n_w, n_a, n_sets)`` values of ``G`` (or ``G_L``).
        stderr: ``(n_w, n_a, n_sets)`` their Monte Carlo standard errors.
        kind: ``"G"`` or ``"G_L"``.
        seq_len: ``L`` for ``G_L``, None for ``G``.
    """

    weights: np.ndarray
    alphas: np.ndarray
    sets: tuple[tuple[int, ...], ...]
    criterion: np.ndarray
    stderr: np.ndarray
    kind: str
    seq_len: int | None

    @property
    def selected_index(self) -> np.ndarray:
        """``(n_w, n_a)`` index into ``sets`` of ``argmax`` of the criterion."""
        return np.argmax(self.criterion, axis=-1)

    def selected_set(self, i: int, j: int) -> tuple[int, ...]:
        """S* at grid point ``(weights[i], alphas[j])``."""
        return self.sets[int(self.selected_index[i, j])]

    def margin_in_se(self) -> np.ndarray:
        """``(n_w, n_a)``: best minus runner-up, in units of their combined standard error."""
        top2 = np.sort(self.criterion, axis=-1)[..., -2:]  # (n_w, n_a, 2)
        order = np.argsort(self.criterion, axis=-1)[..., -2:]  # (n_w, n_a, 2)
        se = np.take_along_axis(self.stderr, order, axis=-1)  # (n_w, n_a, 2)
        unit = np.hypot(se[..., 0], se[..., 1])  # (n_w, n_a)
        gap = top2[..., 1] - top2[..., 0]
        return np.divide(gap, unit, out=np.full(gap.shape, np.inf), where=unit > 0)


def predicted_selection_map(weights: Sequence[float], alphas: Sequence[float], *,
                            heads: int = 3, degree: int = 2, vocab_size: int = 3,
                            seq_len: int | None = None, samples: int = 1000,
                            rng: np.random.Generator) -> SelectionMap:
    """Rank the head sets of TF(M, H, d, D) by ``G`` (or ``G_L``) at every ``(w, α)``.

    Args:
        weights: second-parent weights ``w`` in (0, 1].
        alphas: concentrations ``α > 0``.
        heads: ``H``; the sets are :func:`theory.spec.head_sets` ``(H, D)``.
        degree: ``D``.
        vocab_size: ``d``.
        seq_len: ``L`` to rank by the finite-length ``G_L`` (what a training sample of length L
            sees); None for the ``L → ∞`` criterion ``G``.
        samples: kernels (``G``) or sequences (``G_L``) per grid point.
        rng: numpy generator, the only randomness (grid points in row-major order).

    Returns:
        The :class:`SelectionMap`.
    """
    require(len(weights) >= 1 and len(alphas) >= 1, "grid",
            "at least one weight and one alpha", (weights, alphas))
    sets = head_sets(heads, degree)
    shape = (len(weights), len(alphas), len(sets))
    values, errors = np.zeros(shape), np.zeros(shape)  # (n_w, n_a, n_sets)
    for i, w in enumerate(weights):
        for j, a in enumerate(alphas):
            src = mixture_family(w, a, vocab_size=vocab_size)
            if seq_len is None:
                est = expected_criterion(src, sets, samples=samples, rng=rng)
            else:
                est = finite_length_criterion(src, sets, seq_len, samples=samples, rng=rng)
            values[i, j], errors[i, j] = est.values, est.stderr
    return SelectionMap(np.asarray(weights, float), np.asarray(alphas, float), sets, values,
                        errors, "G" if seq_len is None else "G_L", seq_len)
