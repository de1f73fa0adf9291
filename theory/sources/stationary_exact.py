"""Stationary laws in exact (QQ) and symbolic (QQ(symbols)) arithmetic.

The algebra of :mod:`theory.sources.stationary` (the chain on r-tuples, ``μ (I - T + E) = 1^T``, kernel
factors multiplied onto the r-window law) carried out on numpy object arrays of elements of a sympy
polys field, QQ or QQ(symbols), with a DomainMatrix LU solve: no expression trees, so fast. Exact
kernels are checked primitive structurally (an entry is an edge iff it is non-zero); symbolic ones
are not (the result holds wherever the chain is primitive). Row sums are decided by a structural
zero after ``cancel``. An exact solve on more than :data:`theory.sizes.MAX_EXACT_STATES` states
``d^r`` is refused (its cost grows like ``N^3`` with growing rationals).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp
from sympy.polys.matrices import DomainMatrix

from theory.errors import require
from theory.sizes import require_exact_states
from theory.sources.priors import check_parents
from theory.sources.stationary import check_window, extend_law, require_primitive, transition_matrix

__all__ = [
    "as_exact_kernel",
    "window_law_field",
    "window_law_exact",
    "symbolic_window_law",
]


def as_exact_kernel(kernel: Any, parents: tuple[int, ...]) -> np.ndarray:
    """Convert nested lists / arrays of exact numbers to an object array of sympy Rationals.

    Raises:
        InductionHeadsError: on a wrong shape, a non-rational entry (floats are refused: pass
            ``sympy.Rational``), a negative entry or a row not summing to exactly 1.
    """
    parents = check_parents(parents)
    k = len(parents)
    if isinstance(kernel, sp.NDimArray):
        kernel = kernel.tolist()
    raw = np.array(kernel, dtype=object)
    require(raw.ndim == k + 1 and len(set(raw.shape)) == 1 and raw.shape[0] >= 2, "kernel",
            f"shape (d,)*{k} + (d,) with d >= 2 for parents {parents}", raw.shape)
    out = np.empty(raw.shape, dtype=object)
    for idx, v in np.ndenumerate(raw):
        try:  # strings are refused: sympify would parse "1/2" silently
            val = None if isinstance(v, (str, bytes, bool)) else sp.sympify(v, strict=True)
        except (sp.SympifyError, TypeError, ValueError):
            val = None
        require(val is not None and bool(val.is_Rational), "kernel entry",
                "an exact rational (sympy.Rational, int)", v)
        require(bool(val >= 0), "kernel entry", "a rational >= 0", v)
        out[idx] = val
    for idx in np.ndindex(raw.shape[:-1]):
        total = sum(out[idx], sp.Integer(0))
        require(total == 1, "kernel", "rows summing exactly to 1", f"row {idx} sums to {total}")
    return out


def _symbolic_kernel(kernel: Any, parents: tuple[int, ...]) -> np.ndarray:
    """Object array of sympy expressions ``(d,)*k + (d,)`` whose rows sum to 1 identically."""
    kern = np.vectorize(sp.sympify, otypes=[object])(np.array(kernel, dtype=object))
    require(kern.ndim == len(parents) + 1 and len(set(kern.shape)) == 1 and kern.shape[0] >= 2,
            "kernel", f"shape (d,)*{len(parents)} + (d,) with d >= 2", kern.shape)
    for idx in np.ndindex(kern.shape[:-1]):
        require(sp.cancel(sum(kern[idx]) - 1) == 0, "kernel", "rows summing to 1 identically",
                f"row {idx} sums to {sum(kern[idx])}")
    return kern


def window_law_field(kernel: Any, parents: tuple[int, ...], window: int, *,
                     symbolic: bool = False) -> tuple[np.ndarray, Any]:
    """Window law computed in a sympy polys field: QQ (exact) or QQ(symbols) (symbolic).

    Arithmetic on field elements (no expression trees) keeps exact and symbolic laws fast; the
    stationary r-window law solves ``(I - T + E)^T μ = 1`` by a DomainMatrix LU solve.

    Args:
        kernel: Rationals (``symbolic=False``; checked primitive) or sympy expressions in a few
            symbols (``symbolic=True``; primitivity not checked, the result is valid where the
            chain is primitive).
        parents: ``P``.
        window: ``K >= r + 1``.
        symbolic: choose the field QQ(free symbols of the kernel) instead of QQ.

    Returns:
        ``(law, field)``: object array ``(d,)*K`` of field elements and the field; convert with
        ``field.to_sympy``.

    Raises:
        InductionHeadsError: on a bad kernel or window, a non-primitive exact chain, or more than
            :data:`theory.sizes.MAX_EXACT_STATES` states.
    """
    parents = check_parents(parents)
    window = check_window(window, parents[-1])
    if symbolic:
        kern = _symbolic_kernel(kernel, parents)
        symbols = sorted(set().union(*(v.free_symbols for v in kern.flat)), key=str)
        field = sp.QQ.frac_field(*symbols) if symbols else sp.QQ
    else:
        kern, field = as_exact_kernel(kernel, parents), sp.QQ
    r, d = parents[-1], kern.shape[-1]
    require_exact_states(d, r)
    kern = np.vectorize(field.from_sympy, otypes=[object])(kern)
    trans = transition_matrix(kern, parents)  # (N, N) of field elements
    if not symbolic:
        support = np.vectorize(lambda v: v != 0, otypes=[bool])(trans)
        require_primitive(support[None], np.array([all(v != 0 for v in kern.flat)]))
    n_states, one = d**r, field.one
    a = DomainMatrix([[(one if i == j else field.zero) - trans[j, i] + one for j in range(n_states)]
                      for i in range(n_states)], (n_states, n_states), field)
    ones = DomainMatrix([[one] for _ in range(n_states)], (n_states, 1), field)
    mu = [row[0] for row in a.lu_solve(ones).to_list()]
    law_r = np.array(mu, dtype=object).reshape((d,) * r)
    return extend_law(law_r, kern, parents, window), field


def window_law_exact(kernel: Any, parents: tuple[int, ...], window: int
                     ) -> sp.ImmutableDenseNDimArray:
    """:func:`theory.sources.stationary.window_law` in exact arithmetic: sympy Rationals in, Rationals out.

    Args:
        kernel: nested lists / numpy object array / sympy array of Rationals, ``(d,)*k + (d,)``.
        parents: ``P``.
        window: ``K >= r + 1``.

    Returns:
        ``ImmutableDenseNDimArray`` of shape ``(d,)*K`` with Rational entries summing to 1.

    Raises:
        InductionHeadsError: on a bad kernel or window, or a non-primitive chain.
    """
    law, field = window_law_field(kernel, parents, window)
    out = np.vectorize(field.to_sympy, otypes=[object])(law)
    return sp.ImmutableDenseNDimArray(out.tolist(), out.shape)


def symbolic_window_law(kernel: Any, parents: tuple[int, ...], window: int) -> np.ndarray:
    """Window law of a kernel of sympy expressions: object array ``(d,)*K`` of rational functions.

    Valid wherever the chain is primitive (not checked: the entries are symbols).
    """
    law, field = window_law_field(kernel, parents, window, symbolic=True)
    return np.vectorize(lambda v: sp.factor(field.to_sympy(v)), otypes=[object])(law)
