"""Source families the notebooks sweep, and the selection the theory predicts over them.

**Mixture family** (docs/theory.md §1): ``π(·|z) = (1-w)·π_1(·|x_{l-1}) + w·π_12(·|x_{l-1},
x_{l-2})`` with both components' rows i.i.d. Dirichlet(α), so ``P = (1, 2)`` always but the
second parent carries weight ``w``: :func:`mixture_family`. :func:`predicted_selection_map` ranks
the head sets by ``G``, ``G_L`` or ``G_L`` at a spec's initial copier (the set stage 1 reaches,
docs/theory.md §3.7) on a ``(w, α)`` grid, with every point's margin in standard errors of the
paired difference and, for a training-sample size ``n``, in units of that sample's noise; a point
is decidable by the rule of :func:`theory.predict_limit` (both at least
:data:`theory.limit.prediction.DECIDABLE_Z`). A budget makes the Monte Carlo adaptive: undecided points draw
more until they decide or spend it.

**The official run** (docs/theory.md §4): :data:`OFFICIAL_MODEL`, the main-figure
initialisation in this library's window convention, and :data:`OFFICIAL_REPORTED`, the numbers
its saved trajectory reports (for comparison, never used in training).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from theory.criterion.estimates import (
    CriterionEstimate,
    copier_criterion,
    expected_criterion,
    finite_length_criterion,
    sample_until_decided,
)
from theory.errors import require
from theory.limit.prediction import DECIDABLE_Z
from theory.predictors.copier import copier_attention
from theory.sources.spec import Mixture, MixtureComponent, ModelSpec, Source, head_sets
from theory.validation import as_int, is_real

__all__ = ["mixture_family", "SelectionMap", "predicted_selection_map", "OFFICIAL_MODEL",
           "OFFICIAL_REPORTED", "official_full_spec"]

OFFICIAL_MODEL = ModelSpec(heads=3, window=3, degree=2, w_plus=3.0, w_minus=0.1, c_init=0.01,
                           a_init=0.01)
"""docs/theory.md §4's main-figure initialisation in our window convention (head h starts on offset h of
the shared window 1..M, M = H = 3; the official head h sees offsets h+1..h+H instead)."""

OFFICIAL_REPORTED = {"lr": 1.0, "steps": 50_000, "sequences": 10_000, "train_sequences": 9_000,
                     "seq_len": 100, "selected_set": (1, 2), "c_tilde_099_by_step": 9,
                     "final_a": 11.35}
"""The official main-figure run as docs/theory.md §4 reports it (for comparison, not used in training)."""


def official_full_spec(w_plus: float) -> ModelSpec:
    """The authors' full model's sizes and initialisation (their appendix runs): the band
    windows of :meth:`theory.ModelSpec.band` with H = 3, D = 2, ``w_-`` = 0.01 and
    ``C = a = 0.01``; ``w_plus`` is the run's ``w_+`` (the authors ran 1 and 3)."""
    return ModelSpec.band(3, 2, w_plus=w_plus, w_minus=0.01, c_init=0.01, a_init=0.01)


def mixture_family(weight: float, alpha: float, *, vocab_size: int = 3) -> Source:
    """``(1-w)·Dir(α) over parent {1} + w·Dir(α) over parents {1, 2}`` on ``P = (1, 2)``.

    ``w = 1`` is the paper's Dirichlet trigram source (a single component); ``w`` near 0 makes
    ``x_{l-2}`` almost irrelevant.

    Args:
        weight: ``w`` in (0, 1], the weight of the component that uses both parents.
        alpha: the components' concentration ``α > 0``.
        vocab_size: ``d``.
    """
    require(is_real(weight)
            and 0 < weight <= 1, "weight", "a number w in (0, 1]", weight)
    comps = [MixtureComponent((1, 2), float(weight), alpha)]
    if weight < 1:
        comps.insert(0, MixtureComponent((1,), 1.0 - float(weight), alpha))
    return Source(vocab_size, (1, 2), Mixture(tuple(comps)))


