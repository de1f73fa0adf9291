"""Predicted trajectories that the verification overlays on the training history (docs/theory.md §3).

Time units (``theory.dynamics.replicator``): gradient flow time is ``t = lr × steps`` of the stage that
trains the parameter. Plain full-batch gradient descent with learning rate ``η`` is the Euler
scheme of that flow, so after ``k`` steps of a stage the flow is at ``t = η k``.

- **Selector (stage 1, C alone, a and w frozen).** The replicator equation
  ``dc̃_S/dt = (4a/ΣC²) c̃_S (G_S - Ḡ)`` with ``a`` the frozen temperature and ``ΣC²`` the
  initial ``Σ_S C_S²`` (:func:`theory.replicator_closed_form`), for two choices of ``G``:
  ``theory``: the prediction's ``G_L`` (exact copier, the limit the theory ranks with), and
  ``initial copier``: the prediction's ``G_S`` at the spec's initial copier attention
  (``LimitPrediction.initial.values``, :func:`theory.copier_criterion`),
  ``G_S = E Σ_l 1{x_l = y}(s^S_l - s̄^S)/N_y`` with ``s^S_l = Π_{h∈S} <v̄_h(L+1), v̄_h(l)>``
  (the exact ``-∂ℓ/∂(a c̃_S)`` at ``a → 0``), which is what stage 1 actually sees.
- **Temperature (last stage training a alone).** ``da/dt = -∂ℓ/∂a`` of the GIH on S* on the
  training sample from the ``a`` logged when the stage starts
  (:func:`theory.temperature_trajectory`); it assumes an exact copier and a one-hot selector.

Joint training has no such reduction (all parameters move at once): no curves are predicted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from numerics.training.checkpoint import History
from numerics.training.loop import TrainConfig
from theory.dynamics.replicator import replicator_closed_form, temperature_trajectory

__all__ = ["CURVE_POINTS", "predicted_curves"]

CURVE_POINTS = 200
"""Points per predicted curve (the curves are smooth; the history is log-spaced)."""


def _stage_span(history: History, config: TrainConfig, index: int) -> tuple[int, int]:
    """Global steps (first, last) covered by stage ``index``."""
    start = sum(s.steps for s in config.stages[:index])
    return start, start + config.stages[index].steps


def predicted_curves(history: History, config: TrainConfig, *, criterion: np.ndarray,
                     initial_criterion: np.ndarray | None, c_sq_sum: float,
                     selected_set: tuple[int, ...], tokens: torch.Tensor,
                     vocab_size: int) -> dict[str, Any]:
    """The predicted selector and temperature curves for a stage-wise run (module docstring).

    Args:
        history: the run's history (its rows give ``c̃(0)`` and the ``a`` at each stage start).
        config: the run's configuration.
        criterion: ``(|𝒮|,)`` the prediction's ``G_L`` per set.
        initial_criterion: ``(|𝒮|,)`` ``G`` at the initial copier (the prediction's
            ``initial_criterion``), or None.
        c_sq_sum: ``Σ_S C_S²`` at initialisation.
        selected_set: ``S*``.
        tokens: int64 ``(n, L+1)`` the training sample.
        vocab_size: ``d``.

    Returns:
        ``{"selector": {...} | None, "temperature": {...} | None}`` (None for joint runs or a
        missing stage). ``selector``: ``steps`` (T,), ``theory`` and ``initial_copier``
        ``(T, |𝒮|)`` lists, and the inputs ``a``, ``lr``, ``c_sq_sum``, ``criterion``,
        ``initial_criterion``. ``temperature``: ``steps`` (T,), ``a`` (T,), ``lr``.
    """
    out: dict[str, Any] = {"selector": None, "temperature": None}
    if config.mode != "stagewise":
        return out
    stages = list(config.stages)
    first_c = next((i for i, s in enumerate(stages) if s.params == ("C",)), None)
    if first_c is not None and stages[first_c].steps > 0:
        lo, hi = _stage_span(history, config, first_c)
        steps = np.linspace(lo, hi, CURVE_POINTS)  # (T,)
        times = stages[first_c].lr_of("C") * (steps - lo)  # (T,)
        row = int(np.flatnonzero(history.steps <= lo)[-1])
        c0 = history.selector[row] / history.selector[row].sum()  # (|𝒮|,), float32 round-off
        a = float(history.a[row])
        sel = {"steps": steps.tolist(), "a": a, "lr": stages[first_c].lr_of("C"),
               "c_sq_sum": c_sq_sum, "criterion": np.asarray(criterion).tolist(),
               "initial_criterion": (None if initial_criterion is None
                                     else np.asarray(initial_criterion).tolist()),
               "theory": replicator_closed_form(criterion, c0, a=a, c_sq_sum=c_sq_sum,
                                                times=times).tolist(),
               "initial_copier": None}
        if initial_criterion is not None:
            sel["initial_copier"] = replicator_closed_form(
                initial_criterion, c0, a=a, c_sq_sum=c_sq_sum, times=times).tolist()
        out["selector"] = sel
    last_a = [i for i, s in enumerate(stages) if s.params == ("a",) and s.steps > 0]
    if last_a:
        lo, hi = _stage_span(history, config, last_a[-1])
        steps = np.linspace(lo, hi, CURVE_POINTS)  # (T,)
        lr = stages[last_a[-1]].lr_of("a")
        row = int(np.flatnonzero(history.steps <= lo)[-1])
        ctx, y = tokens[:, :-1].cpu().numpy(), tokens[:, -1].cpu().numpy()
        a = temperature_trajectory(ctx, y, selected_set, vocab_size=vocab_size,
                                   a0=float(history.a[row]), times=lr * (steps - lo))
        out["temperature"] = {"steps": steps.tolist(), "a": a.tolist(), "lr": lr}
    return out
