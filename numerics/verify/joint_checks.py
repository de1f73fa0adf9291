"""The checks of a joint run against theory's joint path on its training sample.

A joint run trains ``C``, ``w`` and ``a`` at once; theory predicts its selector and temperature
step by step (:func:`theory.dynamics.joint_path.joint_path_on_sample`, docs/theory.md §3.8), on
the run's own training sample, so sampling does not enter the comparison: what separates the
two is the path's approximation (every head copies its own offset exactly from the first step,
while the run's copier starts soft and sharpens) and float32 rounding. Three checks read the
path:

    selector       where the path ends on one set (c̃ >= JOINT_SETTLED): c̃ of that set
                   >= SELECTOR_MIN (:func:`numerics.verify.checks.check_selector`); where it ends
                   split: max |c̃ - c̃_path| <= JOINT_SELECTOR_ATOL over the sets
    temperature    max over logged rows |a - a_path| / max a_path <= JOINT_A_RTOL
    selector_path  the first set to take the lead, and the switch (its step within
                   JOINT_SWITCH_RTOL, or one logged interval, of the path's; the set switched
                   to) read on the history's logged steps (:meth:`theory.JointPath.leads_at`)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numerics.training.checkpoint import History
from numerics.verify.checks import Check
from theory.dynamics.joint_path import JointPath, read_leads
from theory.notation import head_set_label

__all__ = ["JOINT_SELECTOR_ATOL", "JOINT_A_RTOL", "JOINT_SWITCH_RTOL", "check_joint_selector",
           "check_joint_temperature", "check_selector_path"]

JOINT_SELECTOR_ATOL = 0.03
"""Largest gap between the run's final c̃ and the path's, per set, where the path ends split: the
path's approximation moves c̃ by at most 0.021 on the property tier's 17 joint cases; a run that
settles elsewhere differs by tenths."""

JOINT_A_RTOL = 0.05
"""Largest gap between the run's a and the path's at a logged row, relative to the largest a of
the path: the run's soft copier slows a's first steps (its gap peaks near a = 0.5, 2.6 % of the
final a at most on the property tier's joint cases) and the two meet again by the end (1.1 %);
a classifier that stalls or runs away differs by far more."""

JOINT_SWITCH_RTOL = 0.2
"""Largest relative gap between the measured and the predicted switch step: the target theory
is held to (within one logged interval where the history is logged more sparsely)."""


def check_joint_selector(history: History, path: JointPath) -> Check:
    """The run's final c̃ against the path's, every set (the split form of the selector check).
    """
    measured = np.asarray(history.selector[-1], dtype=np.float64)  # (|𝒮|,)
    predicted = path.final_selector  # (|𝒮|,)
    gap = float(np.max(np.abs(measured - predicted)))
    shown = [i for i in range(len(path.sets)) if max(measured[i], predicted[i]) >= 0.01]
    return Check(
        "selector", gap <= JOINT_SELECTOR_ATOL,
        {head_set_label(path.sets[i]): round(float(predicted[i]), 6) for i in shown},
        {head_set_label(path.sets[i]): round(float(measured[i]), 6) for i in shown},
        f"max |Δc̃| <= {JOINT_SELECTOR_ATOL}",
        f"theory's joint path ends split; c̃ after {int(path.steps[-1])} steps, every set with "
        f"1 % or more shown; max gap {gap:.4f}")


def check_joint_temperature(history: History, path: JointPath) -> Check:
    """The run's ``a`` at every logged row against the path's at the same step."""
    steps = np.asarray(history.steps, dtype=np.int64)  # (T,)
    measured = np.asarray(history.a, dtype=np.float64)  # (T,)
    predicted = path.a[steps]  # (T,)
    relative = np.abs(measured - predicted) / float(np.max(np.abs(path.a)))  # (T,)
    worst = int(np.argmax(relative))
    return Check(
        "temperature", float(relative[worst]) <= JOINT_A_RTOL,
        round(float(predicted[-1]), 6), round(float(measured[-1]), 6),
        f"|Δa| / max a_path <= {JOINT_A_RTOL} at every logged step",
        f"a at the last step, theory's joint path against the run; largest gap "
        f"{relative[worst]:.4f} at step {int(steps[worst])} (a {measured[worst]:.4f} against "
        f"{predicted[worst]:.4f}) over {steps.size} logged steps")


def _label(value: tuple[int, ...] | None) -> str | None:
    return None if value is None else head_set_label(value)


def _path_summary(first: Any, switch: int | None, to: Any) -> dict[str, Any]:
    return {"first": _label(first), "switch_step": switch, "switched_to": _label(to)}


def check_selector_path(history: History, path: JointPath) -> Check:
    """The lead of the run's selector over its logged steps against the path's on those steps.

    Passes when both give the same first leader and either neither switches or both switch to
    the same set with steps within ``JOINT_SWITCH_RTOL`` of the path's (or one logged interval,
    whichever is larger).
    """
    steps = np.asarray(history.steps, dtype=np.int64)  # (T,)
    grid = np.asarray(history.selector, dtype=np.float64)  # (T, |𝒮|)
    m_first, m_switch, m_to = read_leads(grid, path.sets, steps)
    p_first, p_switch, p_to = path.leads_at(steps)
    passed = m_first == p_first and (m_switch is None) == (p_switch is None) and m_to == p_to
    allowed = None
    if passed and p_switch is not None and m_switch is not None:
        row = int(np.searchsorted(steps, p_switch))  # the path's switch is a logged step
        interval = int(steps[row] - steps[row - 1]) if row >= 1 else 0
        allowed = max(JOINT_SWITCH_RTOL * p_switch, interval)
        passed = abs(m_switch - p_switch) <= allowed
    if p_switch is not None or m_switch is not None:
        note = f"switch step predicted {p_switch}, measured {m_switch}"
        if allowed is not None:
            note += f" (allowed gap {allowed:.1f})"
    elif p_first is None and m_first is None:
        note = "no set takes the lead in theory's path or in the run"
    else:
        note = f"{_label(p_first)} leads to the end in theory's path"
    return Check("selector_path", passed, _path_summary(p_first, p_switch, p_to),
                 _path_summary(m_first, m_switch, m_to),
                 f"same leaders; switch step within {JOINT_SWITCH_RTOL:.0%} (or one logged "
                 "interval) of theory's", note + f"; read on the {steps.size} logged steps")
