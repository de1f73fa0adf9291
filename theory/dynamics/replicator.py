"""Reduced training dynamics (scipy ``solve_ivp``); time ``t`` = learning rate × steps.

**Stage 1, selector (replicator equation).** Near ``a = 0`` the loss is linear in the
normalised selector weights, ``ℓ ≈ ℓ0 - a Σ_S c̃_S G_S`` (``G_S`` the selection criterion of
docs/theory.md §3). With ``c_S = C_S²`` and ``c̃_S = C_S² / ΣC²``, ``∂c̃_T/∂C_S = (2C_S/ΣC²)(δ_TS - c̃_T)``,
so gradient flow ``dC_S/dt = -∂ℓ/∂C_S = (2a C_S/ΣC²)(G_S - Ḡ)`` with ``Ḡ = Σ_T c̃_T G_T``. Hence
``d(ΣC²)/dt = 4a(Ḡ - Ḡ) = 0`` (``ΣC²`` is conserved) and

    dc̃_S/dt = (4a/ΣC²) c̃_S (G_S - Ḡ),   solved by   c̃_S(t) ∝ c̃_S(0) exp(4a t G_S / ΣC²).

**Stage 3, classifier temperature.** With the copier exact and the selector one-hot on a set
``S``, gradient flow on ``a`` is ``da/dt = -∂ℓ/∂a`` of the GIH loss
(:func:`theory.predictors.reference.gih_objective`). When ``-∂ℓ/∂a ≈ κ e^{-a}`` (large ``a``, every target
found at the matching positions) the solution is ``e^{a(t)} = e^{a0} + κ t``, i.e. ``a`` grows
logarithmically: :func:`log_growth`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from theory.errors import InductionHeadsError, require
from theory.predictors.reference import context_similarity, gih_objective
from theory.validation import is_real

__all__ = [
    "ODE_RTOL",
    "growth_coefficient",
    "ODE_ATOL",
    "SIMPLEX_ATOL",
    "replicator_trajectory",
    "replicator_closed_form",
    "temperature_trajectory",
    "log_growth",
]

ODE_RTOL = 1e-10
"""Relative tolerance of ``solve_ivp``: the reduced ODEs are cheap, so integrate tightly."""

ODE_ATOL = 1e-13
"""Absolute tolerance of ``solve_ivp`` (c̃ lives in [0, 1]; a is O(10))."""

SIMPLEX_ATOL = 1e-8
"""How far ``Σ c̃(0)`` may be from 1 (float round-off of a user-given distribution)."""


def _finite_number(value: Any, what: str, expected: str = "a finite number") -> float:
    require(is_real(value) and math.isfinite(value), what, expected, value)
    return float(value)


def _check_times(times: Any) -> np.ndarray:
    t = np.asarray(times, dtype=np.float64)
    require(t.ndim == 1 and t.size >= 1 and bool(np.all(np.isfinite(t))), "times",
            "a 1-D array of finite times", getattr(t, "shape", times))
    require(bool(t[0] >= 0 and np.all(np.diff(t) >= 0)), "times",
            "non-decreasing times >= 0 (integration starts at t = 0)", t[:5])
    return t


def _check_replicator(criterion: Any, c_tilde0: Any, a: Any, c_sq_sum: Any, times: Any
                      ) -> tuple[np.ndarray, np.ndarray, float, float, np.ndarray]:
    g = np.asarray(criterion, dtype=np.float64)
    require(g.ndim == 1 and g.size >= 1 and bool(np.all(np.isfinite(g))), "criterion",
            "a finite 1-D array (n_sets,)", g)
    c0 = np.asarray(c_tilde0, dtype=np.float64)
    require(c0.shape == g.shape, "c_tilde0", f"shape {g.shape} (one weight per set)", c0.shape)
    require(bool(np.all(np.isfinite(c0)) and np.all(c0 >= 0)), "c_tilde0",
            "finite weights >= 0", c0)
    require(abs(float(c0.sum()) - 1.0) <= SIMPLEX_ATOL, "c_tilde0", "weights summing to 1",
            float(c0.sum()))
    a_val = _finite_number(a, "a")
    sq = _finite_number(c_sq_sum, "c_sq_sum", "a finite number > 0")
    require(sq > 0, "c_sq_sum", "ΣC² > 0", c_sq_sum)
    return g, c0, a_val, sq, _check_times(times)


def replicator_trajectory(criterion: Any, c_tilde0: Any, *, a: float, c_sq_sum: float,
                          times: Any, method: str = "DOP853") -> np.ndarray:
    """Integrate ``dc̃_S/dt = (4a/ΣC²) c̃_S (G_S - Σ_T c̃_T G_T)`` from ``t = 0``.

    Args:
        criterion: ``G_S`` per set, ``(n_sets,)``.
        c_tilde0: ``c̃(0)`` on the simplex, ``(n_sets,)``.
        a: the (frozen) classifier temperature.
        c_sq_sum: ``ΣC²``, conserved by the flow.
        times: ``(T,)`` non-decreasing times ``>= 0`` (learning rate × steps) to report.
        method: a ``solve_ivp`` method.

    Returns:
        float64 ``(T, n_sets)``: ``c̃(t)`` at each requested time.
    """
    g, c0, a_val, sq, t = _check_replicator(criterion, c_tilde0, a, c_sq_sum, times)
    rate = 4.0 * a_val / sq

    def rhs(_: float, c: np.ndarray) -> np.ndarray:  # c: (n_sets,)
        return rate * c * (g - c @ g)

    if t[-1] == 0.0:
        return np.tile(c0, (t.size, 1))
    sol = solve_ivp(rhs, (0.0, float(t[-1])), c0, method=method, t_eval=t,
                    rtol=ODE_RTOL, atol=ODE_ATOL)
    if not sol.success:
        raise InductionHeadsError(f"replicator ODE: expected a successful solve, received "
                                  f"{sol.message!r}")
    return sol.y.T  # (T, n_sets)


def replicator_closed_form(criterion: Any, c_tilde0: Any, *, a: float, c_sq_sum: float,
                           times: Any) -> np.ndarray:
    """``c̃_S(t) = c̃_S(0) e^{4a t G_S/ΣC²} / Σ_T c̃_T(0) e^{4a t G_T/ΣC²}``, ``(T, n_sets)``.

    Evaluated in log space (a softmax over sets), so it stays exact for very large ``t``.
    """
    g, c0, a_val, sq, t = _check_replicator(criterion, c_tilde0, a, c_sq_sum, times)
    with np.errstate(divide="ignore"):
        log_c0 = np.log(c0)  # (n_sets,), -inf where c̃(0) = 0
    logits = log_c0[None, :] + (4.0 * a_val / sq) * t[:, None] * g[None, :]  # (T, n_sets)
    logits -= logits.max(axis=1, keepdims=True)
    w = np.exp(logits)  # (T, n_sets)
    return w / w.sum(axis=1, keepdims=True)


def temperature_trajectory(context: Any, targets: Any, head_set: Sequence[int], *,
                           vocab_size: int, a0: float, times: Any, method: str = "LSODA"
                           ) -> np.ndarray:
    """Integrate ``da/dt = -∂ℓ/∂a`` of the GIH loss on a fixed sample, from ``a(0) = a0``.

    Args:
        context: integer ``(n, L)``, ``x_1..x_L``.
        targets: integer ``(n,)``, ``x_{L+1}``.
        head_set: the offsets ``S`` of the exact copier (the selector one-hot on ``S``).
        vocab_size: ``d``.
        a0: initial temperature.
        times: ``(T,)`` non-decreasing times ``>= 0`` (learning rate × steps).
        method: a ``solve_ivp`` method.

    Returns:
        float64 ``(T,)``: ``a(t)``. On a finite sample ``a(t)`` converges to the minimiser
        :func:`theory.predictors.reference.optimal_temperature`; the logarithmic law holds before that.
    """
    a_start = _finite_number(a0, "a0")
    t = _check_times(times)
    objective = gih_objective(context, targets, head_set, vocab_size=vocab_size)

    def rhs(_: float, a: np.ndarray) -> np.ndarray:  # a: (1,)
        return np.array([-objective(float(a[0]))[1]])

    if t[-1] == 0.0:
        return np.full(t.size, a_start)
    sol = solve_ivp(rhs, (0.0, float(t[-1])), [a_start], method=method, t_eval=t,
                    rtol=ODE_RTOL, atol=ODE_ATOL)
    if not sol.success:
        raise InductionHeadsError(f"temperature ODE: expected a successful solve, received "
                                  f"{sol.message!r}")
    return sol.y[0]  # (T,)


def log_growth(t: Any, a0: float, kappa: float) -> np.ndarray:
    """The large-``a`` law ``a(t) = log(e^{a0} + κ t)``, evaluated stably; shape of ``t``.

    Args:
        t: times ``>= 0`` (scalar or array).
        a0: ``a(0)``.
        kappa: ``κ > 0``, from ``-∂ℓ/∂a ≈ κ e^{-a}``.
    """
    a_start = _finite_number(a0, "a0")
    k = _finite_number(kappa, "kappa", "a finite number > 0")
    require(k > 0, "kappa", "κ > 0", kappa)
    tt = np.asarray(t, dtype=np.float64)
    require(bool(np.all(np.isfinite(tt)) and np.all(tt >= 0)), "t", "finite times >= 0", t)
    with np.errstate(divide="ignore"):
        return np.logaddexp(a_start, np.log(k * tt))


def growth_coefficient(context: Any, targets: Any, head_set: Sequence[int]) -> float:
    """``κ`` of ``-∂ℓ/∂a = κ e^{-a} + O(e^{-2a})`` for the GIH on ``head_set``.

    With ``m`` positions matching the query's context, ``m_e`` of them holding the target, and
    ``u = L - m``, ``u_e`` the others, ``κ = mean_i 1{m_e >= 1}(u/m - u_e/m_e)`` over the
    contexts ``(n, L)`` and targets ``(n,)``; contexts with ``m_e = 0`` push ``a`` back with a
    constant force instead (which stops it at ``a*(L)``).
    """
    ctx = np.asarray(context)
    sim = context_similarity(ctx, tuple(head_set))  # (n, L) in {0, 1}
    hit = (ctx == np.asarray(targets)[:, None]).astype(np.float64)  # (n, L): 1{x_l = e}
    m, m_e = sim.sum(axis=1), (sim * hit).sum(axis=1)  # (n,), (n,)
    u, u_e = ctx.shape[1] - m, hit.sum(axis=1) - m_e  # (n,), (n,)
    ok = m_e >= 1
    terms = np.zeros(len(ctx))
    terms[ok] = u[ok] / m[ok] - u_e[ok] / m_e[ok]
    return float(terms.mean())
