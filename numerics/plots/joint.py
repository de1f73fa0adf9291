"""The figure of a joint run whose selection moves with the temperature (docs/theory.md §3.8).

:func:`plot_joint_selection`: on the left the selector weights ``c̃_S`` of the leading sets and
the temperature ``a`` over steps, the run solid and theory's path on the same training sample
dashed, the measured and the predicted switch steps as vertical lines; on the right the held-out
loss of each of those sets' GIH over a grid of ``a`` (one standard error bands), the switch
temperatures (with their standard errors) and the ``a`` each path has at its switch step.
The empty set's GIH (uniform attention) is left off the right panel: its loss does not depend on
``a`` and sits far above the others.
Every step of a joint run is logged, so the step axes are linear.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from numerics.plots.training import finish, set_colors
from theory.errors import require
from theory.notation import head_set_label

__all__ = ["SHOWN_WEIGHT", "plot_joint_selection"]

SHOWN_WEIGHT = 0.2
"""A set is drawn when its ``c̃`` reaches this in the run or in theory's path: the sets the
selector moves to, not the ones it leaves at their initial share."""

_MEASURED, _PREDICTED = "k", "0.45"


def _mark_switches(ax: Any, measured: int | None, predicted: int | None, se: float, *,
                   label: bool) -> None:
    """Vertical lines at the measured (solid) and predicted (dashed, ± SE band) switch steps."""
    if predicted is not None:
        if math.isfinite(se):
            ax.axvspan(predicted - se, predicted + se, color=_PREDICTED, alpha=0.15, lw=0)
        ax.axvline(predicted, ls="--", color=_PREDICTED, lw=1.4,
                   label=f"switch step, theory: {predicted} ± {se:.0f}" if label else None)
    if measured is not None:
        ax.axvline(measured, ls="-", color=_MEASURED, lw=1.0,
                   label=f"switch step, run: {measured}" if label else None)


def plot_joint_selection(sets: Sequence[Sequence[int]], steps: Any, selector: Any, a: Any, *,
                         predicted_selector: Any, predicted_a: Any, measured_switch: int | None,
                         predicted_switch: int | None, predicted_switch_se: float,
                         temperatures: Any, loss_mean: Any, loss_se: Any,
                         switches: Sequence[Mapping[str, Any]], loss_name: str, heldout: int,
                         sequences: int, path: str | Path | None = None) -> Figure:
    """A joint run's selector and temperature against theory, and the GIH losses over ``a``.

    Args:
        sets: the head sets (|𝒮|), columns of both selectors and rows of the losses.
        steps: ``(T,)`` steps, shared by the run and the predicted path.
        selector: ``(T, |𝒮|)`` the run's ``c̃``.
        a: ``(T,)`` the run's temperature.
        predicted_selector: ``(T, |𝒮|)`` theory's ``c̃`` on the run's training sample.
        predicted_a: ``(T,)`` theory's temperature.
        measured_switch: the run's switch step, or None.
        predicted_switch: theory's switch step, or None.
        predicted_switch_se: its standard error (nan: none).
        temperatures: ``(A,)`` grid of ``a``.
        loss_mean: ``(|𝒮|, A)`` held-out loss of each set's GIH.
        loss_se: ``(|𝒮|, A)`` its standard error.
        switches: the switch temperatures, ``theory.Switch.to_dict()`` each.
        loss_name: the loss (a label).
        heldout: sequences behind the losses (a label).
        sequences: the run's training sequences (a label).
        path: save the PNG here.
    """
    labels = [head_set_label(s) for s in sets]
    sel = np.asarray(selector, dtype=float)  # (T, |𝒮|)
    pred = np.asarray(predicted_selector, dtype=float)  # (T, |𝒮|)
    s = np.asarray(steps, dtype=float)  # (T,)
    grid = np.asarray(temperatures, dtype=float)  # (A,)
    mean = np.asarray(loss_mean, dtype=float)  # (|𝒮|, A)
    se = np.asarray(loss_se, dtype=float)  # (|𝒮|, A)
    T, S = s.size, len(labels)
    require(sel.shape == (T, S) and pred.shape == (T, S), "selector",
            f"run and predicted c̃ of shape (T, |𝒮|) = ({T}, {S})", (sel.shape, pred.shape))
    require(mean.shape == (S, grid.size) and se.shape == mean.shape, "loss_mean",
            f"losses of shape (|𝒮|, A) = ({S}, {grid.size})", (mean.shape, se.shape))
    top = np.maximum(sel.max(axis=0), pred.max(axis=0))  # (|𝒮|,)
    shown = [j for j in range(S) if top[j] >= SHOWN_WEIGHT] or [int(np.argmax(top))]
    colors = set_colors(S)

    fig = Figure(figsize=(13.0, 6.6), layout="constrained")
    grid_spec = fig.add_gridspec(2, 2, height_ratios=(1.6, 1.0))
    ax_c = fig.add_subplot(grid_spec[0, 0])
    ax_a = fig.add_subplot(grid_spec[1, 0], sharex=ax_c)
    ax_l = fig.add_subplot(grid_spec[:, 1])

    for j in shown:
        ax_c.plot(s, sel[:, j], "-", color=colors[j], lw=1.8, label=f"c̃{labels[j]}, run")
        ax_c.plot(s, pred[:, j], "--", color=colors[j], lw=1.6,
                  label=f"c̃{labels[j]}, theory (exact copier)")
    _mark_switches(ax_c, measured_switch, predicted_switch, float(predicted_switch_se),
                   label=True)
    ax_c.set(ylim=(-0.02, 1.02), ylabel="selector weight c̃_S",
             title=f"selector: joint run on n = {sequences} (solid) and theory on its sample "
                   "(dashed)")
    ax_c.legend(fontsize=7.5, loc="center")

    ax_a.plot(s, np.asarray(a, dtype=float), "-", color=_MEASURED, lw=1.8, label="a, run")
    ax_a.plot(s, np.asarray(predicted_a, dtype=float), "--", color=_PREDICTED, lw=1.6,
              label="a, theory")
    _mark_switches(ax_a, measured_switch, predicted_switch, float(predicted_switch_se),
                   label=False)
    for k, sw in enumerate(switches):
        ax_a.axhline(float(sw["temperature"]), ls=":", color=f"C{3 + k}", lw=1.2,
                     label=f"switch temperature {head_set_label(sw['before'])} → "
                           f"{head_set_label(sw['after'])}")
    ax_a.set(xlabel="step", ylabel="temperature a", title="temperature")
    ax_a.legend(fontsize=7.5, loc="lower right")

    for j in (j for j in shown if sets[j]):
        ax_l.plot(grid, mean[j], "-", color=colors[j], lw=1.6, label=f"GIH{labels[j]}")
        ax_l.fill_between(grid, mean[j] - se[j], mean[j] + se[j], color=colors[j], alpha=0.2,
                          lw=0)
    for k, sw in enumerate(switches):
        t, t_se = float(sw["temperature"]), float(sw["stderr"])
        ax_l.axvspan(t - t_se, t + t_se, color=f"C{3 + k}", alpha=0.2, lw=0)
        ax_l.axvline(t, ls=":", color=f"C{3 + k}", lw=1.6,
                     label=f"switch temperature {head_set_label(sw['before'])} → "
                           f"{head_set_label(sw['after'])}: {t:.2f} ± {t_se:.2f}")
    if measured_switch is not None:
        at = float(np.asarray(a, dtype=float)[list(s).index(measured_switch)])
        ax_l.axvline(at, ls="-", color=_MEASURED, lw=1.0,
                     label=f"trained a at the run's switch step: {at:.2f}")
    if predicted_switch is not None:
        at = float(np.asarray(predicted_a, dtype=float)[list(s).index(predicted_switch)])
        ax_l.axvline(at, ls="--", color=_PREDICTED, lw=1.4,
                     label=f"theory's a at its switch step: {at:.2f}")
    ax_l.set(xlabel="temperature a", ylabel="loss (nats)",
             title=f"held-out {loss_name} loss of each GIH_S (± 1 SE), n = {heldout} fresh")
    ax_l.legend(fontsize=7.5)
    fig.suptitle("Joint training on the weak-parent mixture: the selection moves with the "
                 "temperature a")
    return finish(fig, path)
