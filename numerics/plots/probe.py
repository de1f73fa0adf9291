"""Figures of what the probe read: the distance to every reference over training, first layers.

- :func:`plot_distances`: mean KL(reference ‖ model) at ``x_{L+1}`` over the logged steps, one
  line per reference predictor of :func:`numerics.probe` (uniform, in-context unigram, the GIH of
  every head set at its fitted temperature, Bayes, oracle): the figure in which a model passes
  from uniform through the unigram to a GIH. Theory's ``S*`` is drawn thick and named, the step
  from which the effective head set stays at its final value is marked, and the references
  the probes did not score are listed as absent with the reason.
- :func:`plot_first_layer`: the mean attention of every first-layer head by relative offset
  ``1..M``, with the offsets of ``S*`` marked.

Same conventions as :mod:`numerics.plots.training`: plain data in, a pyplot-free
:class:`~matplotlib.figure.Figure` out, saved when ``path`` is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from numerics.plots.training import finish, mark_stages, set_colors
from theory.notation import head_set_label

__all__ = ["KL_AXIS_FLOOR", "plot_distances", "plot_first_layer"]

KL_AXIS_FLOOR = 1e-4
"""Lower end of the log-scaled KL axis (nats): distances below it (a model that *is* a GIH,
KL ~1e-18) are drawn at the floor, and the legend says so."""

_FIXED = {"uniform": ("0.55", (0, (2, 2))), "unigram": ("C5", (0, (5, 2))),
          "bayes": ("C3", (0, (6, 1.5, 1, 1.5))), "oracle": ("C4", (0, (1, 1)))}
_FIXED_LABELS = {"uniform": "uniform 1/d", "unigram": "in-context unigram",
                 "bayes": "Bayes predictive (the source's prior)", "oracle": "oracle (own kernel)"}


def _by_name(report: Mapping[str, Any]) -> dict[str, float]:
    return {s["name"]: float(s["kl"]) for s in report["last"]["scores"]}


def plot_distances(steps: Sequence[int], reports: Sequence[Mapping[str, Any] | None], *,
                   selected_set: Sequence[int], parents: Sequence[int],
                   settled_step: int | None = None,
                   stages: Sequence[tuple[str, int, int]] | None = None,
                   sequences: int | None = None, path: str | Path | None = None) -> Figure:
    """Mean KL(reference ‖ model) at ``x_{L+1}`` over the logged steps (module docstring).

    Args:
        steps: ``(T,)`` logged steps.
        reports: ``(T,)`` per-step probe reports (``ProbeReport.to_dict()``) or None.
        selected_set: theory's ``S*``.
        parents: the source's true parents ``P``.
        settled_step: the first step from which the effective set stays put, or None.
        stages: :func:`numerics.plots.training.stage_spans` of a stage-wise run, or None.
        sequences: held-out sequences each probe read (for the title).
        path: save the PNG here.
    """
    fig = Figure(figsize=(11, 6.4), layout="constrained")
    ax = fig.subplots()
    rows = [(int(s), r) for s, r in zip(steps, reports) if r is not None and "last" in r]
    star = head_set_label(selected_set)
    if not rows:
        ax.text(0.5, 0.5, "no per-step probes recorded in this report", ha="center",
                va="center", transform=ax.transAxes, color="0.35")
        ax.set_axis_off()
        return finish(fig, path)
    x = np.array([s for s, _ in rows], dtype=float) + 1.0                   # (T,)
    tables = [_by_name(r) for _, r in rows]
    names = list(tables[-1])
    gih = [n for n in names if n.startswith("gih(")]
    colors = dict(zip(gih, set_colors(len(gih))))
    floored = False

    def draw(name: str, **style: Any) -> None:
        nonlocal floored
        y = np.array([t.get(name, np.nan) for t in tables])                 # (T,)
        floored |= bool(np.any(y < KL_AXIS_FLOOR))
        ax.plot(x, np.maximum(y, KL_AXIS_FLOOR), **style)

    for name in ("uniform", "unigram"):
        color, ls = _FIXED[name]
        draw(name, color=color, ls=ls, lw=1.6, label=_FIXED_LABELS[name])
    for name in gih:
        label = name[3:]
        is_star = label == star
        tags = [t for t, ok in (("theory's S*", is_star), ("true parents P",
                                                          label == head_set_label(parents))) if ok]
        draw(name, color=colors[name], lw=2.8 if is_star else 1.1, alpha=1.0 if is_star else 0.8,
             marker="o" if is_star else None, ms=3, zorder=4 if is_star else 2,
             label=f"GIH{label}, fitted a" + (f" ({', '.join(tags)})" if tags else ""))
    absent = [f"{k}: {why}" for k, why in rows[-1][1].get("absent", [])]
    for name in ("bayes", "oracle"):
        if name in names:
            color, ls = _FIXED[name]
            draw(name, color=color, ls=ls, lw=1.6, label=_FIXED_LABELS[name])
    if settled_step is not None:
        final = head_set_label(rows[-1][1]["last"]["effective"]["head_set"])
        ax.axvline(settled_step + 1, color="k", lw=1.0, ls=(0, (3, 3)),
                   label=f"effective set stays {final} from step {settled_step}")
    if stages:
        mark_stages(ax, stages, shift=1.0, first=float(x[0]))
    notes = ["GIH at a = ∞: in report.json, not drawn"] + [f"absent — {a}" for a in absent]
    if floored:
        notes.append(f"values below {KL_AXIS_FLOOR:g} drawn at {KL_AXIS_FLOOR:g}")
    for text in notes:
        ax.plot([], [], ls="none", label=text)
    ax.set_xscale("log")
    ax.set_yscale("log")
    if floored:
        ax.set_ylim(bottom=KL_AXIS_FLOOR * 0.7)
    ax.set(xlabel="step + 1 (optimizer updates, log scale)",
           ylabel="mean KL(reference ‖ model) at x_{L+1} (nats, log scale)")
    n = f", n = {sequences} held-out sequences" if sequences else ""
    ax.set_title(f"distance to each reference predictor over training{n}", pad=16)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside right upper", fontsize=7.5,
               frameon=False)
    return finish(fig, path)


def plot_first_layer(profiles: Sequence[Mapping[str, Any]], *, selected_set: Sequence[int],
                     entry: str, path: str | Path | None = None) -> Figure:
    """Mean attention by relative offset of every first-layer head (module docstring).

    Args:
        profiles: the probe's offset profiles of ``entry`` (``{"head": from 1, "profile": (M,)}``).
        selected_set: theory's ``S*`` (its offsets are marked).
        entry: the attention tap the profiles come from (named in the title).
        path: save the PNG here.
    """
    fig = Figure(figsize=(8, 4.6), layout="constrained")
    ax = fig.subplots()
    mine = [p for p in profiles if p.get("name", entry) == entry]
    if not mine:
        ax.text(0.5, 0.5, f"no offset profile of {entry!r} in this report", ha="center",
                va="center", transform=ax.transAxes, color="0.35")
        ax.set_axis_off()
        return finish(fig, path)
    window = len(mine[0]["profile"])
    offsets = np.arange(1, window + 1)                                      # (M,)
    width = 0.8 / len(mine)
    for k, (p, color) in enumerate(zip(mine, set_colors(len(mine)))):
        ax.bar(offsets - 0.4 + width * (k + 0.5), p["profile"], width=width, color=color,
               label=f"head {int(p['head'])}")
    for o in selected_set:
        ax.axvspan(o - 0.45, o + 0.45, color="0.85", zorder=0)
    ax.plot([], [], ls="none", marker="s", color="0.85", ms=9,
            label=f"offsets of theory's S* = {head_set_label(selected_set)}")
    ax.set_xticks(offsets)
    ax.set_ylim(0, 1.05)
    ax.set(xlabel="relative offset i (key at position l − i)",
           ylabel="mean attention (queries with the whole window valid)")
    ax.set_title(f"first layer: attention by offset ({entry})")
    ax.legend(fontsize=8, frameon=False)
    return finish(fig, path)
