"""Scores of reference predictors against a model's probabilities (numpy, float64).

Every array here has shape ``(n, P, d)``: ``n`` sequences, ``P`` positions (``P = 1`` for the
query ``L+1`` alone), ``d`` the vocabulary. Per sequence, a divergence is averaged over the ``P``
positions; the table reports the mean over sequences and its standard error
``SD / sqrt(n)``.

- ``KL(p ‖ q) = Σ_e p(e) (log p(e) - log max(q(e), KL_FLOOR))`` with ``0 log 0 = 0``: ``p`` is the
  reference, ``q`` the model. A model that gives 0 where the reference has mass is charged
  ``log(1/KL_FLOOR) ≈ 27.6`` nats per unit of that mass instead of infinity.
- ``TV(p, q) = ½ Σ_e |p(e) - q(e)|``.

Temperature fit. For a head set ``S`` the GIH's temperature is the minimiser of the mean
``KL(GIH_{S,a} ‖ model)`` over ``a ∈ [lo, hi]``, found by the grid-then-Brent search of
:mod:`numerics.probing.temperature`; each evaluation reuses the set's counts
(:func:`theory.predictors.positional.gih_from_counts`), so the fit costs O(n·P·d) per point.

Effective set. The closest set's lead over every other set is the mean of their paired
per-sequence KL difference in its standard errors (the sets are scored on the same sequences).
The data decide the set only past ``DECIDABLE_Z`` such standard errors over the runner-up;
otherwise the sets within ``DECIDABLE_Z`` of the closest are reported as within reach. A model
no GIH fits (:data:`GIH_FIT_MAX_KL`) gets that verdict whatever the ranking.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from numerics.probing.report import (
    DECIDED,
    NO_GIH_FITS,
    UNDECIDED,
    EffectiveSet,
    Score,
    ScoreTable,
)
from numerics.probing.temperature import search_temperature
from theory.limit.prediction import DECIDABLE_Z
from theory.notation import head_set_label
from theory.predictors.positional import gih_from_counts
from theory.predictors.reference import LOSS_FLOOR, per_sequence_loss

__all__ = ["KL_FLOOR", "KL_TIE_ATOL", "GIH_FIT_MAX_KL", "divergences", "fit_temperature",
           "score_table", "target_losses"]

KL_FLOOR = LOSS_FLOOR
"""Floor on the model's probabilities inside the KL's log, the library's loss floor."""

KL_TIE_ATOL = 1e-12
"""Head sets whose mean KL is within this of the best are tied (float64 round-off of a KL that
is exactly equal, e.g. every GIH at ``a = 0`` is the unigram); the earlier, smaller set wins."""

GIH_FIT_MAX_KL = 0.08
"""Largest mean KL(GIH ‖ model), in nats, at which the closest GIH still fits the model.

It separates a model that has become an induction head from one that has not: the library's
trained standard transformers and full variant end 0.026-0.037 nats from their closest GIH
(docs/results.md §5), while a GPT-2 on its loss plateau sits 0.165 nats from every GIH. 0.08
is about the geometric mean of the two ends, a factor of two from each. Past it, or when the
closest GIH is fewer than ``DECIDABLE_Z`` paired standard errors closer to the model than the
in-context unigram (a plateau model sits on the unigram, which every GIH at ``a = 0`` is too),
the probe's verdict is "no GIH fits"."""

def _kl_rows(reference: np.ndarray, log_model: np.ndarray) -> np.ndarray:
    """``Σ_e p (log p - log q)`` per row, ``0 log 0 = 0``: ``(n, P, d)`` → ``(n, P)``."""
    positive = reference > 0  # (n, P, d)
    log_ref = np.log(np.where(positive, reference, 1.0))  # (n, P, d), 0 where reference = 0
    return np.where(positive, reference * (log_ref - log_model), 0.0).sum(axis=-1)


