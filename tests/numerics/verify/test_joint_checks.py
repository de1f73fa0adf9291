"""The joint-run checks against a synthetic joint path: each passes on a run that follows the
path and fails on one that leaves it by more than its tolerance."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from numerics.verify.joint_checks import (
    JOINT_A_RTOL,
    JOINT_SELECTOR_ATOL,
    JOINT_SWITCH_RTOL,
    check_joint_selector,
    check_joint_temperature,
    check_selector_path,
)
from theory.dynamics.joint_path import JointPath, selector_leads

SETS = ((), (1,), (1, 2))
STEPS = 100
SWITCH = 60


def _selector(switch: int) -> np.ndarray:
    """c̃ (STEPS+1, 3): (1,) leads from step 5, (1, 2) from ``switch`` on, ending 0.3 / 0.7."""
    rows = np.zeros((STEPS + 1, 3))
    rows[:, 0] = 1.0 / 3
    rows[:, 1] = rows[:, 2] = 1.0 / 3
    rows[5:switch] = (0.0, 0.95, 0.05)
    rows[switch:] = (0.0, 0.3, 0.7)
    return rows


def _path(switch: int = SWITCH) -> JointPath:
    selector = _selector(switch)
    leader, first, moved = selector_leads(selector)
    a = np.linspace(0.01, 4.0, STEPS + 1)
    return JointPath(SETS, np.arange(STEPS + 1), selector, a, np.zeros(STEPS + 1), leader,
                     SETS[first], moved, SETS[int(leader[-1])], float("nan"), False)


def _history(switch: int = SWITCH, a_scale: float = 1.0, shift: float = 0.0,
             every: int = 1) -> SimpleNamespace:
    steps = np.arange(0, STEPS + 1, every)
    selector = _selector(switch)[steps]
    selector[-1] = selector[-1] + np.array([0.0, shift, -shift])
    return SimpleNamespace(steps=steps, selector=selector,
                           a=np.linspace(0.01, 4.0, STEPS + 1)[steps] * a_scale,
                           loss=np.zeros(steps.size))


def test_split_selector_within_tolerance_passes_and_beyond_fails() -> None:
    path = _path()
    assert check_joint_selector(_history(shift=JOINT_SELECTOR_ATOL / 2), path).passed
    check = check_joint_selector(_history(shift=2 * JOINT_SELECTOR_ATOL), path)
    assert not check.passed, check


def test_temperature_follows_the_path_within_its_relative_tolerance() -> None:
    path = _path()
    assert check_joint_temperature(_history(a_scale=1 + JOINT_A_RTOL / 2), path).passed
    check = check_joint_temperature(_history(a_scale=1 + 2 * JOINT_A_RTOL), path)
    assert not check.passed and check.predicted == pytest.approx(4.0), check


def test_switch_within_twenty_percent_passes() -> None:
    measured = int(SWITCH * (1 + JOINT_SWITCH_RTOL / 2))
    check = check_selector_path(_history(switch=measured), _path())
    assert check.passed, check
    assert check.predicted["switch_step"] == SWITCH and check.measured["switch_step"] == measured


def test_switch_beyond_twenty_percent_fails() -> None:
    measured = int(SWITCH * (1 + 2 * JOINT_SWITCH_RTOL))
    check = check_selector_path(_history(switch=measured), _path())
    assert not check.passed, check


def test_run_without_the_predicted_switch_fails() -> None:
    check = check_selector_path(_history(switch=STEPS + 1), _path())
    assert not check.passed and check.measured["switch_step"] is None, check


def test_path_is_read_on_the_logged_steps() -> None:
    # logged every 4 steps: both leads are read on that grid, so the switch reads as the same
    # logged step
    check = check_selector_path(_history(every=4), _path())
    assert check.passed, check
    assert check.measured["switch_step"] == check.predicted["switch_step"] == SWITCH, check
