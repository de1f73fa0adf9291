"""Estimates of the criterion under a source: ``E_π G(S)``, the finite-length ``G_L(S)``, and
``G_L`` at a given copier (the signal stage 1 sees from the initial copier, docs/theory.md §3.7).

The prior expectation ``E_π G(S)`` (or ``E_π χ²(S)``) is a Monte Carlo mean over kernels drawn from
the prior of the per-kernel values of :mod:`theory.criterion.values`; a prior with finitely many
kernels (Fixed, FiniteMixture, Switching with fixed component kernels:
:func:`theory.sources.kernels.kernel_atoms`) gives it exactly, as the weighted mean of its
kernels' values. Under a Switching or FiniteMixture prior a draw is a structure, then a kernel
given it, so the same mean is the expectation over both (docs/theory.md §3.9).
The finite-length criterion ``G_L(S)`` is the mean over sequences of the stage-1 signal
``-∂ℓ/∂a`` at ``a = 0`` for the exact copier (see :func:`stage1_signal`); ``G_L -> G`` as L grows,
from below on fast-mixing chains and from above, slowly, where many chains mix slowly (the
paper's alpha=0.1); values in docs/results.md §8.
:func:`copier_criterion` replaces the exact copier by a copier attention ``σ`` (:mod:`theory.predictors.copier`);
at the exact attention it is ``G_L`` itself. All return a :class:`CriterionEstimate` (means,
standard errors, per-sample values).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from theory.criterion.values import CRITERION_KINDS, check_head_set, criterion_values
from theory.errors import require
from theory.predictors.copier import (
    check_attention,
    head_similarity,
    set_similarity,
    soft_context_similarity,
)
from theory.predictors.reference import context_similarity
from theory.sources.kernels import kernel_atoms, sample_kernels
from theory.sources.priors import Fixed
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import Source
from theory.validation import is_int

__all__ = [
    "DECIDABLE_Z",
    "MC_KERNEL_FLOOR",
    "CriterionEstimate",
    "expected_criterion",
    "stage1_signal",
    "finite_length_criterion",
    "copier_criterion",
    "sample_until_decided",
    "signal_from_similarity",
]

DECIDABLE_Z = 3.0
"""The margin must be >= 3 standard errors (of the estimate, and of a training sample when
``train_sequences`` is given) for a ranking to count as decidable: a one-sided 3σ gap. The rule
of every ranking (:class:`theory.limit.ranking.Ranking`, :func:`theory.dynamics.first_move.predict_first_move`)
and of :func:`sample_until_decided`'s callers."""

MC_KERNEL_FLOOR = 1e-30
"""Floor on prior-drawn kernel entries inside :func:`expected_criterion` only (rows renormalised).

Dirichlet draws with tiny alpha underflow to exact zeros (d=3, alpha=0.01: ~0.1% of entries), which
can make the chain reducible; the floor restores primitivity and moves a row by at most d·1e-30.
Products of up to r floors stay far from underflow in the GTH solve. Kernels whose chain is governed
by entries below the floor (alpha <~ 0.02) get the floor's stationary law instead of the true one."""


