"""Figures of a training history against the predicted limit (TF and its full variant).

Every function takes plain data (arrays, lists, dicts as in ``report.json``), returns a
:class:`matplotlib.figure.Figure` built without ``pyplot`` (no global figure state, no window,
no backend switch: ``savefig`` renders PNG with the Agg canvas) and, given ``path``, saves it.

- :func:`plot_selector`: ``c̃_S`` over steps with the predicted replicator trajectories.
- :func:`plot_copier`: copier attention per head and offset, initialisation versus trained.
- :func:`plot_temperature`: ``a`` over steps with the predicted growth and ``a*(L)``.
- :func:`plot_losses`: the logged training loss against the reference predictors scored on the
  same training sample, and every predictor's final loss on the training and held-out samples.

Conventions: the history is logged at log-spaced steps, so the selector and temperature step
axes are log-scaled on ``step + 1``; stage boundaries are dashed lines named on top; every loss
names its sample (reference predictors: docs/theory.md §3.5; the loss floor: §6.2), and a
predictor that does not apply is listed as absent with the reason, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.transforms import blended_transform_factory

from numerics.io import save_figure_atomic
from theory.notation import head_set_label

__all__ = ["REFERENCE_LABELS", "ABSENT_REASONS", "OFF_SCALE", "set_colors", "stage_spans",
           "mark_stages", "finish", "plot_selector", "plot_copier", "plot_temperature",
           "plot_losses", "a_stage_start"]

REFERENCE_LABELS = {"model": "model", "gih_trained_a": "GIH(S*), trained a",
                    "gih_a_star": "GIH(S*), a*(L)", "gih_inf": "GIH(S*), a = ∞",
                    "bayes": "Bayes predictive", "oracle": "oracle (own kernel)"}
"""Legend names of the losses of :func:`numerics.verify.heldout_losses`, in report order."""
ABSENT_REASONS = {"bayes": "a mixture prior's particle-filter estimate, not drawn (no rng given)",
                  "oracle": "needs the sequences' kernels (not kept)",
                  "gih_a_star": "no a*(L) computed"}
"""Why a reference loss can be None (JSON null): the training sample keeps no kernels, so its
oracle is always absent."""

OFF_SCALE = 1.5
"""Training-sample references above this multiple of the largest logged loss (floor-dominated
means, e.g. a GIH at a = ∞ whose matches miss the target) stay off the left panel's range; the
legend gives their value and says so."""

_DPI = 120
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "<", ">", "h")
_REF_STYLES = {"gih_trained_a": ("C0", "--", "v"), "gih_a_star": ("C1", "-.", "^"),
               "gih_inf": ("C2", ":", "D"), "bayes": ("C3", (0, (6, 1.5, 1, 1.5, 1, 1.5)), "s"),
               "oracle": ("C4", (0, (1, 1)), "P"), "model": ("k", "-", "o")}
"""Per reference: colour, line style, marker (lines that coincide stay distinguishable)."""


def finish(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        save_figure_atomic(fig, path, dpi=_DPI)
    return fig


def set_colors(count: int) -> list[tuple[float, float, float]]:
    """``count`` qualitative colours: tab10 up to 10, tab20 (dark shades first) up to 20, cycled."""
    if count <= 10:
        return list(colormaps["tab10"].colors[:count])
    tab20 = colormaps["tab20"].colors
    order = list(tab20[0::2]) + list(tab20[1::2])
    return [order[k % 20] for k in range(count)]


def stage_spans(stages: Sequence[Mapping[str, Any]]) -> list[tuple[str, int, int]]:
    """``(name, first global step, last global step)`` per stage of a train-config dict."""
    spans, start = [], 0
    for stage in stages:
        spans.append((str(stage["name"]), start, start + int(stage["steps"])))
        start += int(stage["steps"])
    return spans


def mark_stages(ax: Any, stages: Sequence[tuple[str, int, int]] | None, *, shift: float,
                 first: float) -> None:
    """Vertical lines at stage starts after ``first`` and each stage's name above the axes."""
    top = blended_transform_factory(ax.transData, ax.transAxes)
    for name, lo, hi in stages or ():
        if hi <= lo or hi <= first:
            continue
        x = max(lo, first) + shift
        if lo > first:
            ax.axvline(x, color="0.55", lw=0.9, ls=(0, (4, 2)), zorder=1)
        ax.text(x, 1.005, f" {name}", transform=top, ha="left", va="bottom", fontsize=7.5,
                color="0.3", clip_on=False)