@dataclass(frozen=True, eq=False)
class SelectionMap:
    """The predicted selection on a grid of mixture priors (:func:`mixture_family`).

    Attributes:
        weights: ``(n_w,)`` second-parent weights ``w``.
        alphas: ``(n_a,)`` concentrations ``α``.
        sets: the ranked head sets (:func:`theory.sources.spec.head_sets` order).
        criterion: ``(n_w, n_a, n_sets)`` values of ``G``, ``G_L`` or ``G_L`` at a copier.
        stderr: ``(n_w, n_a, n_sets)`` their Monte Carlo standard errors.
        kind: ``"G"``, ``"G_L"`` (exact copier) or ``"G_L_copier"`` (the initial copier of a
            spec, docs/theory.md §3.7).
        seq_len: ``L`` for the ``G_L`` kinds, None for ``G``.
        margin_se: ``(n_w, n_a)`` best minus runner-up in standard errors of their *paired*
            difference (every set is scored on the same samples); inf for an exact estimate.
        samples: ``(n_w, n_a)`` kernels or sequences each point used (more than the first draw
            where adaptive sampling extended it).
        margin_train_noise: ``(n_w, n_a)`` the margin over ``SD_seq(g_best - g_second) /
            sqrt(train_sequences)``, the noise of a training sample; None without
            ``train_sequences``.
        train_sequences: the training-sample size ``n`` behind ``margin_train_noise``, or None.
        max_samples: the adaptive budget per point (the first draw's size when not adaptive).
    """

    weights: np.ndarray
    alphas: np.ndarray
    sets: tuple[tuple[int, ...], ...]
    criterion: np.ndarray
    stderr: np.ndarray
    kind: str
    seq_len: int | None
    margin_se: np.ndarray
    samples: np.ndarray
    margin_train_noise: np.ndarray | None
    train_sequences: int | None
    max_samples: int

    @property
    def selected_index(self) -> np.ndarray:
        """``(n_w, n_a)`` index into ``sets`` of ``argmax`` of the criterion."""
        return np.argmax(self.criterion, axis=-1)

    def selected_set(self, i: int, j: int) -> tuple[int, ...]:
        """The argmax at grid point ``(weights[i], alphas[j])``."""
        return self.sets[int(self.selected_index[i, j])]

    def margin_in_se(self) -> np.ndarray:
        """``(n_w, n_a)``: best minus runner-up in standard errors of the *paired* difference.

        The same array as :attr:`margin_se` (a copy): the sets share their samples, so the
        difference's own standard error is the unit, not the two sets' errors combined.
        """
        return np.array(self.margin_se, dtype=np.float64)

    @property
    def decidable(self) -> np.ndarray:
        """``(n_w, n_a)`` bool: the library's rule (:data:`theory.limit.prediction.DECIDABLE_Z`).

        ``margin_se >= DECIDABLE_Z`` and, with a training-sample size, also
        ``margin_train_noise >= DECIDABLE_Z``.
        """
        ok = self.margin_se >= DECIDABLE_Z  # (n_w, n_a)
        if self.margin_train_noise is not None:
            ok = ok & (self.margin_train_noise >= DECIDABLE_Z)
        return ok


def _in_units(margin: float, unit: float) -> float:
    """``margin / unit``; an exact estimate (unit 0) gives inf for a positive margin, else 0."""
    if unit > 0:
        return margin / unit
    return math.inf if margin > 0 else 0.0


def _margins(est: CriterionEstimate, train_sequences: int | None) -> tuple[float, float | None]:
    """The best set's margin over the runner-up in paired SE and in training-noise units."""
    values = np.asarray(est.values, dtype=np.float64)  # (n_sets,)
    best, second = (int(k) for k in np.argsort(-values, kind="stable")[:2])
    margin = float(values[best] - values[second])
    margin_se = _in_units(margin, est.difference_stderr(best, second))
    if train_sequences is None:
        return margin_se, None
    diff = est.per_sample[:, best] - est.per_sample[:, second]  # (samples,)
    return margin_se, _in_units(margin, float(diff.std(ddof=1)) / math.sqrt(train_sequences))


def _drawer(source: Source, sets: tuple[tuple[int, ...], ...], seq_len: int | None,
            attention: np.ndarray | None, rng: np.random.Generator
            ) -> Callable[[int], CriterionEstimate]:
    """``k ↦`` the criterion over ``k`` fresh kernels (``G``) or sequences (the ``G_L`` kinds)."""
    if seq_len is None:
        return lambda k: expected_criterion(source, sets, samples=k, rng=rng)
    if attention is None:
        return lambda k: finite_length_criterion(source, sets, seq_len, samples=k, rng=rng)
    return lambda k: copier_criterion(source, sets, seq_len, attention, samples=k, rng=rng)


def _model_sizes(heads: int | None, degree: int | None, spec: ModelSpec | None, copier: str
                 ) -> tuple[int, int, np.ndarray | None]:
    """``H``, ``D`` and the copier attention to rank at (None: the exact copier)."""
    require(copier in _COPIERS, "copier", f"one of {_COPIERS}", copier)
    if spec is None:
        require(copier == "exact", "spec", "a theory.ModelSpec for copier='initial'", spec)
        return 3 if heads is None else heads, 2 if degree is None else degree, None
    require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec or None",
            type(spec).__name__)
    require(heads in (None, spec.heads) and degree in (None, spec.degree), "heads, degree",
            f"None or the spec's (H, D) = ({spec.heads}, {spec.degree})", (heads, degree))
    return spec.heads, spec.degree, copier_attention(spec) if copier == "initial" else None


