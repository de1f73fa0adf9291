"""Figures of a verification run: the training history against the predicted limit.

Every function takes plain data (arrays, lists, dicts as in ``report.json``), returns a
:class:`matplotlib.figure.Figure` built without ``pyplot`` (no global figure state, no window,
no backend switch: ``savefig`` renders PNG with the Agg canvas) and, given ``path``, saves it.

- :func:`plot_selector`: ``c̃_S`` over steps with the predicted replicator trajectories.
- :func:`plot_copier`: copier attention per head, initialisation versus trained.
- :func:`plot_temperature`: ``a`` over steps with the predicted growth and ``a*(L)``.
- :func:`plot_losses`: the training loss against the reference predictors' held-out losses.
- :func:`save_report_figures`: all four from a ``report.json`` dict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

__all__ = ["FIGURE_NAMES", "plot_selector", "plot_copier", "plot_temperature", "plot_losses",
           "save_report_figures"]

FIGURE_NAMES = ("selector.png", "copier.png", "temperature.png", "losses.png")
"""File names :func:`save_report_figures` writes, in order."""

_DPI = 120


def _finish(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        fig.savefig(Path(path), dpi=_DPI)
    return fig


def _stage_lines(ax: Any, bounds: Sequence[float] | None) -> None:
    for b in bounds or ():
        ax.axvline(b, color="0.8", lw=0.8, zorder=0)


def plot_selector(steps: Any, selector: Any, sets: Sequence[Sequence[int]], *,
                  selected_set: Sequence[int] | None = None, predicted: Mapping[str, Any] | None = None,
                  stage_bounds: Sequence[float] | None = None,
                  path: str | Path | None = None) -> Figure:
    """``c̃_S`` against the global step, one line per set; predicted curves dashed / dotted.

    Args:
        steps: ``(T,)`` logged global steps.
        selector: ``(T, |𝒮|)`` logged ``c̃``.
        sets: the ``|𝒮|`` head sets.
        selected_set: ``S*`` (drawn thick).
        predicted: ``{"steps": (T',), "theory": (T', |𝒮|), "initial_copier": (T', |𝒮|) | None}``.
        stage_bounds: global steps where stages end (thin vertical lines).
        path: save the PNG here.
    """
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    c = np.asarray(selector, dtype=float)  # (T, |𝒮|)
    colors = [f"C{k % 10}" for k in range(len(sets))]
    star = tuple(selected_set) if selected_set is not None else None
    for k, s in enumerate(sets):
        lw = 2.4 if tuple(s) == star else 1.2
        ax.plot(steps, c[:, k], color=colors[k], lw=lw, label=f"{tuple(s)}")
    if predicted:
        for key, style, label in (("theory", "--", "replicator, exact-copier G_L"),
                                  ("initial_copier", ":", "replicator, G at initial copier")):
            curve = predicted.get(key)
            if curve is None:
                continue
            curve = np.asarray(curve, dtype=float)  # (T', |𝒮|)
            for k in range(len(sets)):
                ax.plot(predicted["steps"], curve[:, k], ls=style, color=colors[k], lw=1.0,
                        label=label if k == 0 else None)
    _stage_lines(ax, stage_bounds)
    ax.set(xlabel="global step", ylabel="c̃_S", ylim=(-0.02, 1.02),
           title=f"selector weights (S* = {star})")
    ax.legend(fontsize=7, ncol=2, loc="center right")
    return _finish(fig, path)


def plot_copier(init: Any, trained: Any, *, predicted_offsets: Sequence[int | None],
                path: str | Path | None = None) -> Figure:
    """Per head, a 2 × M heatmap of ``σ_h(i)``: initialisation (top) and trained (bottom).

    Args:
        init: ``(H, M)`` attention at initialisation.
        trained: ``(H, M)`` attention after training.
        predicted_offsets: per head, the predicted offset (heads in S*) or None (untouched).
        path: save the PNG here.
    """
    a0, a1 = np.asarray(init, dtype=float), np.asarray(trained, dtype=float)  # (H, M) each
    H, M = a1.shape
    fig = Figure(figsize=(max(3.0, 1.0 + 0.9 * M) * H, 2.8), layout="constrained")
    axes = fig.subplots(1, H, squeeze=False)[0]
    for h, ax in enumerate(axes):
        grid = np.stack([a0[h], a1[h]])  # (2, M)
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (r, i), v in np.ndenumerate(grid):
            ax.text(i, r, f"{v:.2f}", ha="center", va="center", fontsize=8,
                    color="k" if v > 0.6 else "w")
        offset = predicted_offsets[h]
        if offset is not None:
            ax.add_patch(Rectangle((offset - 1.5, 0.5), 1, 1, fill=False, ec="red", lw=2))
        ax.set_xticks(range(M), [str(i + 1) for i in range(M)])
        ax.set_yticks([0, 1], ["init", "trained"])
        ax.set(xlabel="offset i",
               title=f"head {h + 1}: " + ("untouched" if offset is None else f"→ {offset}"))
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="σ_h(i)")
    fig.suptitle("copier attention (red: predicted offset)", fontsize=9)
    return _finish(fig, path)


def plot_temperature(steps: Any, a: Any, *, predicted: Mapping[str, Any] | None = None,
                     a_star: float | None = None, stage_bounds: Sequence[float] | None = None,
                     path: str | Path | None = None) -> Figure:
    """``a`` against the global step, the predicted ``a(t)`` (dashed) and ``a*(L)`` (dotted).

    Args:
        steps: ``(T,)`` logged global steps.
        a: ``(T,)`` logged temperature.
        predicted: ``{"steps": (T',), "a": (T',)}`` from the GIH gradient flow, or None.
        a_star: the GIH loss minimiser on the training sample.
        stage_bounds: global steps where stages end.
        path: save the PNG here.
    """
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(steps, a, "o-", ms=3, lw=1.5, label="trained a")
    if predicted:
        ax.plot(predicted["steps"], predicted["a"], "--", lw=1.2,
                label="predicted: GIH gradient flow (t = lr·steps)")
    if a_star is not None:
        ax.axhline(a_star, ls=":", color="k", lw=1, label=f"a*(L) = {a_star:.2f}")
    _stage_lines(ax, stage_bounds)
    ax.set(xlabel="global step", ylabel="a", title="classifier temperature")
    ax.legend(fontsize=8)
    return _finish(fig, path)


def plot_losses(steps: Any, loss: Any, *, references: Mapping[str, float | None],
                stage_bounds: Sequence[float] | None = None,
                path: str | Path | None = None) -> Figure:
    """Training loss over steps with reference losses as horizontal lines (None ones skipped).

    Args:
        steps: ``(T,)`` logged global steps.
        loss: ``(T,)`` training loss.
        references: name → held-out loss (e.g. model, GIH at trained a, a*, ∞, Bayes, oracle).
        stage_bounds: global steps where stages end.
        path: save the PNG here.
    """
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(steps, loss, "o-", ms=3, lw=1.5, color="k", label="training loss")
    for k, (name, value) in enumerate(references.items()):
        if value is not None and np.isfinite(value):
            ax.axhline(value, ls="--", lw=1, color=f"C{k % 10}", label=f"{name}: {value:.4f}")
    _stage_lines(ax, stage_bounds)
    ax.set(xlabel="global step", ylabel="cross-entropy (nats)",
           title="loss against reference predictors (lines: held-out)")
    ax.legend(fontsize=7)
    return _finish(fig, path)


def save_report_figures(data: Mapping[str, Any], out_dir: str | Path) -> list[Path]:
    """Write :data:`FIGURE_NAMES` into ``out_dir`` from a ``report.json`` dict; returns the paths."""
    out = Path(out_dir)
    hist, curves, losses = data["history"], data.get("curves") or {}, data["losses"]
    bounds = np.cumsum([s["steps"] for s in data["config"]["train"]["stages"]]).tolist()
    steps = hist["steps"]
    paths = [out / name for name in FIGURE_NAMES]
    selected = data["predicted"]["selected_set"]
    plot_selector(steps, hist["selector"], hist["sets"], selected_set=selected,
                  predicted=curves.get("selector"), stage_bounds=bounds, path=paths[0])
    copier = data["predicted"]["copier"]
    plot_copier(hist["copier"][0], hist["copier"][-1],
                predicted_offsets=[o if isinstance(o, int) else None for o in copier],
                path=paths[1])
    plot_temperature(steps, hist["a"], predicted=curves.get("temperature"),
                     a_star=losses.get("a_star"), stage_bounds=bounds, path=paths[2])
    refs = {"model (held-out)": losses.get("model"),
            "GIH, trained a": losses.get("gih_trained_a"), "GIH, a*(L)": losses.get("gih_a_star"),
            "GIH, a = ∞": losses.get("gih_inf"), "Bayes": losses.get("bayes"),
            "oracle": losses.get("oracle")}
    plot_losses(steps, hist["loss"], references=refs, stage_bounds=bounds, path=paths[3])
    return paths
