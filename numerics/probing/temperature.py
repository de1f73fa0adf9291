"""The probe's one-dimensional search over a GIH's temperature ``a`` (numpy, scipy).

An objective of ``a`` (a mean KL to the model in :mod:`numerics.probing.scoring`, a mean loss on
the targets in :mod:`numerics.probing.gap`) is evaluated on :data:`TEMPERATURE_GRID` points
spaced evenly in ``log(1 + a - lo)`` (``lo`` and ``hi`` included), then refined by bounded Brent
between the neighbours of the best grid point; the better of the grid point and the Brent point
is kept. The grid guards against the local minima a single Brent search could settle in; the
log spacing puts most points at small ``a``, where the GIH changes fastest.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize_scalar

from theory.predictors.reference import TEMPERATURE_XATOL

__all__ = ["TEMPERATURE_GRID", "search_temperature"]

TEMPERATURE_GRID = 41
"""Grid points of the temperature search before the Brent refinement."""


def search_temperature(objective: Callable[[float], float], bounds: tuple[float, float]
                       ) -> float:
    """The ``a ∈ bounds`` minimising ``objective`` (module docstring).

    Args:
        objective: ``a ↦`` a float to minimise.
        bounds: ``(lo, hi)``, finite, ``0 <= lo < hi``.

    Returns:
        The minimiser found, to :data:`theory.predictors.reference.TEMPERATURE_XATOL` within the
        bracket of the best grid point.
    """
    lo, hi = bounds
    grid = lo + np.expm1(np.linspace(0.0, math.log1p(hi - lo), TEMPERATURE_GRID))
    grid[-1] = hi
    values = np.array([objective(a) for a in grid])  # (TEMPERATURE_GRID,)
    k = int(np.argmin(values))
    left, right = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    refined = minimize_scalar(objective, bounds=(left, right), method="bounded",
                              options={"xatol": TEMPERATURE_XATOL})
    if float(refined.fun) < values[k]:
        return float(refined.x)
    return float(grid[k])