@dataclass(frozen=True, eq=False)
class CriterionEstimate:
    """Monte Carlo (or exact) estimates of a criterion for several head sets.

    Attributes:
        sets: the head sets, in the caller's order.
        values: ``(n_sets,)`` means.
        stderr: ``(n_sets,)`` standard errors of the means (0 for an exact value).
        samples: kernels (G, chi2) or sequences (G_L) averaged; 1 for an exact value.
        kind: ``"G"``, ``"chi2"``, ``"G_L"`` (exact copier) or ``"G_L_copier"`` (a given
            copier attention).
        per_sample: ``(samples, n_sets)`` per-kernel / per-sequence values, or None.
    """

    sets: tuple[tuple[int, ...], ...]
    values: np.ndarray
    stderr: np.ndarray
    samples: int
    kind: str
    per_sample: np.ndarray | None = None

    @property
    def best(self) -> tuple[int, ...]:
        """The set with the largest value (first one on ties)."""
        return self.sets[int(np.argmax(self.values))]

    def difference_stderr(self, i: int, j: int) -> float:
        """Standard error of ``values[i] - values[j]`` (paired over samples; 0 when exact)."""
        if self.per_sample is None or self.samples < 2:
            return float(np.hypot(self.stderr[i], self.stderr[j]))
        diff = self.per_sample[:, i] - self.per_sample[:, j]  # (samples,)
        return float(diff.std(ddof=1) / np.sqrt(self.samples))

    def extended(self, more: CriterionEstimate) -> CriterionEstimate:
        """This estimate pooled with ``more`` (further samples of the same sets and kind).

        Raises:
            InductionHeadsError: when the sets or kinds differ or either lacks ``per_sample``.
        """
        require(isinstance(more, CriterionEstimate) and more.sets == self.sets
                and more.kind == self.kind, "more", f"an estimate of kind {self.kind!r} for "
                f"the sets {self.sets}", getattr(more, "sets", type(more).__name__))
        require(self.per_sample is not None and more.per_sample is not None, "per_sample",
                "per-sample values on both estimates", "an exact estimate")
        return _estimate(self.sets, np.concatenate([self.per_sample, more.per_sample]),
                         self.kind)


def sample_until_decided(first: CriterionEstimate, draw: Callable[[int], CriterionEstimate], *,
                         chunk: int, budget: int, z: float) -> CriterionEstimate:
    """Adaptive Monte Carlo: pool further draws into ``first`` until it decides or runs out.

    Decided means the best set leads the runner-up by at least ``z`` standard errors of the
    paired difference. Each round draws ``chunk`` new samples (``draw(k)`` returns an estimate
    over ``k`` fresh samples of the same sets and kind, e.g. from the same generator), so a
    draw never needs more memory than ``chunk`` samples; at most ``budget`` samples in all.
    An estimate that decides at ``first`` is returned unchanged, with nothing drawn.

    Returns:
        The pooled :class:`CriterionEstimate` (``samples`` says how many it used).
    """
    est = first
    while est.samples < budget:
        values = np.asarray(est.values, dtype=np.float64)  # (n_sets,)
        if values.size < 2:
            break
        order = np.argsort(-values, kind="stable")
        best, second = int(order[0]), int(order[1])
        unit = est.difference_stderr(best, second)
        gap = float(values[best] - values[second])
        if (gap / unit if unit > 0 else (np.inf if gap > 0 else 0.0)) >= z:
            break
        more = min(int(chunk), int(budget) - est.samples)
        if more < 2:
            break
        est = est.extended(draw(more))
    return est


def _estimate(sets: tuple[tuple[int, ...], ...], per: np.ndarray, kind: str
              ) -> CriterionEstimate:
    m = per.shape[0]
    err = per.std(axis=0, ddof=1) / np.sqrt(m) if m > 1 else np.zeros(per.shape[1])
    values = per.mean(axis=0)  # (n_sets,)
    for arr in (per, err, values):
        arr.setflags(write=False)
    return CriterionEstimate(sets, values, err, m, kind, per)


def _check_common(source: Any, sets: Any, samples: Any, rng: Any, *, needs_rng: bool = True
                  ) -> tuple[tuple[int, ...], ...]:
    require(isinstance(source, Source), "source", "a theory.sources.spec.Source",
            type(source).__name__)
    if needs_rng or rng is not None:
        require(isinstance(rng, np.random.Generator), "rng",
                "a numpy.random.Generator" + ("" if needs_rng else " or None"),
                type(rng).__name__)
    require(is_int(samples)
            and samples >= 2, "samples", "an integer >= 2", samples)
    out = tuple(check_head_set(s) for s in sets)
    require(len(out) >= 1, "sets", "at least one head set", sets)
    return out


