"""Helpers the notebooks call, so that no notebook defines more than a one-liner.

The training runs the notebooks launch (trained selection map, the official run of
docs/theory.md §4) live in :mod:`numerics.experiments.runs`.

- Size switch (defined in :mod:`numerics.experiments.sizes`, re-exported): :data:`SIZE_ENV` is
  ``small`` (the tests), ``default`` (minutes on 2 CPU cores) or ``full`` (research scale):
  :func:`notebook_size`, :func:`by_size`, and :func:`research_size` (``full`` on CUDA).
- A verification run inline: :func:`report_figures` (:func:`numerics.plots.report_figures`, plus
  the growth law with :func:`growth_coefficient`, re-exported from :mod:`theory.dynamics.replicator`) and
  :func:`curve_gaps` (logged versus predicted curves).
- Conveniences: :func:`torch_generator`, :func:`model_taps`, :func:`format_table`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from numerics.experiments.sizes import by_size, notebook_size, research_size
from numerics.models.simplified import InductionHeadModel
from numerics.plots import report_figures as _report_figures
from numerics.verify.report import VerifyReport
from theory.dynamics.replicator import growth_coefficient, log_growth
from theory.errors import require
from theory.sources.spec import ModelSpec
from theory.validation import is_int

__all__ = ["notebook_size", "by_size", "research_size", "growth_coefficient", "torch_generator",
           "model_taps", "report_figures", "curve_gaps", "format_table"]


def torch_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (the samplers' keyword-only argument)."""
    require(is_int(seed) and seed >= 0, "seed",
            "an integer >= 0", seed)
    return torch.Generator().manual_seed(seed)


def model_taps(spec: ModelSpec, vocab_size: int, context: Any, *,
               selected_set: tuple[int, ...] | None = None,
               a: float = 1.0) -> dict[str, np.ndarray]:
    """The named taps (numpy) of a float64 model on the integer context ``(n, L)``.

    The model is at initialisation when ``selected_set`` is None, else the limiting model
    (:meth:`InductionHeadModel.at_limit`: exact copier, ``c̃`` one-hot on ``selected_set``) at
    ``a``.
    """
    if selected_set is None:
        model = InductionHeadModel(spec, vocab_size, dtype=torch.float64)
    else:
        model = InductionHeadModel.at_limit(spec, vocab_size, selected_set=tuple(selected_set), a=a,
                                            dtype=torch.float64)
    with torch.no_grad():
        _, taps = model(torch.as_tensor(np.asarray(context), dtype=torch.int64),
                        return_taps=True)
    return {name: value.numpy() for name, value in taps.items()}


def report_figures(report: VerifyReport, *, kappa: float | None = None) -> dict[str, Figure]:
    """The figures of :func:`numerics.plots.report_figures` for a run (nothing written).

    With ``kappa > 0`` and a stage training ``a`` alone, the temperature figure also shows the
    growth law ``a = log(e^{a_0} + κ·lr·(step - step_0))`` from that stage's start
    (:func:`theory.dynamics.replicator.log_growth`).
    """
    require(isinstance(report, VerifyReport), "report", "a VerifyReport", type(report).__name__)
    data = report.to_dict()
    law, overlays = (data.get("curves") or {}).get("temperature"), []
    if kappa is not None and kappa > 0 and law:
        t_steps = np.asarray(law["steps"], dtype=np.float64)  # (T,)
        a_law = log_growth(law["lr"] * (t_steps - t_steps[0]), law["a"][0], kappa)  # (T,)
        overlays.append({"steps": t_steps, "a": a_law,
                         "label": f"growth law log(e^a0 + κt), κ = {kappa:.3f}"})
    return _report_figures(data, temperature_overlays=overlays)


def _interp(steps: np.ndarray, grid: Any, curve: Any) -> np.ndarray:
    """A predicted curve ``(T', k)`` on its ``grid`` (T',), read at ``steps`` (T,): ``(T, k)``."""
    curve = np.asarray(curve, dtype=np.float64).reshape(len(grid), -1)
    return np.stack([np.interp(steps, grid, col) for col in curve.T], axis=1)


def curve_gaps(report: VerifyReport) -> dict[str, float]:
    """Largest gap between a logged quantity and its predicted curve, over the curve's stage.

    Returns:
        ``selector_theory`` / ``selector_initial_copier``: ``max |c̃_S - predicted c̃_S|`` over
        the logged rows of stage 1 and all sets; ``temperature``: ``max |a - predicted a|`` over
        the last stage training ``a``. Keys are absent when the run has no such curve (joint).
    """
    data = report.to_dict()
    hist, curves, out = data["history"], data.get("curves") or {}, {}
    steps = np.asarray(hist["steps"], dtype=np.float64)  # (T,)
    for name, logged, keys in (("selector", hist["selector"], ("theory", "initial_copier")),
                               ("temperature", hist["a"], ("a",))):
        curve = curves.get(name)
        if not curve:
            continue
        grid = np.asarray(curve["steps"])  # (T',)
        rows = (steps >= grid[0]) & (steps <= grid[-1])
        measured = np.asarray(logged, dtype=np.float64).reshape(len(steps), -1)[rows]
        for key in keys:
            if curve.get(key) is not None:
                gap = np.abs(measured - _interp(steps[rows], grid, curve[key]))
                out[name if key == "a" else f"{name}_{key}"] = float(gap.max())
    return out


def format_table(rows: Sequence[Mapping[str, Any]], *, digits: int = 4) -> str:
    """Rows of equal keys as a fixed-width text table (floats to ``digits`` decimals)."""
    require(len(rows) >= 1, "rows", "at least one row", rows)
    cols = list(rows[0])
    cells = [[f"{r[c]:.{digits}f}" if isinstance(r[c], float) else str(r[c]) for c in cols]
             for r in rows]
    widths = [max(len(c), *(len(row[k]) for row in cells)) for k, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)
