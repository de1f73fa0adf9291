"""Facts of the authors' runs, as data, and how a training history is measured against them.

A :class:`Fact` names a quantity of a run (:data:`MEASURES`: read off a
:class:`numerics.training.History`), the authors' value with the file it comes from, and a
comparison (:data:`COMPARISONS`) with a tolerance and the reason for it. :func:`check_fact`
measures a history and says whether the fact holds; :func:`first_lead_set` is the run's first
selection (the head set whose ``c̃`` first leads every other set by :data:`FIRST_LEAD_MARGIN`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from numerics.training.history import History
from theory.errors import require
from theory.validation import is_int, is_real

__all__ = ["FIRST_LEAD_MARGIN", "MEASURES", "COMPARISONS", "Fact", "first_lead_set",
           "measure", "check_fact"]

FIRST_LEAD_MARGIN = 0.1
"""The lead that makes a set the run's first selection: at the first logged row where the
largest ``c̃`` exceeds the second largest by more than this, the largest one's set. From the
uniform start (every ``c̃ = 1/7``) the selector's first decisive move is then visible in every
authors' file (main figure: step 3; full model: steps 5 to 1191), well before it settles."""

MEASURES = ("first_step", "final_c_tilde", "max_c_tilde", "final_a", "initial_loss",
            "final_loss", "first_set")
"""What a fact measures in a history:

    first_step     the first logged step with ``c̃(head_set) >= threshold`` (None: never)
    final_c_tilde  ``c̃(head_set)`` at the last logged row
    max_c_tilde    the largest ``c̃(head_set)`` over the logged rows
    final_a        ``a`` at the last logged row
    initial_loss   the training loss at step 0
    final_loss     the training loss at the last logged row
    first_set      :func:`first_lead_set` (None: no set ever leads)
"""

COMPARISONS = ("close", "at_least", "at_most", "equal")
"""How a measured value ``m`` is held against the authors' ``v`` with tolerance ``t``:
``close`` ``|m - v| <= t``; ``at_least`` ``m >= v - t``; ``at_most`` ``m <= v + t``; ``equal``
``m == v`` (a head set). A measurement of None (never reached) holds none of them."""


@dataclass(frozen=True)
class Fact:
    """One number of an authors' run and the rule a reproduction is held to.

    Attributes:
        name: the quantity's name in ``reproduction.json`` (e.g. ``"a at step 50000"``).
        measure: one of :data:`MEASURES`.
        authors_value: the authors' number (a head set, as a tuple, for ``first_set``).
        comparison: one of :data:`COMPARISONS`.
        tolerance: >= 0, in the quantity's unit (0 for ``equal``).
        reason: why that tolerance (what differs between the runs).
        source_file: the authors' file the value comes from (:mod:`numerics.experiments.authors`).
        head_set: the set of ``c̃`` measures, else None.
        threshold: the level of ``first_step``, else None.
        min_steps: the fewest steps a run needs for the fact to apply (the authors' runs showed
            it by then).
    """

    name: str
    measure: str
    authors_value: float | tuple[int, ...]
    comparison: str
    tolerance: float
    reason: str
    source_file: str
    head_set: tuple[int, ...] | None = None
    threshold: float | None = None
    min_steps: int = 1

    def __post_init__(self) -> None:
        require(self.measure in MEASURES, f"fact {self.name!r} measure", f"one of {MEASURES}",
                self.measure)
        require(self.comparison in COMPARISONS, f"fact {self.name!r} comparison",
                f"one of {COMPARISONS}", self.comparison)
        require(is_real(self.tolerance) and self.tolerance >= 0, f"fact {self.name!r} tolerance",
                "a number >= 0", self.tolerance)
        wants_set = self.measure in ("first_step", "final_c_tilde", "max_c_tilde")
        require((self.head_set is not None) == wants_set, f"fact {self.name!r} head_set",
                "a head set exactly for the c̃ measures", self.head_set)
        require((self.threshold is not None) == (self.measure == "first_step"),
                f"fact {self.name!r} threshold", "a level exactly for first_step", self.threshold)
        require((self.comparison == "equal") == (self.measure == "first_set"),
                f"fact {self.name!r} comparison", "'equal' exactly for first_set",
                self.comparison)
        require(is_int(self.min_steps) and self.min_steps >= 1, f"fact {self.name!r} min_steps",
                "an integer >= 1", self.min_steps)


def first_lead_set(history: History, *, margin: float = FIRST_LEAD_MARGIN,
                   stage: str | None = None) -> tuple[int, ...] | None:
    """The head set whose ``c̃`` first leads the runner-up by more than ``margin``.

    Read at the first logged row where ``max c̃ - second c̃ > margin`` (None when no row does),
    among the rows of ``stage`` only when one is named (a stage-wise run's ``"selector"``
    stage, whose copier is still at its initialisation).
    """
    rows = np.arange(len(history.stages))
    if stage is not None:
        rows = rows[np.array([s == stage for s in history.stages], dtype=bool)]
    selector = history.selector[rows]                                 # (T', |𝒮|)
    ranked = np.sort(selector, axis=1)
    leads = np.nonzero(ranked[:, -1] - ranked[:, -2] > margin)[0]     # rows
    if leads.size == 0:
        return None
    return history.sets[int(np.argmax(selector[leads[0]]))]


def _column(history: History, head_set: tuple[int, ...]) -> np.ndarray:
    require(tuple(head_set) in history.sets, "head_set", f"one of {history.sets}", head_set)
    return history.selector[:, history.sets.index(tuple(head_set))]   # (T,)


def measure(fact: Fact, history: History) -> Any:
    """The value of ``fact.measure`` in ``history`` (float, int step, head set or None)."""
    require(len(history) >= 1, "history", "at least one logged row", len(history))
    if fact.measure == "first_step":
        reached = history.steps[_column(history, fact.head_set) >= fact.threshold]
        return int(reached[0]) if reached.size else None
    if fact.measure == "final_c_tilde":
        return float(_column(history, fact.head_set)[-1])
    if fact.measure == "max_c_tilde":
        return float(_column(history, fact.head_set).max())
    if fact.measure == "final_a":
        return float(history.a[-1])
    if fact.measure == "initial_loss":
        return float(history.loss[0])
    if fact.measure == "final_loss":
        return float(history.loss[-1])
    return first_lead_set(history)


def _holds(comparison: str, measured: Any, value: Any, tolerance: float) -> bool:
    if measured is None:
        return False
    if comparison == "equal":
        return tuple(measured) == tuple(value)
    if comparison == "close":
        return abs(measured - value) <= tolerance
    if comparison == "at_least":
        return measured >= value - tolerance
    return measured <= value + tolerance


def check_fact(fact: Fact, history: History) -> dict[str, Any]:
    """One row of ``reproduction.json``'s ``quantities``: the fact, what the run measured and
    whether the fact holds (keys ``name``, ``authors_value``, ``measured``, ``comparison``,
    ``tolerance``, ``holds``, ``source_file``, ``reason``; head sets as lists)."""
    measured = measure(fact, history)

    def plain(value: Any) -> Any:
        return list(value) if isinstance(value, tuple) else value

    return {"name": fact.name, "authors_value": plain(fact.authors_value),
            "measured": plain(measured), "comparison": fact.comparison,
            "tolerance": float(fact.tolerance),
            "holds": _holds(fact.comparison, measured, fact.authors_value, fact.tolerance),
            "source_file": fact.source_file, "reason": fact.reason}