def plot_selector(steps: Any, selector: Any, sets: Sequence[Sequence[int]], *,
                  selected_set: Sequence[int] | None = None,
                  predicted: Mapping[str, Any] | None = None, missing: str | None = None,
                  stages: Sequence[tuple[str, int, int]] | None = None,
                  path: str | Path | None = None) -> Figure:
    """``c̃_S`` against ``step + 1`` (log axis), one colour per set; predictions dashed / dotted.

    Args:
        steps: ``(T,)`` logged global steps (from 0).
        selector: ``(T, |𝒮|)`` logged ``c̃``.
        sets: the ``|𝒮|`` head sets.
        selected_set: the predicted ``S*`` (drawn thick, named in the legend).
        predicted: ``{"steps": (T',), "theory": (T', |𝒮|), "initial_copier": (T', |𝒮|) | None}``
            (:func:`numerics.verify.curves.predicted_curves`), drawn in each set's colour.
        missing: without ``predicted``, why there is none (a legend entry).
        stages: :func:`stage_spans` of the run (labelled boundaries).
        path: save the PNG here.
    """
    fig = Figure(figsize=(8.6, 4.6), layout="constrained")
    ax = fig.add_subplot()
    c = np.asarray(selector, dtype=float)  # (T, |𝒮|)
    x = np.asarray(steps, dtype=float) + 1.0  # (T,)
    colors, star = set_colors(len(sets)), None if selected_set is None else tuple(selected_set)
    handles = []
    for k, s in enumerate(sets):
        thick = tuple(s) == star
        label = head_set_label(s) + ("  = S* (predicted)" if thick else "")
        (line,) = ax.plot(x, c[:, k], color=colors[k], lw=2.8 if thick else 1.2, label=label,
                          marker=_MARKERS[k % len(_MARKERS)], ms=4 if thick else 2.5,
                          zorder=4 if thick else 3)
        handles.append(line)
    for key, ls, text in (("theory", "--", "replicator prediction, exact-copier G_L"),
                          ("initial_copier", ":", "replicator prediction, G at initial copier")):
        curve = None if not predicted else predicted.get(key)
        if curve is None:
            continue
        curve = np.asarray(curve, dtype=float)  # (T', |𝒮|)
        px = np.asarray(predicted["steps"], dtype=float) + 1.0  # (T',)
        for k, s in enumerate(sets):
            ax.plot(px, curve[:, k], ls=ls, color=colors[k], zorder=2,
                    lw=1.8 if tuple(s) == star else 1.1)
        handles.append(Line2D([], [], color="0.25", ls=ls, lw=1.4, label=f"{text} (set colour)"))
    if not predicted and missing:
        handles.append(Line2D([], [], ls="none",
                              label=f"replicator prediction: absent —\n{missing}"))
    ax.set_xscale("log")
    mark_stages(ax, stages, shift=1.0, first=float(x[0]) - 1.0 if len(x) else 0.0)
    ax.set(xlabel="global step + 1 (log scale; step 0 is the initialisation)",
           ylabel="selector weight c̃_S", ylim=(-0.02, 1.02))
    ax.set_title("selector weights c̃_S = C_S² / Σ_T C_T²" + ("" if star is None else
                 f" (predicted S* = {head_set_label(star)})"), pad=16)
    ax.legend(handles=handles, fontsize=7.5, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              title="head set S (solid: trained)", title_fontsize=8,
              ncol=1 if len(sets) <= 14 else 2)
    return finish(fig, path)