_COPIERS = ("exact", "initial")


def predicted_selection_map(weights: Sequence[float], alphas: Sequence[float], *,
                            heads: int | None = None, degree: int | None = None,
                            vocab_size: int = 3, seq_len: int | None = None,
                            samples: int = 1000, max_samples: int | None = None,
                            train_sequences: int | None = None, spec: ModelSpec | None = None,
                            copier: str = "exact", rng: np.random.Generator) -> SelectionMap:
    """Rank the head sets of TF(M, H, d, D) by ``G`` (or ``G_L``) at every ``(w, α)``.

    Args:
        weights: second-parent weights ``w`` in (0, 1].
        alphas: concentrations ``α > 0``.
        heads: ``H`` (3 without ``spec``; with one, None or the spec's); the sets are
            :func:`theory.sources.spec.head_sets` ``(H, D)``.
        degree: ``D`` (2 without ``spec``; with one, None or the spec's).
        vocab_size: ``d``.
        seq_len: ``L`` to rank by the finite-length ``G_L`` (what a training sample of length L
            sees); None for the ``L → ∞`` criterion ``G``.
        samples: kernels (``G``) or sequences (``G_L``) of each point's first draw, >= 2.
        max_samples: adaptive budget per point: a point short of
            :data:`theory.limit.prediction.DECIDABLE_Z` paired SE draws ``samples`` more at a time
            (:func:`theory.criterion.estimates.sample_until_decided`) up to this many in all;
            None for a fixed sample of ``samples``.
        train_sequences: training-sample size ``n`` for ``margin_train_noise``; needs
            ``seq_len`` (the noise is that of ``n`` sequences of length ``L``).
        spec: the model, for its ``H``, ``D`` and, with ``copier="initial"``, its initial
            copier attention (:func:`theory.predictors.copier.copier_attention`).
        copier: ``"exact"`` ranks by ``G`` / ``G_L``; ``"initial"`` by ``G_L`` at the spec's
            initial copier (kind ``"G_L_copier"``), the set stage 1 of training from that
            initialisation reaches (docs/theory.md §3.7); needs ``spec`` and ``seq_len``.
        rng: numpy generator, the only randomness: first every point's draw of ``samples``
            in row-major order, then, with a budget, the extra draws of the undecided points
            in row-major order (one point to its end before the next). A point decided at its
            first draw is therefore the same with or without a budget.

    Returns:
        The :class:`SelectionMap`.

    Raises:
        InductionHeadsError: on an empty grid, a bad ``w`` / ``α`` / ``copier`` / ``spec``,
            or bad ``samples`` / ``max_samples`` / ``train_sequences`` / ``seq_len`` / ``rng``.
    """
    require(len(weights) >= 1 and len(alphas) >= 1, "grid",
            "at least one weight and one alpha", (weights, alphas))
    heads, degree, attention = _model_sizes(heads, degree, spec, copier)
    require(copier == "exact" or seq_len is not None, "seq_len",
            "a context length L for copier='initial' (the copier's G_L)", seq_len)
    samples = as_int(samples, "samples", minimum=2)
    budget = samples if max_samples is None else as_int(
        max_samples, f"max_samples (at least samples = {samples})", minimum=samples)
    if train_sequences is not None:
        train_sequences = as_int(train_sequences, "train_sequences", minimum=1)
        require(seq_len is not None, "seq_len",
                "a context length L when train_sequences is given (per-sequence noise)", seq_len)
    sets = head_sets(heads, degree)
    draws = [_drawer(mixture_family(w, a, vocab_size=vocab_size), sets, seq_len, attention, rng)
             for w in weights for a in alphas]  # row-major
    first = [draw(samples) for draw in draws]
    ests = [sample_until_decided(est, draw, chunk=samples, budget=budget, z=DECIDABLE_Z)
            for est, draw in zip(first, draws)]
    grid = (len(weights), len(alphas))
    units = [_margins(est, train_sequences) for est in ests]
    return SelectionMap(
        np.asarray(weights, float), np.asarray(alphas, float), sets,
        np.stack([est.values for est in ests]).reshape(grid + (len(sets),)),  # (n_w, n_a, n_sets)
        np.stack([est.stderr for est in ests]).reshape(grid + (len(sets),)),  # (n_w, n_a, n_sets)
        ests[0].kind, seq_len,
        np.array([u[0] for u in units]).reshape(grid),  # (n_w, n_a)
        np.array([est.samples for est in ests]).reshape(grid),  # (n_w, n_a)
        None if train_sequences is None else np.array([u[1] for u in units]).reshape(grid),
        train_sequences, budget)
