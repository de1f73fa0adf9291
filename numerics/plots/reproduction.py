"""Figures of a reproduced paper run (``python -m numerics reproduce``) and of a copier's
parameters over training.

- :func:`plot_reproduction`: ``c̃`` per head set, ``a`` and the training loss over steps, with
  the authors' facts drawn where they apply (a point with the tolerance as an error bar, a
  bound as a dashed line) and, where the recipe keeps one, the authors' trajectory dashed.
- :func:`plot_parameter_heatmaps`: one heatmap per logged parameter and head (a parameter of
  shape (H, r, c) gives H panels of r × c; one of shape (H, c) one panel of H × c) at chosen
  steps (rows), on one colour scale per parameter, values written in small panels.

Both take plain data (arrays, lists, dicts) and return a :class:`matplotlib.figure.Figure`
built without ``pyplot``; given ``path`` they save it (PNG).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from numerics.plots.training import finish, set_colors
from theory.errors import require
from theory.notation import head_set_label

__all__ = ["PANELS", "plot_reproduction", "heatmap_steps", "plot_parameter_heatmaps"]

PANELS = ("selector", "a", "loss")
"""The panels of :func:`plot_reproduction`, where each mark is drawn."""

_ANNOTATE_CELLS = 36
"""Panels with at most this many cells have their values written in."""

_MARK_COLORS = ("black", "dimgray", "darkgoldenrod", "teal", "crimson", "navy")
"""Colours of the facts' marks, apart from the head sets' tab10 colours."""


def _draw_mark(ax: Any, mark: Mapping[str, Any], color: str) -> None:
    """A fact: ``point`` (step, value) with ``band`` (low, high) as an error bar, or a bound
    (``band`` without ``point``) as dashed lines across the panel."""
    low, high = mark["band"]
    if mark.get("point") is None:
        for y in (low, high):
            if y is not None:
                ax.axhline(y, color=color, ls="--", lw=1.1, zorder=2)
        ax.plot([], [], color=color, ls="--", label=mark["label"])
        return
    x, y = mark["point"]
    lo = y - low if low is not None else 0.0
    hi = high - y if high is not None else 0.0
    ax.errorbar([x + 1.0], [y], yerr=[[lo], [hi]], fmt="D", color=color, ms=6, capsize=4,
                zorder=6, label=mark["label"])


def plot_reproduction(steps: Any, selector: Any, sets: Sequence[Sequence[int]], a: Any,
                      loss: Any, *, marks: Sequence[Mapping[str, Any]] = (),
                      authors: Mapping[str, Any] | None = None, title: str = "",
                      path: str | Path | None = None) -> Figure:
    """Three panels over ``step + 1`` (log axis): ``c̃_S`` per set, ``a``, the training loss.

    Args:
        steps: ``(T,)`` logged steps.
        selector: ``(T, |𝒮|)`` ``c̃``.
        sets: the head sets (columns of ``selector``).
        a: ``(T,)`` the temperature.
        loss: ``(T,)`` the training loss.
        marks: the authors' facts: ``{"panel": one of PANELS, "label", "point": (step, value)
            or None, "band": (low or None, high or None)}``.
        authors: the authors' trajectory, ``{"steps": (T',), "a": (T',), "loss": (T',),
            "c_tilde": {head set tuple: (T',)}}``, dashed; None for none.
        title: the figure's title.
        path: save the PNG here.
    """
    fig = Figure(figsize=(16, 4.8), layout="constrained")
    axes = dict(zip(PANELS, fig.subplots(1, 3)))
    x = np.asarray(steps, dtype=float) + 1.0                           # (T,)
    c = np.asarray(selector, dtype=float)                              # (T, |𝒮|)
    colors = set_colors(len(sets))
    for k, s in enumerate(sets):
        axes["selector"].plot(x, c[:, k], color=colors[k], lw=1.4, marker=".", ms=3,
                              label=head_set_label(s))
    axes["a"].plot(x, np.asarray(a, dtype=float), color="k", lw=1.4, marker=".", ms=3,
                   label="this run")
    axes["loss"].plot(x, np.asarray(loss, dtype=float), color="k", lw=1.4, marker=".", ms=3,
                      label="this run (training sample)")
    if authors is not None:
        ax_steps = np.asarray(authors["steps"], dtype=float) + 1.0
        keep = ax_steps <= x[-1] if len(x) else ax_steps > 0
        for k, s in enumerate(sets):
            curve = authors.get("c_tilde", {}).get(tuple(s))
            if curve is not None:
                axes["selector"].plot(ax_steps[keep], np.asarray(curve)[keep], color=colors[k],
                                      ls="--", lw=2.0, label=f"{head_set_label(s)}, authors")
        for key in ("a", "loss"):
            axes[key].plot(ax_steps[keep], np.asarray(authors[key])[keep], color="C3", ls="--",
                           lw=2.0, label="authors' run")
    for k, mark in enumerate(marks):
        require(mark["panel"] in PANELS, "mark panel", f"one of {PANELS}", mark["panel"])
        _draw_mark(axes[mark["panel"]], mark, _MARK_COLORS[k % len(_MARK_COLORS)])
    labels = {"selector": ("selector weight c̃_S", "c̃ per head set"),
              "a": ("a", "classifier temperature a"),
              "loss": ("official_ce loss (nats)", "training loss")}
    for key, ax in axes.items():
        ax.set_xscale("log")
        ylabel, panel_title = labels[key]
        ax.set(xlabel="step + 1 (log scale; step 0 is the initialisation)", ylabel=ylabel,
               title=panel_title)
        ax.legend(fontsize=7, loc="best")
    axes["selector"].set_ylim(-0.02, 1.02)
    if title:
        fig.suptitle(title, fontsize=10)
    return finish(fig, path)


def heatmap_steps(steps: Sequence[int], count: int = 4) -> list[int]:
    """Up to ``count`` logged steps for :func:`plot_parameter_heatmaps`: the first, the last
    and log-spaced ones between (each the logged step nearest in ``log(step + 1)``)."""
    require(len(steps) >= 1 and count >= 1, "steps, count", "a logged step and count >= 1",
            (len(steps), count))
    logged = np.asarray(steps, dtype=np.int64)                         # (T,)
    targets = np.geomspace(logged[0] + 1.0, logged[-1] + 1.0, count)
    picks = {int(logged[np.argmin(np.abs(np.log(logged + 1.0) - np.log(t)))]) for t in targets}
    return sorted(picks)


def _panels(name: str, value: np.ndarray) -> list[tuple[str, np.ndarray, str, str]]:
    """``(panel title, matrix, y label, x label)`` of one parameter at one step."""
    if value.ndim == 3:                                                # (H, r, c)
        return [(f"{name}, head {h + 1}", value[h], "row", "column")
                for h in range(value.shape[0])]
    if value.ndim == 2:                                                # (H, c)
        return [(name, value, "head", "index")]
    return [(name, value.reshape(1, -1), "", "index")]


def plot_parameter_heatmaps(steps: Any, trajectories: Mapping[str, Any], *,
                            at_steps: Sequence[int] | None = None,
                            labels: Mapping[str, tuple[str, str]] | None = None,
                            path: str | Path | None = None) -> Figure:
    """Heatmaps of the copier's parameters (rows: steps; columns: parameter and head).

    Args:
        steps: ``(T,)`` steps of the logged rows.
        trajectories: ``{name: (T, *shape)}`` (:func:`numerics.training.parameter_trajectories`).
        at_steps: logged steps to draw (default :func:`heatmap_steps`).
        labels: ``{name: (y label, x label)}`` for a parameter's axes (default: ``head`` /
            ``index`` for (H, c), ``row`` / ``column`` per head for (H, r, c)); indices count
            from 0, heads from 1.
        path: save the PNG here.

    Raises:
        InductionHeadsError: without parameters, or on a step that was not logged.
    """
    require(len(trajectories) >= 1, "trajectories", "at least one parameter", 0)
    logged = [int(s) for s in np.asarray(steps)]
    chosen = heatmap_steps(logged) if at_steps is None else [int(s) for s in at_steps]
    require(all(s in logged for s in chosen), "at_steps", f"steps among the logged {logged}",
            chosen)
    arrays = {name: np.asarray(v, dtype=float) for name, v in trajectories.items()}
    columns = [p for name, v in arrays.items() for p in _panels(name, v[0])]
    fig = Figure(figsize=(1.9 * len(columns) + 1.0, 1.9 * len(chosen) + 0.8),
                 layout="constrained")
    grid = np.atleast_2d(fig.subplots(len(chosen), len(columns), squeeze=False))
    for row, step in enumerate(chosen):
        t = logged.index(step)
        col = 0
        for name, v in arrays.items():
            bound = float(np.max(np.abs(v))) or 1.0
            for panel_title, matrix, ylabel, xlabel in _panels(name, v[t]):
                ax = grid[row, col]
                image = ax.imshow(matrix, cmap="coolwarm", vmin=-bound, vmax=bound,
                                  aspect="auto")
                if matrix.size <= _ANNOTATE_CELLS:
                    for (i, j), value in np.ndenumerate(matrix):
                        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6)
                ylab, xlab = (labels or {}).get(name, (ylabel, xlabel))
                rows, cols = matrix.shape
                ax.set_xticks(range(cols))
                ax.set_yticks(range(rows), [str(i + 1) for i in range(rows)]
                              if ylab == "head" else [str(i) for i in range(rows)])
                ax.set_title(f"{panel_title}\nstep {step}", fontsize=8)
                ax.set_xlabel(xlab, fontsize=7)
                ax.set_ylabel(ylab, fontsize=7)
                ax.tick_params(labelsize=6)
                if row == len(chosen) - 1:
                    fig.colorbar(image, ax=ax, shrink=0.7)
                col += 1
    return finish(fig, path)