def plot_copier(init: Any, trained: Any, *, predicted_offsets: Sequence[int | None],
                path: str | Path | None = None) -> Figure:
    """Two ``H × M`` heatmaps of ``σ_h(i)`` (rows head 1..H, columns offset 1..M), annotated.

    Args:
        init: ``(H, M)`` attention at initialisation.
        trained: ``(H, M)`` attention after training.
        predicted_offsets: per head, the predicted offset (heads in S*) or None (untouched);
            the predicted cells are boxed in red on both panels.
        path: save the PNG here.
    """
    a0, a1 = np.asarray(init, dtype=float), np.asarray(trained, dtype=float)  # (H, M) each
    H, M = a1.shape
    fig = Figure(figsize=(2.2 + 2 * (0.9 + 0.62 * M), 1.6 + 0.5 * H), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    rows = [f"head {h + 1}" + (" (untouched)" if predicted_offsets[h] is None else "")
            for h in range(H)]
    for ax, grid, title in ((axes[0], a0, "initialisation"), (axes[1], a1, "trained")):
        image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for (h, i), v in np.ndenumerate(grid):
            ax.text(i, h, f"{v:.2f}", ha="center", va="center", fontsize=8,
                    color="k" if v > 0.6 else "w")
        for h, offset in enumerate(predicted_offsets):
            if offset is not None:
                ax.add_patch(Rectangle((offset - 1.5, h - 0.5), 1, 1, fill=False, ec="red",
                                       lw=2.2))
        ax.set_xticks(range(M), [str(i + 1) for i in range(M)])
        ax.set_yticks(range(H), rows)
        ax.set(xlabel=f"offset i (1..{M})", title=title)
    axes[0].set_ylabel(f"head h (1..{H})")
    fig.colorbar(image, ax=list(axes), shrink=0.9, label="attention σ_h(i)")
    fig.legend(handles=[Rectangle((0, 0), 1, 1, fill=False, ec="red", lw=2,
                                  label="predicted offset of a head in S*")],
               loc="outside lower center", fontsize=8, frameon=False)
    fig.suptitle("copier attention per head and offset", fontsize=10)
    return finish(fig, path)


def plot_temperature(steps: Any, a: Any, *, predicted: Mapping[str, Any] | None = None,
                     a_star: float | None = None, overlays: Sequence[Mapping[str, Any]] = (),
                     missing: str | None = None,
                     stages: Sequence[tuple[str, int, int]] | None = None, origin: int = 0,
                     path: str | Path | None = None) -> Figure:
    """``a`` against ``step - origin + 1`` (log axis), the predicted flow and ``a*(L)``.

    The log axis from the start of the stage that trains ``a`` shows the law
    ``a ≈ log(e^{a_0} + κt)`` as a straight line at large ``t``; rows before ``origin`` (``a``
    frozen) are not drawn.

    Args:
        steps: ``(T,)`` logged global steps.
        a: ``(T,)`` logged temperature.
        predicted: ``{"steps": (T',), "a": (T',)}``: the GIH gradient flow, or None.
        a_star: ``a*(L)``, the GIH loss minimiser on the training sample.
        overlays: more predicted curves ``{"steps", "a", "label"}`` (dash-dotted).
        missing: without ``predicted``, why there is none (a legend entry).
        stages: :func:`stage_spans` of the run.
        origin: the global step where ``a`` starts training (the x axis starts there).
        path: save the PNG here.
    """
    fig = Figure(figsize=(7.6, 4.4), layout="constrained")
    ax = fig.add_subplot()
    s, v = np.asarray(steps, dtype=float), np.asarray(a, dtype=float)  # (T,) each
    keep = s >= origin
    ax.plot(s[keep] - origin + 1, v[keep], "o-", color="k", ms=3.5, lw=1.4,
            label="a, trained (logged rows)", zorder=4)
    if predicted:
        ps = np.asarray(predicted["steps"], dtype=float)  # (T',)
        ax.plot(ps - origin + 1, predicted["a"], "--", color="C0", lw=2.2, zorder=3,
                label="predicted: GIH(S*) gradient flow on the training sample (t = lr·steps)")
    elif missing:
        ax.plot([], [], ls="none", label=f"predicted gradient flow: absent — {missing}")
    for k, extra in enumerate(overlays):
        ax.plot(np.asarray(extra["steps"], dtype=float) - origin + 1, extra["a"], "-.",
                color=f"C{2 + k}", lw=1.5, zorder=3, label=str(extra["label"]))
    if a_star is not None:
        ax.axhline(a_star, ls=":", color="C3", lw=1.6,
                   label=f"a*(L) = {a_star:.3f}: GIH(S*) loss minimiser, training sample")
    ax.set_xscale("log")
    mark_stages(ax, stages, shift=1.0 - origin, first=float(origin))
    where = next((n for n, lo, hi in stages or () if lo <= origin < hi), None)
    since = "global step + 1" if origin == 0 else (
        f"steps since global step {origin}" + (f" (start of '{where}')" if where else "") + " + 1")
    ax.set(xlabel=f"{since} (log scale)", ylabel="classifier temperature a (dimensionless)")
    ax.set_title("classifier temperature a" + (f" (frozen before step {origin})" if origin
                                               else ""), pad=16)
    ax.legend(fontsize=7.5, loc="lower right")
    return finish(fig, path)


def _loss_text(value: float, hits: int) -> str:
    return f"{value:.4f}" + (f" [{hits} at floor]" if hits else "")


def plot_losses(steps: Any, loss: Any, *, training: Mapping[str, Any] | None,
                heldout: Mapping[str, Any] | None = None, loss_kind: str = "nll",
                reasons: Mapping[str, str] | None = None,
                stages: Sequence[tuple[str, int, int]] | None = None,
                sample: str = "training sample",
                path: str | Path | None = None) -> Figure:
    """The logged loss against references on the same sample; final losses on both samples.

    Left: the logged training loss over global steps with the reference predictors scored on
    the training sample as horizontal lines. Right: per predictor, its loss on the training
    sample (circle) and on the held-out sample (square). Keys of :data:`REFERENCE_LABELS` given
    as None are listed as absent with the reason (``reasons``, then :data:`ABSENT_REASONS`).

    Args:
        steps: ``(T,)`` logged global steps.
        loss: ``(T,)`` logged training loss (on the training sample).
        training: :func:`numerics.verify.heldout_losses` on the training sample (``{key: nats or
            None}``, optional ``sequences`` and ``floor_hits``), or None when not recorded.
        heldout: the same on the held-out sample, or None.
        loss_kind: the training objective (``"nll"`` is ``-log ŷ``, the references' loss).
        reasons: per key, why its loss is absent (overrides :data:`ABSENT_REASONS`).
        stages: :func:`stage_spans` of the run.
        sample: the name of the sample the logged loss is computed on (the standard
            transformer's ``"evaluation batch"``).
        path: save the PNG here.
    """
    why = {**ABSENT_REASONS, **(reasons or {})}
    samples = {sample: training or {}, "held-out": heldout or {}}
    sizes = {name: f" (n = {d['sequences']})" if d.get("sequences") else ""
             for name, d in samples.items()}
    keys = [k for k in REFERENCE_LABELS if any(k in d for d in samples.values())]
    fig = Figure(figsize=(13, 6.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(1.55, 1))
    x = np.asarray(steps, dtype=float)  # (T,)
    objective = "−log ŷ" if loss_kind == "nll" else f"{loss_kind} objective, not −log ŷ"
    left.plot(x, loss, "o-", color="k", ms=3, lw=1.5, zorder=4,
              label=f"model, {sample}: logged loss ({objective})")
    grid = np.linspace(x.min(), x.max(), 60) if len(x) else np.zeros(0)  # (60,)
    hits_t = samples[sample].get("floor_hits") or {}
    ceiling = OFF_SCALE * float(np.max(loss)) if len(x) else np.inf
    for k, key in enumerate(k for k in keys if k != "model" and training is not None):
        color, ls, marker = _REF_STYLES[key]
        value, name = training.get(key), REFERENCE_LABELS[key]
        if value is None:
            both = " (and held-out)" if key in samples["held-out"] and heldout[key] is None else ""
            left.plot([], [], ls="none", label=f"{name}, {sample}{both}: absent — "
                      f"{why.get(key, 'not recorded')}")
            continue
        off = " (above the plotted range)" if value > ceiling else ""
        left.plot(grid, np.full_like(grid, value), color=color, ls=ls, lw=1.4, marker=marker,
                  ms=5, markevery=(2 + 2 * k, 12), zorder=3,
                  label=f"{name}, {sample}: {_loss_text(value, hits_t.get(key, 0))}{off}")
    if training is None:
        left.plot([], [], ls="none", label=f"references on the {sample}: absent — "
                  "not recorded in this report")
    shown = [v for k in keys if (v := (training or {}).get(k)) is not None and v <= ceiling]
    if len(x):
        lo, hi = min([float(np.min(loss)), *shown]), max([float(np.max(loss)), *shown])
        left.set_ylim(lo - 0.06 * (hi - lo + 1e-3), hi + 0.06 * (hi - lo + 1e-3))
    mark_stages(left, stages, shift=0.0, first=float(x[0]) if len(x) else 0.0)
    left.set(xlabel="global step (optimizer updates)",
             ylabel="loss (nats): −log ŷ(y)" if loss_kind == "nll"
             else f"loss (nats): curve {loss_kind}, lines −log ŷ(y)")
    left.set_title(f"logged loss against references on the {sample}{sizes[sample]}", pad=16)
    _final_losses(right, keys, samples, sizes, why)
    (h1, l1), (h2, l2) = left.get_legend_handles_labels(), right.get_legend_handles_labels()
    fig.legend(h1 + h2, l1 + l2, loc="outside lower center", ncol=3, fontsize=7.5, frameon=False)
    return finish(fig, path)


def _final_losses(ax: Any, keys: Sequence[str], samples: Mapping[str, Mapping[str, Any]],
                  sizes: Mapping[str, str], why: Mapping[str, str]) -> None:
    """Dot plot: one row per predictor, a marker per sample, absent values named with reasons."""
    text = blended_transform_factory(ax.transAxes, ax.transData)
    for (name, data), dy, marker in zip(samples.items(), (0.17, -0.17), ("o", "s")):
        hits = data.get("floor_hits") or {}
        ax.plot([], [], ls="none", marker=marker, color="0.3",
                label=f"final losses (right panel), {name}{sizes[name]}")
        for row, key in enumerate(keys):
            y, value = -row + dy, data.get(key)
            if value is None:
                reason = why.get(key, "not recorded") if data else "not recorded"
                ax.text(0.02, y, f"{name}: absent — {reason}", transform=text, fontsize=7,
                        style="italic", color="0.35", va="center")
                continue
            ax.plot(value, y, marker=marker, ls="none", ms=7, color=_REF_STYLES[key][0])
            ax.annotate(_loss_text(value, hits.get(key, 0)), (value, y), xytext=(6, 0),
                        textcoords="offset points", va="center", fontsize=7)
    ax.set_yticks([-r for r in range(len(keys))], [REFERENCE_LABELS[k] for k in keys])
    ax.set_ylim(-len(keys) + 0.5, 0.5)
    values = [v for d in samples.values() for k in keys if (v := d.get(k)) is not None]
    if values:  # room on the right for the value labels
        span = max(max(values) - min(values), 0.05 * max(abs(max(values)), 1e-3))
        ax.set_xlim(min(values) - 0.1 * span, max(values) + 0.55 * span)
    ax.grid(axis="x", color="0.9")
    first = next(iter(samples))
    ax.set(xlabel="cross-entropy −log ŷ(y) (nats)",
           title=f"final losses: {'training' if first == 'training sample' else first} "
                 "vs held-out")


def a_stage_start(stages: Sequence[Mapping[str, Any]]) -> int:
    """The first global step of the last stage that trains ``a`` (0 when none does)."""
    starts = [lo for (_, lo, hi), s in zip(stage_spans(stages), stages)
              if "a" in s["params"] and hi > lo]
    return starts[-1] if starts else 0
