"""Reduced dynamics: replicator ODE vs closed form and vs gradient flow on C; temperature flow."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from theory.dynamics.replicator import (
    log_growth,
    replicator_closed_form,
    replicator_trajectory,
    temperature_trajectory,
)
from theory.errors import InductionHeadsError
from theory.predictors.reference import gih_objective, optimal_temperature
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import PAPER_SOURCE

# Criterion of the paper's setting, sets ((), (1,), (2,), (3,), (1,2), (1,3), (2,3)), 2000 kernels.
PAPER_G = np.array([0.0, 0.146, 0.162, 0.143, 0.195, 0.156, 0.163])

ODE_VS_CLOSED_ATOL = 1e-8
"""solve_ivp at rtol 1e-10 over ~10 e-folds: global error well below 1e-8."""

SIMPLEX_DRIFT_ATOL = 1e-8
"""Σc̃ = 1 is invariant (and attracting) under the flow; DOP853 local errors at rtol 1e-10 add
up to a few 1e-9 over ~100 accepted steps (measured 3.5e-9)."""

C_FLOW_ATOL = 1e-7
"""c̃ from gradient flow on C (finite-difference gradient, h = 1e-6) vs the replicator ODE."""

IMPLICIT_ATOL = 1e-7
"""Residual of the implicit solution n1 e^a + n0 a = const + n0 t along the ODE (a <= ~10)."""

LOG_LAW_ATOL = 0.01
"""|a(t) - log(e^a0 + κ t)| once e^a >> n0/n1 · a: the neglected term n0 a/n1 is about 1 %."""

ASTAR_ATOL = 1e-3
"""a(t) at t = 1e6 vs the minimiser a*: the flow is within 1e-3 after a few relaxation times."""


def _uniform(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n)


def test_replicator_ode_matches_closed_form_and_conserves_mass() -> None:
    times = np.linspace(0.0, 3000.0, 31)
    a, sq = 0.5, 7.0  # rate 4a/ΣC² ≈ 0.29; G gaps ≈ 0.03 → ~25 e-folds by t = 3000
    ode = replicator_trajectory(PAPER_G, _uniform(7), a=a, c_sq_sum=sq, times=times)
    closed = replicator_closed_form(PAPER_G, _uniform(7), a=a, c_sq_sum=sq, times=times)
    assert ode.shape == (31, 7)
    worst = float(np.max(np.abs(ode - closed)))
    assert worst <= ODE_VS_CLOSED_ATOL, f"ODE vs closed form: max |diff| = {worst:.3g}"
    drift = float(np.max(np.abs(ode.sum(axis=1) - 1.0)))
    assert drift <= SIMPLEX_DRIFT_ATOL, f"Σc̃ drifted by {drift:.3g}"
    assert int(np.argmax(ode[-1])) == 4 and ode[-1, 4] > 0.99, (
        f"c̃ should concentrate on (1,2) = index 4, got {ode[-1]}")


def test_replicator_zero_weights_stay_zero() -> None:
    c0 = np.array([0.5, 0.5, 0.0])
    g = np.array([0.0, 0.1, 0.3])
    out = replicator_trajectory(g, c0, a=1.0, c_sq_sum=1.0, times=[0.0, 10.0, 100.0])
    assert np.all(out[:, 2] == 0.0), f"a zero weight moved: {out[:, 2]}"
    np.testing.assert_allclose(out[0], c0, rtol=0, atol=1e-15)
    assert out[-1, 1] > 0.999


def test_replicator_is_gradient_flow_on_C() -> None:
    """Check the derivation: integrate dC/dt = -∂ℓ/∂C for ℓ = -a Σ c̃_S G_S (c̃ = C²/ΣC²)."""
    a = 0.8
    C0 = np.array([1.0, 0.7, 1.3, 0.4, 1.1, 0.9, 1.2])
    sq = float(np.sum(C0**2))
    h = 1e-6

    def loss(C: np.ndarray) -> float:
        return float(-a * np.sum(C**2 / np.sum(C**2) * PAPER_G))

    def rhs(_: float, C: np.ndarray) -> np.ndarray:
        eye = np.eye(C.size) * h
        return -np.array([(loss(C + e) - loss(C - e)) / (2 * h) for e in eye])

    times = np.linspace(0.0, 200.0, 11)
    sol = solve_ivp(rhs, (0.0, 200.0), C0, t_eval=times, rtol=1e-10, atol=1e-12)
    c_flow = sol.y.T**2 / np.sum(sol.y.T**2, axis=1, keepdims=True)  # (T, n_sets)
    c_ode = replicator_trajectory(PAPER_G, C0**2 / sq, a=a, c_sq_sum=sq, times=times)
    worst = float(np.max(np.abs(c_flow - c_ode)))
    assert worst <= C_FLOW_ATOL, f"gradient flow on C vs replicator: max |diff| = {worst:.3g}"
    sq_drift = float(np.max(np.abs(np.sum(sol.y**2, axis=0) - sq)))
    assert sq_drift <= 1e-6, f"ΣC² should be conserved, drifted by {sq_drift:.3g}"


def test_temperature_flow_single_sequence_implicit_solution() -> None:
    """x = 2,0,1,0,1,...,0, S = (1,), y = 1: every matching position holds y, no other does.

    Then -∂ℓ/∂a = n0 / (n1 e^a + n0) with n1 matching and n0 = L - n1 other positions, whose
    flow solves n1 e^a + n0 a = n1 e^{a0} + n0 a0 + n0 t; for large t, a ≈ log(e^{a0} + κ t),
    κ = n0 / n1.
    """
    L = 40
    ctx = np.array([[2] + [0, 1] * ((L - 2) // 2) + [0]])  # (1, L), x_L = 0
    assert ctx.shape == (1, L)
    n1, n0 = (L - 2) // 2, L - (L - 2) // 2
    a0 = 0.1
    times = np.geomspace(1.0, 1e4, 9)
    a = temperature_trajectory(ctx, np.array([1]), (1,), vocab_size=3, a0=a0, times=times)
    residual = n1 * np.exp(a) + n0 * a - (n1 * math.exp(a0) + n0 * a0 + n0 * times)
    worst = float(np.max(np.abs(residual) / (n0 * times)))
    assert worst <= IMPLICIT_ATOL, f"implicit solution residual (relative) {worst:.3g}"
    law = log_growth(times, a0, n0 / n1)
    gap = float(abs(a[-1] - law[-1]))
    assert gap <= LOG_LAW_ATOL, f"a(1e4) = {a[-1]:.4f} vs log law {law[-1]:.4f}"
    assert np.all(np.diff(a) > 0), "a(t) should increase"


def test_temperature_flow_converges_to_optimal_temperature() -> None:
    tokens = sample_sequences_np(PAPER_SOURCE, 1000, 61, rng=np.random.default_rng(11))
    ctx, y = tokens[:, :60], tokens[:, 60]
    a_star = optimal_temperature(ctx, y, (1, 2), vocab_size=3)
    a = temperature_trajectory(ctx, y, (1, 2), vocab_size=3, a0=0.01, times=[0.0, 10.0, 1e6])
    assert a[0] == pytest.approx(0.01)
    assert abs(a[-1] - a_star) <= ASTAR_ATOL, f"a(1e6) = {a[-1]:.5f} vs a* = {a_star:.5f}"
    loss0 = gih_objective(ctx, y, (1, 2), vocab_size=3)(0.01)[0]
    loss1 = gih_objective(ctx, y, (1, 2), vocab_size=3)(float(a[1]))[0]
    assert loss1 < loss0, f"the flow should lower the loss: {loss0} -> {loss1}"


def test_log_growth_values() -> None:
    np.testing.assert_allclose(log_growth([0.0, 1.0, 1e300], 0.5, 2.0),
                               [0.5, math.log(math.exp(0.5) + 2.0), math.log(2e300)],
                               rtol=1e-14)


@pytest.mark.parametrize(
    "call",
    [
        lambda: replicator_trajectory([0.0, 0.1], [0.3, 0.3], a=1.0, c_sq_sum=1.0, times=[0, 1]),
        lambda: replicator_trajectory([0.0, 0.1], [0.5, 0.5, 0.0], a=1.0, c_sq_sum=1.0,
                                      times=[0, 1]),
        lambda: replicator_trajectory([0.0, 0.1], [0.5, 0.5], a=1.0, c_sq_sum=0.0, times=[0, 1]),
        lambda: replicator_trajectory([0.0, 0.1], [0.5, 0.5], a=1.0, c_sq_sum=1.0, times=[2, 1]),
        lambda: replicator_closed_form([0.0, np.nan], [0.5, 0.5], a=1.0, c_sq_sum=1.0,
                                       times=[0, 1]),
        lambda: temperature_trajectory(np.array([[0, 1, 0]]), np.array([1]), (1,), vocab_size=2,
                                       a0=math.inf, times=[0, 1]),
        lambda: log_growth([1.0], 0.0, -1.0),
        lambda: log_growth([-1.0], 0.0, 1.0),
    ],
)
def test_bad_input_raises(call) -> None:
    with pytest.raises(InductionHeadsError, match="expected"):
        call()