def expected_criterion(source: Source, sets: Any, *, samples: int = 1000,
                       rng: np.random.Generator | None = None, kind: str = "G",
                       on_chunk: Callable[[int], None] | None = None) -> CriterionEstimate:
    """Prior expectation ``E_π[G(S)]`` (or χ² MI) for every set in ``sets``.

    Monte Carlo over ``samples`` kernels from the prior (each sequence's structure, then its
    kernel), entries floored at :data:`MC_KERNEL_FLOOR`. Exact (``stderr = 0``,
    ``samples = 1``) for a prior with finitely many kernels
    (:func:`theory.sources.kernels.kernel_atoms`): the weighted mean of their values, the
    kernels of a FiniteMixture or Switching prior floored like drawn ones, a Fixed kernel as
    given.

    ``rng`` may be None only for such a prior, where nothing is random. ``on_chunk`` is called
    with the number of kernels of each chunk once done
    (:func:`theory.criterion.values.criterion_values`), for a progress bar.

    Returns:
        :class:`CriterionEstimate` of kind ``"G"`` or ``"chi2"`` with ``per_sample``.
    """
    atoms = kernel_atoms(source) if isinstance(source, Source) else None
    sets = _check_common(source, sets, samples, rng, needs_rng=atoms is None)
    require(kind in CRITERION_KINDS, "kind", f"one of {CRITERION_KINDS}", kind)
    if atoms is not None:
        kernels, weights = atoms  # (N,) + (d,)*k + (d,), (N,)
        if not isinstance(source.prior, Fixed):
            kernels = _floored(kernels)
        per = criterion_values(kernels, source.parents, sets, kind=kind, on_chunk=on_chunk)
        return _estimate(sets, (weights @ per)[None], kind)  # (1, n_sets): exact
    kernels = _floored(sample_kernels(source, int(samples), rng=rng))  # (n,) + (d,)*k + (d,)
    return _estimate(sets, criterion_values(kernels, source.parents, sets, kind=kind,
                                            on_chunk=on_chunk), kind)


def _floored(kernels: np.ndarray) -> np.ndarray:
    """``kernels`` with entries floored at :data:`MC_KERNEL_FLOOR`, rows renormalised (in place)."""
    kernels = np.maximum(kernels, MC_KERNEL_FLOOR, out=kernels)
    kernels /= kernels.sum(axis=-1, keepdims=True)
    return kernels


def signal_from_similarity(tokens: np.ndarray, sim: np.ndarray) -> np.ndarray:
    """``g = Σ_l 1{x_l = e}(s_l - s̄)/N_e`` (0 when ``N_e = 0``): tokens ``(n, L+1)``, ``s`` ``(n, L)``."""
    hit = (tokens[:, :-1] == tokens[:, -1:]).astype(np.float64)  # (n, L): 1{x_l = e}
    count = hit.sum(axis=1)  # (n,)
    centred = sim - sim.mean(axis=1, keepdims=True)  # (n, L)
    num = np.sum(hit * centred, axis=1)  # (n,)
    return np.divide(num, count, out=np.zeros_like(num), where=count > 0)


def stage1_signal(tokens: np.ndarray, head_set: tuple[int, ...], attention: Any = None
                  ) -> np.ndarray:
    """Per-sequence stage-1 signal ``-∂ℓ/∂a`` at ``a = 0`` (``c̃`` one-hot on ``S``).

    With target ``e = x_{L+1}``, ``N_e = Σ_l 1{x_l = e}`` and ``s̄ = mean_l s_l``:
    ``g = Σ_l 1{x_l = e} (s_l - s̄) / N_e``, and ``g = 0`` when ``N_e = 0``. The similarity
    ``s_l`` is the exact copier's (:func:`theory.predictors.reference.context_similarity`, ``S`` a set of
    offsets) or, given ``attention``, the copier's at that attention
    (:func:`theory.predictors.copier.soft_context_similarity`, ``S`` a set of heads).

    Args:
        tokens: integer ``(n, L+1)``, context ``x_1..x_L`` then the target ``x_{L+1}``.
        head_set: ``S``.
        attention: None for the exact copier, or the copier attention ``σ`` ``(H, M)``.

    Returns:
        float64 ``(n,)``.
    """
    tok = np.asarray(tokens)
    require(tok.ndim == 2 and tok.shape[1] >= 2, "tokens", "an integer array (n, L+1), L >= 1",
            tok.shape)
    if attention is None:
        sim = context_similarity(tok[:, :-1], head_set)  # (n, L)
    else:
        sim = soft_context_similarity(tok[:, :-1], head_set, attention)  # (n, L)
    return signal_from_similarity(tok, sim)


