"""Sweeps of verify cases: a grid or random draws, run on a process pool or dask, one row each.

:mod:`numerics.sweep.spec` expands a sweep spec into cases with stable ids,
:mod:`numerics.sweep.run` runs them (resumably) on an executor, :mod:`numerics.sweep.table`
writes the tidy ``results.csv`` and :mod:`numerics.sweep.figures` draws the agreement figures.
``python -m numerics sweep`` (:mod:`numerics.cli.sweep`) is the command line.
"""

from numerics.sweep.figures import agreement_figure, draw_figures, phase_map
from numerics.sweep.run import EXECUTORS, SweepResult, run_case, run_sweep
from numerics.sweep.spec import MAX_CASES, Case, case_id, count_cases, expand_cases, load_sweep_spec
from numerics.sweep.table import columns, read_rows

__all__ = ["EXECUTORS", "MAX_CASES", "Case", "SweepResult", "agreement_figure",
           "case_id", "columns", "count_cases", "draw_figures", "expand_cases",
           "load_sweep_spec", "phase_map", "read_rows", "run_case", "run_sweep"]
