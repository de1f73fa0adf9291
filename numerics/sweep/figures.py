"""Figures of a sweep's table: learned vs predicted agreement, and a phase map.

``agreement.png`` (:func:`agreement_figure`): for each value of one feature (the vocabulary
size d, the prior kind, ...), stacked bars of the cases whose learned set equals the predicted S*,
those where it differs, and the undecidable cases (hatched: the theory does not pick one set at
the case's noise, so neither outcome contradicts it). ``phase_map.png`` (:func:`phase_map`): when
two numeric columns are crossed as on a grid, the agreement fraction of the decidable cases on their grid, with each
cell's count of undecidable cases written in it.

Figures are ``matplotlib.figure.Figure`` objects rendered by ``savefig`` (Agg), no pyplot state.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from numerics.io import save_figure_atomic
from theory.errors import require

__all__ = ["FEATURES", "NUMERIC_AXES", "agreement_figure", "phase_map", "varying",
           "crossed_axes", "draw_figures"]

FEATURES = ("vocab_size", "prior_kind", "heads", "degree", "seq_len", "sequences", "mode",
            "parents", "alpha", "seed")
"""Columns the agreement figure may group by, in the order the default is picked from."""
NUMERIC_AXES = ("vocab_size", "heads", "window", "degree", "seq_len", "sequences", "alpha")
"""Numeric columns a phase map may span."""
LABELS = {"vocab_size": "vocabulary size d", "prior_kind": "prior kind", "heads": "heads H",
          "window": "window M", "degree": "degree D", "seq_len": "context length L",
          "sequences": "training sequences n", "mode": "schedule", "parents": "parents P",
          "alpha": "Dirichlet α", "seed": "seed"}
"""Axis labels of the columns."""
_DPI = 120


def varying(rows: Sequence[dict[str, str]], names: Sequence[str]) -> list[str]:
    """The columns of ``names`` that take more than one value in ``rows``, in ``names`` order."""
    return [n for n in names if len({r[n] for r in rows}) > 1]


def _sort_key(value: str) -> tuple[int, float | str]:
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def agreement_figure(rows: Sequence[dict[str, str]], by: str, path: str | Path | None = None
                     ) -> Figure:
    """Stacked counts of agreeing, disagreeing and undecidable cases for each value of ``by``.

    Args:
        rows: table rows (:mod:`numerics.sweep.table`).
        by: a column of :data:`FEATURES`.
        path: where to save the PNG (None: not saved).
    """
    require(by in FEATURES, "by", f"one of {FEATURES}", by)
    values = sorted({r[by] for r in rows}, key=_sort_key)
    def count(value: str, decidable: str, agrees: str | None) -> int:
        return sum(r[by] == value and r["decidable"] == decidable
                   and (agrees is None or r["agrees"] == agrees) for r in rows)
    agree = np.array([count(v, "True", "True") for v in values])        # (values,)
    differ = np.array([count(v, "True", "False") for v in values])      # (values,)
    undecided = np.array([count(v, "False", None) for v in values])     # (values,)
    fig = Figure(figsize=(max(6.4, 1.0 + 0.8 * len(values)), 4.2), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(values))
    ax.bar(x, agree, color="tab:green", label="learned = predicted S*")
    ax.bar(x, differ, bottom=agree, color="tab:red", label="learned ≠ predicted S*")
    ax.bar(x, undecided, bottom=agree + differ, color="lightgrey", hatch="//",
           edgecolor="grey", label="undecidable (near-tie)")
    ax.set_xticks(x, values)
    ax.set_xlabel(LABELS.get(by, by))
    ax.set_ylabel("cases")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"Learned set vs predicted S* ({len(rows)} cases)")
    ax.set_ylim(0, 1.3 * max(1, int((agree + differ + undecided).max())))  # room for the key
    ax.legend(loc="upper left", fontsize="small", ncol=3)
    if path is not None:
        save_figure_atomic(fig, path, dpi=_DPI)
    return fig


def phase_map(rows: Sequence[dict[str, str]], x: str, y: str,
              path: str | Path | None = None) -> Figure:
    """Agreement fraction of the decidable cases on the ``(x, y)`` grid.

    Cells without a decidable case are blank; each cell shows ``agree/decidable`` and, if any,
    ``+k u`` for its k undecidable cases.

    Args:
        rows: table rows.
        x, y: columns of :data:`NUMERIC_AXES`.
        path: where to save the PNG (None: not saved).
    """
    for name in (x, y):
        require(name in NUMERIC_AXES, "phase map axis", f"one of {NUMERIC_AXES}", name)
    xs = sorted({r[x] for r in rows}, key=_sort_key)
    ys = sorted({r[y] for r in rows}, key=_sort_key)
    frac = np.full((len(ys), len(xs)), np.nan)                          # (n_y, n_x)
    fig = Figure(figsize=(max(5.0, 1.6 + 0.9 * len(xs)), max(3.0, 1.4 + 0.6 * len(ys))),
                 layout="constrained")
    ax = fig.add_subplot()
    texts = []
    for i, yv in enumerate(ys):
        for j, xv in enumerate(xs):
            cell = [r for r in rows if r[x] == xv and r[y] == yv]
            decided = [r for r in cell if r["decidable"] == "True"]
            agree = sum(r["agrees"] == "True" for r in decided)
            if decided:
                frac[i, j] = agree / len(decided)
            undecided = len(cell) - len(decided)
            label = (f"{agree}/{len(decided)}" if decided else "") + (
                f"\n+{undecided} u" if undecided else "")
            texts.append((j, i, label))
    image = ax.imshow(frac, origin="lower", cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
    for j, i, label in texts:
        ax.text(j, i, label, ha="center", va="center", fontsize="small")
    ax.set_xticks(np.arange(len(xs)), xs)
    ax.set_yticks(np.arange(len(ys)), ys)
    ax.set_xlabel(LABELS.get(x, x))
    ax.set_ylabel(LABELS.get(y, y))
    ax.set_title("Learned = predicted S* (decidable cases; u: undecidable)", fontsize="small")
    fig.colorbar(image, ax=ax, label="agreement fraction")
    if path is not None:
        save_figure_atomic(fig, path, dpi=_DPI)
    return fig


def draw_figures(rows: Sequence[dict[str, str]], out: str | Path, *, by: str | None = None
                 ) -> tuple[Path, ...]:
    """Write, from the rows without an ``error``, ``agreement.png`` (grouped by ``by``, default the first varying :data:`FEATURES`
    column, else ``vocab_size``) and, when two :data:`NUMERIC_AXES` columns are crossed
    (:func:`crossed_axes`), their phase map; the paths written."""
    out = Path(out)
    rows = [r for r in rows if not r["error"]]      # failed cases have no sets to compare
    if not rows:
        return ()
    feature = by if by is not None else (varying(rows, FEATURES) or ["vocab_size"])[0]
    paths = [out / "agreement.png"]
    agreement_figure(rows, feature, paths[0])
    pair = crossed_axes(rows)
    if pair is not None:
        paths.append(out / "phase_map.png")
        phase_map(rows, *pair, paths[1])
    return tuple(paths)


def crossed_axes(rows: Sequence[dict[str, str]]) -> tuple[str, str] | None:
    """The first two varying :data:`NUMERIC_AXES` columns whose values are fully crossed (every
    pair of their values occurs, as on a grid), or None."""
    axes = varying(rows, NUMERIC_AXES)
    for i, x in enumerate(axes):
        for y in axes[i + 1:]:
            pairs = {(r[x], r[y]) for r in rows}
            if len(pairs) == len({r[x] for r in rows}) * len({r[y] for r in rows}):
                return x, y
    return None
