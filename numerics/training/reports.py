"""Readers of the per-row callback reports that a training history keeps.

A training run's ``callback(model, step)`` returns a JSON mapping (or None) at every logged row;
the history keeps them as a tuple aligned with its rows. When the callback probes the model
(``numerics.probe(...).to_dict()``, e.g. :func:`numerics.training.standard.probe_callback`),
a report holds, under ``"last"`` (the prediction of ``x_{L+1}``):

    ``r["last"]["effective"]["head_set"]``  the closest GIH head set, a list of offsets
    ``r["last"]["effective"]["verdict"]``   ``"decided"``, ``"undecided"`` or ``"no GIH fits"``
                                            (:class:`numerics.probing.EffectiveSet`)
    ``r["last"]["scores"]``                 a list of ``{"name": ..., "kl": ...}``, the mean
                                            KL(reference ‖ model) per reference predictor

These functions read those fields; rows without a report (None, or a report without ``"last"``)
read as None / NaN. A row's effective set counts only when the probe decided it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from numerics.probing.report import DECIDED
from theory.errors import InductionHeadsError, require

__all__ = ["effective_sets", "distances", "settled_index", "settled_step", "check_callback",
           "as_report", "ProbedRows"]

Report = Mapping[str, Any] | None


def _probed(report: Report) -> bool:
    return report is not None and "last" in report


def _decided(report: Mapping[str, Any]) -> tuple[int, ...] | None:
    """The decided effective set of a probe report, or None when the verdict is not decided."""
    effective = report["last"]["effective"]
    if effective["verdict"] != DECIDED:
        return None
    return tuple(int(p) for p in effective["head_set"])


def effective_sets(reports: Sequence[Report]) -> tuple[tuple[int, ...] | None, ...]:
    """(T,) the probe's decided effective head set at ``x_{L+1}`` per row (None without a
    report, or where the probe's verdict is undecided or no GIH fits).

    Args:
        reports: (T,) the history's callback reports.
    """
    return tuple(_decided(r) if _probed(r) else None for r in reports)


def distances(reports: Sequence[Report], name: str) -> np.ndarray:
    """(T,) float64 mean KL(reference ``name`` ‖ model) at ``x_{L+1}`` per row.

    NaN where a row has no report.

    Args:
        reports: (T,) the history's callback reports.
        name: a probe score name, e.g. ``"gih(1, 2)"``, ``"gih_inf(1)"``, ``"bayes"``.

    Raises:
        InductionHeadsError: when a report has no score called ``name``.
    """
    out = np.full(len(reports), np.nan)
    for t, r in enumerate(reports):
        if _probed(r):
            by_name = {s["name"]: s["kl"] for s in r["last"]["scores"]}
            require(name in by_name, "score name", f"one of {sorted(by_name)}", name)
            out[t] = float(by_name[name])
    return out


def settled_index(values: Sequence[Any]) -> int | None:
    """First index from which every value equals the last one (None for no values).

    Args:
        values: (T,) comparable values, e.g. :func:`effective_sets` with the None rows removed.
    """
    if not len(values):
        return None
    first = len(values) - 1
    while first > 0 and values[first - 1] == values[-1]:
        first -= 1
    return first


def settled_step(steps: Sequence[int], reports: Sequence[Report]) -> int | None:
    """First logged step from which the decided effective set stays at its final value.

    Only rows with a probe report count; a probed row whose set the probe did not decide
    (undecided, or no GIH fits) breaks the run of equal sets. None when no row is probed or the
    last probed row is not decided.

    Args:
        steps: (T,) the logged steps.
        reports: (T,) the history's callback reports.
    """
    rows = [(int(s), _decided(r)) for s, r in zip(steps, reports) if _probed(r)]
    index = settled_index([e for _, e in rows])
    if index is None or rows[-1][1] is None:
        return None
    return rows[index][0]


def check_callback(callback: Any) -> None:
    """Require a training callback to be None or a callable ``(model, step) -> mapping | None``."""
    require(callback is None or callable(callback), "callback",
            "None or a callable (model, step) -> JSON mapping or None", type(callback).__name__)


def as_report(value: Any, step: int) -> dict[str, Any] | None:
    """A callback's result as a plain JSON dict (a deep copy), or None.

    Args:
        value: what the callback returned at ``step``.
        step: the logged step (for the error message).

    Raises:
        InductionHeadsError: when ``value`` is neither None nor a JSON-serialisable mapping
            without NaN or inf.
    """
    if value is None:
        return None
    require(isinstance(value, Mapping), "callback result", "a mapping or None",
            type(value).__name__)
    try:
        return json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as err:
        raise InductionHeadsError(f"callback result at step {step}: expected a JSON-serialisable "
                                  f"mapping without NaN or inf, received {err}") from None


class ProbedRows:
    """The readers a history offers over its ``reports`` column (mixed into every history
    class, which has ``steps`` (T,) and ``reports`` (T,))."""

    steps: np.ndarray
    reports: tuple[Report, ...]

    def effective_sets(self) -> tuple[tuple[int, ...] | None, ...]:
        """(T,) the probe's decided effective head set at ``x_{L+1}`` per row (None without a
        report or a decision)."""
        return effective_sets(self.reports)

    def distances(self, name: str) -> np.ndarray:
        """(T,) mean KL(reference ``name`` ‖ model) at ``x_{L+1}`` per row (NaN without a report).

        Args:
            name: a probe score name, e.g. ``"gih(1, 2)"``, ``"gih_inf(1)"``, ``"bayes"``.
        """
        return distances(self.reports, name)

    def settled_step(self) -> int | None:
        """First logged step from which the decided effective set stays at its final value
        (:func:`settled_step`)."""
        return settled_step(self.steps, self.reports)