def divergences(reference: np.ndarray, model: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sequence KL(reference ‖ model) and TV, averaged over positions.

    Args:
        reference: float64 ``(n, P, d)``, rows summing to 1.
        model: float64 ``(n, P, d)``, rows summing to 1.

    Returns:
        ``(kl, tv)``, each float64 ``(n,)``.
    """
    kl = _kl_rows(reference, np.log(np.maximum(model, KL_FLOOR)))  # (n, P)
    tv = 0.5 * np.abs(reference - model).sum(axis=-1)  # (n, P)
    return kl.mean(axis=1), tv.mean(axis=1)


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    n = values.shape[0]
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(n))


def fit_temperature(matched: np.ndarray, seen: np.ndarray, model: np.ndarray,
                    bounds: tuple[float, float]) -> float:
    """The temperature ``a ∈ bounds`` minimising the mean KL(GIH_{S,a} ‖ model) (module docstring).

    Args:
        matched: ``(n, P, d)`` counts over the matching keys of ``S``.
        seen: ``(n, P, d)`` counts over all keys.
        model: ``(n, P, d)`` the model's probabilities.
        bounds: ``(lo, hi)``, finite, ``0 <= lo < hi``.

    Returns:
        The fitted ``a``.
    """
    lo, hi = bounds
    log_model = np.log(np.maximum(model, KL_FLOOR))  # (n, P, d)
    any_match = matched.sum(axis=-1, keepdims=True) > 0  # (n, P, 1)
    # the weights W of theory.predictors.positional.gih_from_counts: base + e^{-a} rest
    base = np.where(any_match, matched, seen)  # (n, P, d)
    rest = np.where(any_match, seen - matched, 0.0)  # (n, P, d)

    def objective(a: float) -> float:
        weight = base + math.exp(-a) * rest  # (n, P, d)
        return float(_kl_rows(weight / weight.sum(axis=-1, keepdims=True), log_model).mean())

    return search_temperature(objective, bounds)


def target_losses(probs: np.ndarray, targets: np.ndarray | None
                  ) -> tuple[float | None, float | None, int | None]:
    """``(mean, standard error, floor hits)`` of ``-log max(p(target), LOSS_FLOOR)`` for
    ``probs`` ``(n, 1, d)`` and ``targets`` ``(n,)``; ``(None, None, None)`` without targets."""
    if targets is None:
        return None, None, None
    rows = probs[:, 0]                                                     # (n, d)
    values = per_sequence_loss(rows, targets)                              # (n,)
    hits = int(np.sum(rows[np.arange(len(targets)), targets] < LOSS_FLOOR))
    mean, se = _mean_se(values)
    return mean, se, hits


def _score(name: str, kind: str, head_set: tuple[int, ...] | None, temperature: float | None,
           reference: np.ndarray, model: np.ndarray, targets: np.ndarray | None) -> Score:
    kl, tv = divergences(reference, model)
    kl_mean, kl_se = _mean_se(kl)
    tv_mean, tv_se = _mean_se(tv)
    loss, loss_se, hits = target_losses(reference, targets)
    return Score(name=name, kind=kind, head_set=head_set, temperature=temperature,
                 kl=kl_mean, kl_se=kl_se, tv=tv_mean, tv_se=tv_se, loss=loss, loss_se=loss_se,
                 floor_hits=hits)


def _paired_z(diff: np.ndarray) -> float:
    """Mean of a paired per-sequence difference ``(n,)`` in its standard errors (``inf`` for a
    positive mean with zero spread, 0 for a zero mean)."""
    mean = float(diff.mean())
    unit = float(diff.std(ddof=1) / math.sqrt(diff.shape[0]))
    if unit > 0:
        return mean / unit
    return math.inf if mean > 0 else (-math.inf if mean < 0 else 0.0)


def _effective(sets: Sequence[tuple[int, ...]], temperatures: Sequence[float],
               per_sequence: Sequence[np.ndarray], unigram: np.ndarray | None) -> EffectiveSet:
    """The closest set (ties within KL_TIE_ATOL to the earlier set), its paired margin and the
    verdict (:class:`numerics.probing.report.EffectiveSet`).

    Args:
        sets: the scored head sets.
        temperatures: their fitted ``a``.
        per_sequence: per set, the per-sequence KL(GIH ‖ model) ``(n,)``.
        unigram: the per-sequence KL(unigram ‖ model) ``(n,)``, or None.
    """
    means = np.array([v.mean() for v in per_sequence])  # (n_sets,)
    best = int(np.flatnonzero(means <= means.min() + KL_TIE_ATOL)[0])
    kl, kl_se = _mean_se(per_sequence[best])
    lead = {i: _paired_z(per_sequence[i] - per_sequence[best])
            for i in range(len(sets)) if i != best}  # other set -> its gap in paired SE
    reach = [best] + sorted((i for i, z in lead.items() if z < DECIDABLE_Z),
                            key=lambda i: (means[i], i))
    over_unigram = None if unigram is None else _paired_z(unigram - per_sequence[best])
    if kl > GIH_FIT_MAX_KL or (over_unigram is not None and over_unigram < DECIDABLE_Z):
        verdict = NO_GIH_FITS
    else:
        verdict = DECIDED if len(reach) == 1 else UNDECIDED
    common = dict(head_set=sets[best], temperature=temperatures[best], kl=kl, kl_se=kl_se,
                  verdict=verdict, within_reach=tuple(sets[i] for i in reach),
                  unigram_margin_se=over_unigram)
    if not lead:
        return EffectiveSet(runner_up=None, runner_up_kl=None, margin=None, margin_se=None,
                            **common)
    second = min(lead, key=lambda i: (means[i], i))
    return EffectiveSet(runner_up=sets[second], runner_up_kl=float(means[second]),
                        margin=float(means[second] - means[best]), margin_se=lead[second],
                        **common)


def score_table(model: np.ndarray, *, fixed: Sequence[tuple[str, np.ndarray]],
                counts: Iterable[tuple[tuple[int, ...], np.ndarray, np.ndarray]],
                tail: Sequence[tuple[str, np.ndarray]], bounds: tuple[float, float],
                smoothing: float, positions: tuple[int, int],
                given: Sequence[tuple[str, tuple[int, ...], float]] = (),
                targets: np.ndarray | None = None) -> ScoreTable:
    """Score every reference against the model and find the effective set.

    Args:
        model: ``(n, P, d)`` the model's probabilities.
        fixed: ``(kind, probs (n, P, d))`` scored before the GIH sets (uniform, unigram).
        counts: ``(S, matched, seen)`` per head set, each count ``(n, P, d)``; read once, in
            order (a generator keeps one set's counts in memory at a time).
        tail: ``(kind, probs)`` scored after them (bayes, oracle).
        bounds: temperature-fit bounds.
        smoothing: ``β`` of the ``a = ∞`` GIH.
        positions: ``(first, last)`` positions ``l`` the ``P`` axis covers.
        given: ``(name, S, a)``: GIHs at given temperatures, scored after the ``a = ∞`` ones
            (kind ``gih_at``); ``S`` must be among the sets of ``counts``.
        targets: int ``(n,)``, the tokens the query table's predictions are scored on (``P`` = 1),
            or None (no losses).

    Returns:
        The :class:`ScoreTable`.
    """
    scores = [_score(kind, kind, None, None, ref, model, targets) for kind, ref in fixed]
    unigram = next((divergences(ref, model)[0] for kind, ref in fixed if kind == "unigram"),
                   None)  # (n,) or None
    sets, temps, per_seq, inf_scores, at_scores = [], [], [], [], []
    wanted = {tuple(s) for _, s, _ in given}
    for head_set, matched, seen in counts:
        a = fit_temperature(matched, seen, model, bounds)
        fitted = gih_from_counts(matched, seen, a)
        kl, _ = divergences(fitted, model)
        label = head_set_label(head_set)
        scores.append(_score(f"gih{label}", "gih", head_set, a, fitted, model, targets))
        sets.append(head_set)
        temps.append(a)
        per_seq.append(kl)
        smoothed = gih_from_counts(matched, seen, math.inf, smoothing=smoothing)
        inf_scores.append(_score(f"gih_inf{label}", "gih_inf", head_set, math.inf, smoothed,
                                 model, targets))
        if head_set in wanted:
            at_scores += [(k, _score(name, "gih_at", head_set, float(t),
                                     gih_from_counts(matched, seen, t), model, targets))
                          for k, (name, s, t) in enumerate(given) if tuple(s) == head_set]
    scores += inf_scores + [score for _, score in sorted(at_scores, key=lambda ks: ks[0])]
    scores += [_score(kind, kind, None, None, ref, model, targets) for kind, ref in tail]
    kls = np.array([s.kl for s in scores])
    closest = scores[int(np.argmin(kls))].name
    model_loss, model_se, model_hits = target_losses(model, targets)
    return ScoreTable(first_position=positions[0], last_position=positions[1],
                      scores=tuple(scores), effective=_effective(sets, temps, per_seq, unigram),
                      closest=closest, model_loss=model_loss, model_loss_se=model_se,
                      model_floor_hits=model_hits)
