"""The copier stage in its finite steps (theory.dynamics.copier_stage, docs/theory.md §3.3).

Exact identities of the gradient (rows sum to zero, nothing outside a head's window, no pull on a
head the selector does not weigh), the window-pattern tables against the direct form, the drift
against a small step, and the Monte Carlo prediction's standard errors and flags. The torch
cross-checks are tests/numerics/models/test_copier_gradient_autograd.py (autograd) and
tests/numerics/training/test_copier_stage_trajectory.py (a trained copier stage).
"""

from __future__ import annotations

import numpy as np
import pytest

from theory import (
    Dirichlet,
    InductionHeadsError,
    ModelSpec,
    Source,
    copier_gradient,
    copier_stage_on_sample,
    predict_copier_stage,
    sample_sequences_np,
)
from theory.dynamics.copier_gradient import copier_loss_gradient, initial_logits
from theory.dynamics.copier_stage import CopierStage

IDENTITY_ATOL = 1e-13
"""Sums over a sequence's positions of float64 terms up to ~0.1 that cancel exactly: round-off
only (seen ~1e-15)."""
FORMS_ATOL = 1e-14
"""The pattern tables and the per-sequence form add the same terms in another order."""
DRIFT_RTOL = 1e-4
"""One step of lr 1e-3 against the flow's rate: the step's own curvature, O(lr·|∂drift|), is
far below this."""

SPECS = {
    "shared": (ModelSpec(3, 3, 2, w_plus=0.5), 3),
    "band": (ModelSpec.band(2, 2, w_plus=1.0), 3),
    "wide": (ModelSpec(2, 4, 2, w_plus=0.3), 2),
}
"""A shared window with pairs, the authors' band windows, a window wider than the heads."""


def _sample(d: int, n: int = 200, L: int = 30, seed: int = 0) -> np.ndarray:
    return sample_sequences_np(Source(d, (1,), Dirichlet(0.2)), n, L + 1,
                               rng=np.random.default_rng(seed))  # (n, L+1)


def _weights(spec: ModelSpec, seed: int = 1) -> np.ndarray:
    c = np.random.default_rng(seed).uniform(0.1, 1.0, len(spec.sets))
    return c / c.sum()


@pytest.mark.parametrize("case", sorted(SPECS))
def test_gradient_rows_sum_to_zero_and_vanish_outside_windows(case):
    spec, d = SPECS[case]
    _, grad = copier_loss_gradient(_sample(d), spec, logits=initial_logits(spec),
                                   selector_weights=_weights(spec), a=3.0)  # (n, H, M)
    outside = ~np.array(spec.window_mask(), dtype=bool)
    assert np.abs(grad.sum(axis=2)).max() <= IDENTITY_ATOL, grad.sum(axis=2)
    assert np.all(grad[:, outside] == 0.0), grad[:, outside]
    assert np.abs(grad).max() > 1e-3, "a gradient too small to test"


def test_a_head_the_selector_does_not_weigh_gets_no_gradient():
    spec, d = SPECS["shared"]
    c = np.zeros(len(spec.sets))
    c[spec.sets.index((1, 2))] = 1.0
    _, grad = copier_loss_gradient(_sample(d), spec, logits=initial_logits(spec),
                                   selector_weights=c, a=3.0)
    assert np.all(grad[:, 2] == 0.0), grad[:, 2].max()
    assert np.abs(grad[:, :2]).max() > 1e-3


@pytest.mark.parametrize("case", sorted(SPECS))
def test_pattern_tables_equal_the_direct_form(case):
    """A trajectory of steps taken from the pattern tables, replayed with the direct form."""
    spec, d = SPECS[case]
    tokens, c = _sample(d), _weights(spec)
    stage = copier_stage_on_sample(tokens, spec, selector_weights=c, lr=300.0, steps=3,
                                   groups=0)
    w = initial_logits(spec)
    inside = np.array(spec.window_mask(), dtype=bool)
    own = np.arange(spec.heads)
    for step in range(3):
        _, grad = copier_loss_gradient(tokens, spec, logits=np.where(inside, w, 0.0),
                                       selector_weights=c, a=spec.a_init)
        w = w - 300.0 * grad.mean(axis=0)
        sigma = np.exp(w - w.max(axis=1, keepdims=True))
        sigma = sigma / sigma.sum(axis=1, keepdims=True)
        assert abs(sigma[own, own] - stage.masses[step + 1]).max() <= FORMS_ATOL, (
            step, sigma[own, own], stage.masses[step + 1])


def test_drift_is_the_first_step_of_the_flow():
    spec, d = SPECS["shared"]
    tokens, c = _sample(d), _weights(spec)
    gradient = copier_gradient(tokens, spec, selector_weights=c)
    lr = 1e-3
    stage = copier_stage_on_sample(tokens, spec, selector_weights=c, lr=lr, steps=1, groups=0)
    np.testing.assert_allclose(stage.change / lr, gradient.drift, rtol=DRIFT_RTOL,
                               err_msg=f"step {stage.change / lr} vs drift {gradient.drift}")
    assert np.all(gradient.drift_se > 0) and gradient.samples == tokens.shape[0]


def test_monte_carlo_prediction_is_reproducible_with_standard_errors():
    source, spec = Source(2, (1,), Dirichlet(0.05)), ModelSpec(2, 2, 2, w_plus=0.5)
    c = np.array([0.0, 0.0, 0.0, 1.0])
    kwargs = dict(selector_weights=c, seq_len=30, lr=3000.0, steps=20, samples=400)
    one = predict_copier_stage(source, spec, rng=np.random.default_rng(5), **kwargs)
    two = predict_copier_stage(source, spec, rng=np.random.default_rng(5), **kwargs)
    assert isinstance(one, CopierStage) and one.samples == 400
    assert np.array_equal(one.masses, two.masses) and np.array_equal(one.se, two.se)
    assert one.masses.shape == (21, 2) and np.all(np.isfinite(one.se)) and np.all(one.se > 0)
    direction = one.direction()
    decided = np.abs(one.change) >= 3 * one.se
    assert np.array_equal(direction != 0, decided), (one.change, one.se, direction)
    assert set(one.to_dict()) >= {"initial", "final", "se", "drift", "drift_se"}


@pytest.mark.parametrize("change, expected", [
    ({"selector_weights": [0.5, 0.5]}, "selector_weights"),
    ({"lr": 0.0}, "lr"),
    ({"steps": -1}, "steps"),
    ({"momentum": 1.0}, "momentum"),
    ({"tokens": np.zeros((4, 3), dtype=np.int64)}, "tokens"),
])
def test_bad_inputs_raise(change, expected):
    spec = ModelSpec(2, 2, 2)
    kwargs = {"tokens": _sample(2, n=10), "selector_weights": [0.25] * 4, "lr": 1.0,
              "steps": 1, **change}
    with pytest.raises(InductionHeadsError, match=expected):
        copier_stage_on_sample(kwargs.pop("tokens"), spec, **kwargs)
