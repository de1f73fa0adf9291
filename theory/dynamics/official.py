"""The official code's loss for the reduced temperature dynamics (docs/theory.md §4).

The paper's official code applies ``nn.CrossEntropyLoss`` to the prediction ``ŷ`` as if it were
logits. With the copier exact and the selector one-hot on ``S`` (the GIH), its loss and
temperature dynamics are the twins of :func:`theory.gih_loss_and_grad` and
:func:`theory.temperature_trajectory`: with ``ŷ_e(a) = Σ_l softmax_l(a s_l) 1{x_l = e}``,

    ℓ = mean[-ŷ_y + log Σ_e exp ŷ_e],
    ∂ℓ/∂a = mean[-∂ŷ_y/∂a + Σ_e q_e ∂ŷ_e/∂a],   q = softmax(ŷ),
    ∂ŷ_e/∂a = Σ_l p_l (s_l - E_p s) 1{x_l = e}.

:func:`official_gih_loss_and_grad` evaluates both, :func:`official_temperature_trajectory`
integrates ``da/dt = -∂ℓ/∂a`` (``t`` = learning rate × steps).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

from theory.errors import InductionHeadsError, require
from theory.predictors.reference import context_similarity

__all__ = ["official_gih_loss_and_grad", "official_temperature_trajectory"]

_ODE_RTOL = 1e-8
"""solve_ivp relative tolerance for the 1-D temperature ODE (cheap, so tight)."""


def _official_parts(context: Any, targets: Any, head_set: Sequence[int], vocab_size: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ctx = np.asarray(context)
    y = np.asarray(targets)
    require(y.shape == (ctx.shape[0],) and np.issubdtype(y.dtype, np.integer), "targets",
            f"integer array of shape ({ctx.shape[0]},)", (y.shape, str(y.dtype)))
    sim = context_similarity(ctx, head_set)  # (n, L)
    onehot = (ctx[:, :, None] == np.arange(vocab_size)).astype(np.float64)  # (n, L, d)
    target = (y[:, None] == np.arange(vocab_size)).astype(np.float64)  # (n, d)
    return sim, onehot, target


def official_gih_loss_and_grad(context: Any, targets: Any, head_set: Sequence[int], a: float, *,
                               vocab_size: int) -> tuple[float, float]:
    """``(ℓ(a), ∂ℓ/∂a)`` of the GIH under the official loss (CE applied to ŷ as logits).

    Args:
        context: integer ``(n, L)``.
        targets: integer ``(n,)``.
        head_set: offsets ``S`` of the exact copier similarity.
        a: temperature (finite).
        vocab_size: ``d``.
    """
    return _official_objective(*_official_parts(context, targets, head_set, vocab_size), a)


def _official_objective(sim: np.ndarray, onehot: np.ndarray, target: np.ndarray, a: float
                        ) -> tuple[float, float]:
    require(isinstance(a, (int, float, np.floating)) and math.isfinite(a), "a",
            "a finite number", a)
    logits = a * (sim - sim.max(axis=1, keepdims=True))  # (n, L)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)  # (n, L)
    centred = sim - np.sum(p * sim, axis=1, keepdims=True)  # (n, L): s_l - E_p s
    y_hat = np.einsum("nl,nld->nd", p, onehot)  # (n, d)
    dy_hat = np.einsum("nl,nld->nd", p * centred, onehot)  # (n, d)
    q = np.exp(y_hat - y_hat.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)  # (n, d) softmax(ŷ)
    lse = np.log(np.sum(np.exp(y_hat - y_hat.max(axis=1, keepdims=True)), axis=1)) + \
        y_hat.max(axis=1)  # (n,)
    loss = lse - np.sum(target * y_hat, axis=1)  # (n,)
    grad = np.sum((q - target) * dy_hat, axis=1)  # (n,)
    return float(loss.mean()), float(grad.mean())


def official_temperature_trajectory(context: Any, targets: Any, head_set: Sequence[int], *,
                                    vocab_size: int, a0: float, times: Any) -> np.ndarray:
    """Integrate ``da/dt = -∂ℓ/∂a`` of the official loss of the GIH from ``a(0) = a0``.

    The reduced stage-3 dynamics of the official run (copier exact on ``head_set``, selector one-hot);
    ``t`` is learning rate × steps, so with lr 1 ``a(t)`` approximates ``a`` after ``t`` steps.

    Args:
        context: integer ``(n, L)``; targets: integer ``(n,)``.
        head_set: offsets of the exact copier similarity.
        vocab_size: ``d``.
        a0: initial temperature.
        times: ``(T,)`` non-decreasing times ``>= 0``.

    Returns:
        float64 ``(T,)``.
    """
    parts = _official_parts(context, targets, head_set, vocab_size)
    t = np.asarray(times, dtype=np.float64)
    require(t.ndim == 1 and t.size >= 1 and bool(np.all(np.diff(t) >= 0)) and t[0] >= 0,
            "times", "a 1-D non-decreasing array of times >= 0", t[:5])
    if t[-1] == 0:
        return np.full(t.size, float(a0))
    sol = solve_ivp(lambda _, a: [-_official_objective(*parts, float(a[0]))[1]],
                    (0.0, float(t[-1])), [float(a0)], method="LSODA", t_eval=t,
                    rtol=_ODE_RTOL, atol=1e-10)
    if not sol.success:
        raise InductionHeadsError(f"official temperature ODE: expected a successful solve, "
                                  f"received {sol.message!r}")
    return sol.y[0]
