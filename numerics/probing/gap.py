"""The share of the gap from the best single GIH to Bayes that a model closes (docs/theory.md §3.5).

A GIH reads one head set. When the sequences differ in their structure (Switching and
FiniteMixture priors) no single set serves every sequence, and the Bayes predictive, which
weighs the structures by their posterior, predicts better than any single GIH. With per-sequence
losses on the held-out targets ``x_{L+1}``, ``b_i`` of the best single GIH, ``y_i`` of Bayes and
``m_i`` of the model,

    share = (mean b - mean m) / (mean b - mean y):

0 for a model that predicts as well as the best single GIH, 1 for one that predicts as well as
Bayes (above 1 is possible: the oracles beat Bayes).

The best single GIH (:func:`best_single_gih`) is the scored head set whose GIH, at the
temperature minimising its loss on these targets (the loss of
:func:`theory.optimal_temperature`, searched within the probe's temperature bounds), has the
smallest mean loss: the most one induction head does here.
Its temperature is fitted on the scored sequences, a one-parameter choice per set, so its loss is
optimistic by O(1/n); it does not depend on the model.

Standard errors are paired (every loss is on the same sequences). The gap ``G = mean(b - y)``
has the standard error ``sd(b - y) / sqrt(n)``; the share is reported only when ``G`` exceeds
``DECIDABLE_Z`` of them, else it is None with the reason. Its standard error is the delta-method
one of a ratio of paired means: with ``D_i = (b_i - m_i) - share · (b_i - y_i)``,
``SE = sd(D) / (sqrt(n) G)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from numerics.probing.fields import decode_float, decode_set, plain_fields
from numerics.probing.temperature import search_temperature
from theory.limit.prediction import DECIDABLE_Z
from theory.predictors.positional import gih_from_counts, last_match_counts
from theory.predictors.reference import LOSS_FLOOR

__all__ = ["GapShare", "best_single_gih", "measure_gap_share"]


@dataclass(frozen=True)
class GapShare:
    """The share of the gap from the best single GIH to Bayes a model closes at ``x_{L+1}``.

    Attributes:
        baseline_set: the head set of the best single GIH.
        baseline_temperature: its loss-minimising temperature on the held-out targets.
        baseline_loss: its mean loss.
        bayes_loss: the Bayes predictive's mean loss.
        model_loss: the model's mean loss.
        gap: ``baseline_loss - bayes_loss``.
        gap_se: its paired standard error.
        share: ``(baseline_loss - model_loss) / gap``; None when the gap is not past
            ``DECIDABLE_Z`` standard errors.
        share_se: its delta-method standard error (None with ``share``).
        reason: why ``share`` is None, else None.
    """

    baseline_set: tuple[int, ...]
    baseline_temperature: float
    baseline_loss: float
    bayes_loss: float
    model_loss: float
    gap: float
    gap_se: float
    share: float | None
    share_se: float | None
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        out = plain_fields(self)
        out["baseline_set"] = list(self.baseline_set)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GapShare:
        reason = data["reason"]
        return cls(baseline_set=decode_set(data["baseline_set"]),
                   baseline_temperature=decode_float(data["baseline_temperature"]),
                   baseline_loss=decode_float(data["baseline_loss"]),
                   bayes_loss=decode_float(data["bayes_loss"]),
                   model_loss=decode_float(data["model_loss"]),
                   gap=decode_float(data["gap"]), gap_se=decode_float(data["gap_se"]),
                   share=decode_float(data["share"]), share_se=decode_float(data["share_se"]),
                   reason=None if reason is None else str(reason))

    def line(self) -> str:
        """One line of text for :meth:`numerics.probing.ProbeReport.summary`."""
        where = (f"from GIH{self.baseline_set} (a = {self.baseline_temperature:.3g}, loss "
                 f"{self.baseline_loss:.4g}) to Bayes (loss {self.bayes_loss:.4g}), "
                 f"{self.gap:.3g} ± {self.gap_se:.2g} nats; model loss {self.model_loss:.4g}")
        if self.share is None:
            return f"gap share: none ({self.reason}); {where}"
        return f"gap share: {self.share:.3g} ± {self.share_se:.2g} of the gap {where}"


def _loss_rows(matched: np.ndarray, seen: np.ndarray, targets: np.ndarray, a: float
               ) -> np.ndarray:
    """Per-sequence loss ``(n,)`` of the GIH at ``a`` from its counts ``(n, d)``."""
    probs = gih_from_counts(matched, seen, a)  # (n, d)
    picked = probs[np.arange(len(targets)), targets]  # (n,)
    return -np.log(np.maximum(picked, LOSS_FLOOR))


def best_single_gih(context: np.ndarray, targets: np.ndarray, sets: Sequence[tuple[int, ...]],
                    *, vocab_size: int, bounds: tuple[float, float]
                    ) -> tuple[tuple[int, ...], float, np.ndarray]:
    """The head set whose GIH at its loss-minimising temperature has the smallest mean loss.

    The GIH of a set is a function of its match counts at the query
    (:func:`theory.predictors.positional.gih_from_counts`), so each evaluation of the loss costs
    O(n·d); the temperature is found by the probe's search (:mod:`numerics.probing.temperature`).

    Args:
        context: int64 ``(n, L)``.
        targets: int64 ``(n,)``, ``x_{L+1}``.
        sets: the candidate head sets (ties go to the earlier one).
        vocab_size: ``d``.
        bounds: ``(lo, hi)`` of the temperature, finite.

    Returns:
        ``(S, a, losses)``: the set, its temperature, its per-sequence losses ``(n,)``.
    """
    best = None
    for head_set in sets:
        matched, seen = last_match_counts(context, head_set, vocab_size=vocab_size)  # (n, d)

        def mean_loss(a: float, matched=matched, seen=seen) -> float:
            return float(_loss_rows(matched, seen, targets, a).mean())

        a = search_temperature(mean_loss, bounds)
        losses = _loss_rows(matched, seen, targets, a)  # (n,)
        if best is None or losses.mean() < best[2].mean():
            best = (tuple(head_set), a, losses)
    return best


def _se(values: np.ndarray) -> float:
    return float(values.std(ddof=1) / math.sqrt(values.shape[0]))


def measure_gap_share(model_losses: np.ndarray, bayes_losses: np.ndarray,
                      baseline: tuple[tuple[int, ...], float, np.ndarray]) -> GapShare:
    """The :class:`GapShare` from per-sequence losses ``(n,)`` on the same targets (module
    docstring); ``baseline`` is :func:`best_single_gih`'s result."""
    head_set, a, base = baseline
    closed, gap_rows = base - model_losses, base - bayes_losses  # (n,), (n,)
    gap, gap_se = float(gap_rows.mean()), _se(gap_rows)
    common = dict(baseline_set=head_set, baseline_temperature=float(a),
                  baseline_loss=float(base.mean()), bayes_loss=float(bayes_losses.mean()),
                  model_loss=float(model_losses.mean()), gap=gap, gap_se=gap_se)
    if not gap > DECIDABLE_Z * gap_se:
        reason = (f"the gap from the best single GIH to Bayes is {gap:.3g} ± {gap_se:.2g} "
                  f"nats, not past {DECIDABLE_Z:g} standard errors")
        return GapShare(share=None, share_se=None, reason=reason, **common)
    share = float(closed.mean()) / gap
    share_se = _se(closed - share * gap_rows) / gap
    return GapShare(share=share, share_se=share_se, reason=None, **common)
