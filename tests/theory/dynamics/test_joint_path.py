"""The predicted path of a joint run (theory.dynamics.joint_path): its exact gradients, the paper's
source (no switch) and the weak-parent mixture's switch from (1,) to (1, 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from theory import (
    PAPER_SOURCE,
    WEAK_PARENT_SOURCE,
    JointPath,
    ModelSpec,
    predict_joint_path,
    sample_sequences_np,
    selector_growth,
)
from theory.dynamics import (
    JOINT_HOLD,
    JointSample,
    joint_loss_gradients,
    joint_path_on_sample,
    selector_leads,
)
from theory.errors import InductionHeadsError

FD_STEP = 1e-6
"""Central difference step in ``a``: truncation O(h²) ~ 1e-12, round-off ~ 1e-16/h = 1e-10."""
FD_ATOL = 1e-8
"""Allowed gap between ∂ℓ/∂a and its central difference: above both error terms of FD_STEP."""
GROWTH_ATOL = 1e-12
"""∂ℓ/∂C against theory.selector_growth: the same float64 formula in two orders, round-off only."""

SPEC = ModelSpec(2, 2, 2)
"""H = M = D = 2: the sets ∅, (1,), (2,), (1, 2)."""

JOINT_SPEC = ModelSpec.band(3, 2, w_plus=3.0, w_minus=0.1, c_init=0.01, a_init=0.01)
"""The authors' joint initialisation on TF with M = 3, D = 2."""

SWITCH_TEMPERATURE = (2.5, 5.0)
"""Range of ``a`` at the predicted switch: real joint runs on this source switch at a = 2.5 to 4,
and the exact copier, sharper than the run's, reaches the switch at about the same a."""


def _sample(n: int = 48, seed: int = 5) -> JointSample:
    tokens = sample_sequences_np(PAPER_SOURCE, n, 31, rng=np.random.default_rng(seed))
    return JointSample.of(tokens, SPEC.sets, vocab_size=3)


@pytest.mark.parametrize("loss", ["nll", "official_ce"])
@pytest.mark.parametrize("a", [0.01, 1.0, 4.0])
def test_temperature_gradient_matches_central_difference(loss: str, a: float) -> None:
    sample = _sample()
    C = np.array([0.3, 1.2, 0.5, 0.8])
    _, _, dl_da = joint_loss_gradients(sample, C, a, loss=loss)
    up = joint_loss_gradients(sample, C, a + FD_STEP, loss=loss)[0].mean()
    down = joint_loss_gradients(sample, C, a - FD_STEP, loss=loss)[0].mean()
    numeric = (up - down) / (2 * FD_STEP)
    assert abs(dl_da.mean() - numeric) <= FD_ATOL, (
        f"{loss}, a = {a}: closed form {dl_da.mean()}, central difference {numeric}")


@pytest.mark.parametrize("loss", ["nll", "official_ce"])
def test_selector_gradient_is_minus_selector_growth(loss: str) -> None:
    tokens = sample_sequences_np(PAPER_SOURCE, 48, 31, rng=np.random.default_rng(5))
    C = np.array([0.3, 1.2, 0.5, 0.8])
    _, dl_dc, _ = joint_loss_gradients(JointSample.of(tokens, SPEC.sets, vocab_size=3), C, 2.0,
                                       loss=loss)
    growth = selector_growth(tokens, SPEC.sets, 2.0, vocab_size=3, selector=C, loss=loss)
    assert np.allclose(dl_dc, -growth, rtol=0, atol=GROWTH_ATOL), (
        f"{loss}: -∂ℓ/∂C {(-dl_dc).mean(axis=0)}, selector_growth {growth.mean(axis=0)}")


def test_path_starts_at_the_initialisation_and_records_every_step() -> None:
    path = joint_path_on_sample(_sample(), lr_C=1.0, lr_a=1.0, steps=5, loss="official_ce",
                                c_init=0.01, a_init=0.01, groups=0)
    assert isinstance(path, JointPath)
    assert path.selector.shape == (6, 4) and path.a.shape == (6,) and path.leader.shape == (6,)
    assert np.allclose(path.selector[0], 0.25) and path.a[0] == 0.01
    assert np.allclose(path.selector.sum(axis=1), 1.0)


def test_paper_source_keeps_its_parent_set_without_switch() -> None:
    path = predict_joint_path(PAPER_SOURCE, JOINT_SPEC, 100, lr_C=1.0, lr_a=1.0, steps=150,
                              samples=400, rng=np.random.default_rng(3), loss="official_ce")
    assert path.first_leader == (1, 2), f"first leader {path.first_leader}, expected (1, 2)"
    assert path.switch_step is None, f"switch at step {path.switch_step}, expected none"
    assert path.final_leader == (1, 2) and path.decided


def test_rejects_bad_arguments() -> None:
    with pytest.raises(InductionHeadsError):
        predict_joint_path(PAPER_SOURCE, SPEC, 30, lr_C=1.0, lr_a=1.0, steps=2, samples=8,
                           rng=np.random.default_rng(0), loss="mse")
    with pytest.raises(InductionHeadsError):
        joint_path_on_sample(_sample(), lr_C=1.0, lr_a=1.0, steps=2, groups=1)
    with pytest.raises(InductionHeadsError):
        joint_loss_gradients(_sample(), np.zeros(4), 1.0)


@pytest.mark.slow
def test_weak_parent_switches_from_the_strong_parent_to_both() -> None:
    path = predict_joint_path(WEAK_PARENT_SOURCE, JOINT_SPEC, 100, lr_C=1.0, lr_a=1.0, steps=300,
                              samples=2000, rng=np.random.default_rng(1), loss="official_ce")
    assert path.first_leader == (1,) and path.final_leader == (1, 2), (
        f"first leader {path.first_leader}, final {path.final_leader}; expected (1,), (1, 2)")
    assert path.switch_step is not None and path.decided
    low, high = SWITCH_TEMPERATURE
    assert low <= path.a[path.switch_step] <= high, (
        f"a at the predicted switch {path.a[path.switch_step]}, expected in {SWITCH_TEMPERATURE}")


def test_path_round_trips_through_json_and_reads_on_a_grid() -> None:
    path = joint_path_on_sample(_sample(), lr_C=1.0, lr_a=1.0, steps=6, loss="official_ce",
                                groups=0)
    again = JointPath.from_dict(json.loads(json.dumps(path.to_dict())))
    assert np.array_equal(again.selector, path.selector) and np.array_equal(again.a, path.a)
    assert (again.first_leader, again.switch_step, again.final_leader) == (
        path.first_leader, path.switch_step, path.final_leader)
    every = np.arange(path.steps.size)
    assert path.leads_at(every, hold=JOINT_HOLD)[:2] == (path.first_leader, path.switch_step)


def test_split_selector_has_no_leader() -> None:
    split = np.array([[0.5, 0.45, 0.05]] * 8)
    leader, first, _ = selector_leads(split)
    assert first is None and bool(np.all(leader == -1)), leader
    leader, first, _ = selector_leads(split, margin=0.0)
    assert first == 0, leader