def finite_length_criterion(source: Source, sets: Any, seq_len: int, *, samples: int = 2000,
                            rng: np.random.Generator) -> CriterionEstimate:
    """``G_L(S)``: the mean stage-1 signal over ``samples`` sequences of ``L + 1`` tokens.

    Sequences from :func:`theory.sources.sequences.sample_sequences_np` (uniform start, no burn-in).

    Args:
        source: the source.
        sets: head sets.
        seq_len: ``L > max(max S, r)``.
        samples: sequences, >= 2.
        rng: numpy generator.

    Returns:
        :class:`CriterionEstimate` of kind ``"G_L"`` with ``per_sample`` ``(samples, n_sets)``.
    """
    sets = _check_common(source, sets, samples, rng)
    bound = max([source.max_parent] + [max(s) for s in sets if s])
    require(is_int(seq_len)
            and seq_len > bound, "seq_len", f"an integer L > max(max S, r) = {bound}", seq_len)
    tokens = sample_sequences_np(source, int(samples), int(seq_len) + 1, rng=rng)  # (n, L+1)
    per = np.stack([stage1_signal(tokens, s) for s in sets], axis=1)  # (n, n_sets)
    return _estimate(sets, per, "G_L")


def copier_criterion(source: Source, sets: Any, seq_len: int, attention: Any, *,
                     samples: int = 2000, rng: np.random.Generator) -> CriterionEstimate:
    """``G_L(S)`` at the copier attention ``σ``: the mean stage-1 signal with ``s_l = K_S(l)``.

    Stage 1 trains the selector against the initial copier, so with
    ``attention = theory.predictors.copier.copier_attention(spec)`` this is the criterion whose argmax the
    selector reaches (docs/theory.md §3.7). The sequences are drawn exactly as in
    :func:`finite_length_criterion` (one draw of ``samples`` sequences, shared by every set), so
    at :func:`theory.predictors.copier.exact_attention` and the same generator state both return the same
    per-sequence values.

    Args:
        source: the source.
        sets: head sets (heads in ``1..H``).
        seq_len: ``L > max(max S, r)``, as for :func:`finite_length_criterion`; offsets
            beyond a position are left out as in the model (which itself needs ``L > M``).
        attention: ``(H, M)`` copier attention, rows distributions
            (:func:`theory.predictors.copier.check_attention`).
        samples: sequences, >= 2.
        rng: numpy generator.

    Returns:
        :class:`CriterionEstimate` of kind ``"G_L_copier"`` with ``per_sample``
        ``(samples, n_sets)``.

    Raises:
        InductionHeadsError: on a bad source, set, attention, length, sample count or rng.
    """
    sets = _check_common(source, sets, samples, rng)
    att = check_attention(attention)
    H = att.shape[0]
    require(all(h <= H for s in sets for h in s), "sets", f"heads in 1..H = 1..{H}", sets)
    bound = max([source.max_parent] + [max(s) for s in sets if s])
    require(is_int(seq_len)
            and seq_len > bound, "seq_len", f"an integer L > max(max S, r) = {bound}", seq_len)
    tokens = sample_sequences_np(source, int(samples), int(seq_len) + 1, rng=rng)  # (n, L+1)
    head_sim = head_similarity(tokens[:, :-1], att)  # (n, H, L)
    per = np.stack([signal_from_similarity(tokens, set_similarity(head_sim, s)) for s in sets],
                   axis=1)  # (n, n_sets)
    return _estimate(sets, per, "G_L_copier")
