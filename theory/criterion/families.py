"""One-parameter families of fixed kernels (sympy): a kernel ``π_w`` of rational functions of
one real symbol on an open interval, its exact and float kernel at a value (:func:`kernel_exact_at`,
:func:`kernel_at`, :func:`source_at`), the builders of one's own family's kernel (:func:`on_parent`:
a chain on one parent; :func:`blend_kernel`: ``(1 - w)·π_1 + w·π_2``), and two predefined
families over ``P = (1, 2)`` (:data:`BINARY_PARITY_FAMILY`, :data:`TWO_PARENT_FAMILY`), whose
phase boundaries :mod:`theory.criterion.boundaries` derives (docs/theory.md §3.2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from theory.errors import require
from theory.sources.priors import Fixed, check_parents
from theory.sources.spec import Source, head_sets
from theory.sources.stationary_exact import as_exact_kernel, window_law_field
from theory.validation import as_float, is_int

__all__ = [
    "KernelFamily", "blend_kernel", "on_parent", "check_family_value", "kernel_at",
    "kernel_exact_at", "source_at", "BINARY_PARITY_FAMILY", "TWO_PARENT_FAMILY",
]

_CHECK_POINTS = (sp.Rational(1, 4), sp.Rational(1, 2), sp.Rational(3, 4))
"""Relative positions in the interval where a family's kernel is checked exact and primitive."""


@dataclass(frozen=True)
class KernelFamily:
    """A kernel ``π_w`` of rational functions of one real symbol on an open interval.

    Attributes:
        name: a short label.
        symbol: the parameter, a sympy Symbol declared real (e.g. ``positive=True``).
        interval: ``(lo, hi)`` Rationals, ``lo < hi``; the chain must be primitive on
            ``(lo, hi)`` (checked exactly at three interior points).
        parents: ``P``.
        kernel: ``(d,)*k + (d,)`` entries in ``symbol``, rows summing to 1 identically (nested
            lists are converted to an immutable sympy array).
        heads: ``H``, the offsets ``1..H`` of the head sets.
        degree: ``D``, the largest head set.
    """

    name: str
    symbol: sp.Symbol
    interval: tuple[sp.Rational, sp.Rational]
    parents: tuple[int, ...]
    kernel: sp.ImmutableDenseNDimArray
    heads: int = 3
    degree: int = 2
    _sets: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        require(isinstance(self.name, str) and self.name != "", "name", "a non-empty string",
                self.name)
        require(isinstance(self.symbol, sp.Symbol) and self.symbol.is_real is True, "symbol",
                "a sympy Symbol declared real (e.g. positive=True)", self.symbol)
        lo, hi = (_as_rational(v, "interval end") for v in self.interval)
        require(lo < hi, "interval", "(lo, hi) with lo < hi", self.interval)
        object.__setattr__(self, "interval", (lo, hi))
        object.__setattr__(self, "parents", check_parents(self.parents))
        kern = sp.ImmutableDenseNDimArray(self.kernel)
        free = set().union(*(v.free_symbols for v in _entries(kern)))
        require(free <= {self.symbol}, "kernel", f"entries in the symbol {self.symbol} only",
                sorted(free, key=str))
        odd = [v for v in _entries(kern) if not v.is_rational_function(self.symbol)][:1]
        require(not odd, "kernel", f"rational functions of {self.symbol}", odd)
        sums = np.array(kern.tolist(), dtype=object).sum(axis=-1).ravel()
        bad = [v for v in sums if sp.cancel(v - 1) != 0][:1]
        require(not bad, "kernel", "rows summing to 1 identically", bad)
        object.__setattr__(self, "kernel", kern)
        object.__setattr__(self, "_sets", head_sets(self.heads, self.degree))
        for frac in _CHECK_POINTS:  # exact, non-negative, stochastic and primitive there
            window_law_field(kernel_exact_at(self, lo + frac * (hi - lo)), self.parents,
                             self.parents[-1] + 1)

    @property
    def vocab_size(self) -> int:
        """``d``."""
        return int(self.kernel.shape[-1])

    @property
    def sets(self) -> tuple[tuple[int, ...], ...]:
        """The head sets of ``H, D`` in :func:`theory.sources.spec.head_sets` order (empty set first)."""
        return self._sets


def _entries(array: sp.ImmutableDenseNDimArray) -> list[sp.Expr]:
    """The entries of a sympy array in C order (iterating the array itself yields sub-arrays)."""
    return [sp.sympify(v) for v in np.array(array.tolist(), dtype=object).ravel()]


def _as_rational(value: Any, what: str) -> sp.Rational:
    """An exact Rational from an int, Fraction, sympy Rational or float (its exact binary value)."""
    exact = isinstance(value, (sp.Rational, Fraction, int, np.integer))
    return sp.Rational(value if exact and not isinstance(value, bool) else as_float(value, what))


def on_parent(matrix: Any, axis: int, order: int = 2) -> sp.ImmutableDenseNDimArray:
    """A first-order kernel ``A(e|x)`` read at one parent: ``π(e | x_{l-p_1}, ..., x_{l-p_k}) =
    A(e | x_{l-p_{axis+1}})``, a kernel of ``k = order`` parents that ignores the others.

    With :func:`blend_kernel` it builds one's own :class:`KernelFamily` out of chains on single
    parents (how :data:`TWO_PARENT_FAMILY` is built).

    Args:
        matrix: ``A``, an exact stochastic ``(d, d)`` array (rows: the parent's token ``x``,
            columns: the next token ``e``) of ints, Fractions or sympy Rationals.
        axis: which parent ``A`` reads, ``0..order-1`` (0: ``p_1``, the first of ``P``).
        order: ``k``, the number of parents of the kernel.

    Returns:
        ``(d,)*k + (d,)`` sympy array ``π[x_1, ..., x_k, e] = A[x_{axis+1}, e]``.

    Raises:
        InductionHeadsError: on a matrix that is not an exact stochastic ``(d, d)`` array, or an
            axis outside ``0..order-1``.

    Example::

        >>> from sympy import Rational as R
        >>> on_parent([[R(9, 10), R(1, 10)], [R(1, 5), R(4, 5)]], 1).shape
        (2, 2, 2)
    """
    mat = as_exact_kernel(matrix, (1,))  # (d, d) of Rationals
    require(is_int(axis) and 0 <= axis < order, "axis", f"an int in 0..{order - 1}",
            axis)
    shape = (mat.shape[0],) * (order + 1)  # (d,)*k + (d,)
    return sp.ImmutableDenseNDimArray([mat[i[axis], i[-1]] for i in np.ndindex(shape)], shape)


def blend_kernel(first: Any, second: Any, weight: sp.Expr) -> sp.ImmutableDenseNDimArray:
    """The mixture ``π_w = (1 - w)·π_first + w·π_second`` of two kernels, entry by entry: the
    kernel of a one-parameter :class:`KernelFamily` in the symbol ``w``.

    Args:
        first: a kernel of shape ``(d,)*k + (d,)`` (nested lists or sympy arrays, e.g. from
            :func:`on_parent`); each row sums to 1, so each row of the blend does.
        second: a kernel of the same shape and kind.
        weight: ``w``, a sympy expression (usually the family's Symbol itself).

    Returns:
        ``(d,)*k + (d,)`` sympy array of expressions in ``weight``.

    Raises:
        InductionHeadsError: when the two shapes differ.

    Example (a binary chain on ``x_{l-1}`` blended into one on ``x_{l-2}``; its phase diagram
    by :func:`theory.criterion.boundaries.phase_diagram`)::

        >>> import sympy as sp
        >>> from sympy import Rational as R
        >>> w = sp.Symbol("w", positive=True)
        >>> first = on_parent([[R(1, 2), R(1, 2)], [R(1, 4), R(3, 4)]], 0)
        >>> second = on_parent([[R(9, 10), R(1, 10)], [R(1, 5), R(4, 5)]], 1)
        >>> family = KernelFamily("mine", w, (0, 1), (1, 2), blend_kernel(first, second, w))
        >>> family.vocab_size, family.sets[:3]
        (2, ((), (1,), (2,)))
    """
    a, b = sp.ImmutableDenseNDimArray(first), sp.ImmutableDenseNDimArray(second)
    require(a.shape == b.shape, "second", f"a kernel of shape {a.shape}", b.shape)
    return sp.ImmutableDenseNDimArray(
        [(1 - weight) * u + weight * v for u, v in zip(_entries(a), _entries(b))], a.shape)


def check_family_value(family: KernelFamily, value: Any) -> sp.Rational:
    """``value`` as an exact Rational inside the family's open interval."""
    lo, hi = family.interval
    val = _as_rational(value, family.symbol.name)
    require(lo < val < hi, family.symbol.name, f"a value in the open interval ({lo}, {hi})",
            value)
    return val


def kernel_exact_at(family: KernelFamily, value: Any) -> np.ndarray:
    """The kernel at ``value`` (inside the open interval) as an object array of Rationals
    ``(d,)*k + (d,)``, checked exact, non-negative and stochastic (a float ``value`` is read as
    its exact binary value)."""
    val = check_family_value(family, value)
    entries = [v.subs(family.symbol, val) for v in _entries(family.kernel)]
    return as_exact_kernel(np.array(entries, dtype=object).reshape(family.kernel.shape),
                           family.parents)


def kernel_at(family: KernelFamily, value: Any) -> np.ndarray:
    """The kernel at ``value`` (inside the open interval) as float64 ``(d,)*k + (d,)``."""
    return kernel_exact_at(family, value).astype(np.float64)


def source_at(family: KernelFamily, value: Any) -> Source:
    """The :class:`theory.sources.spec.Source` of the family at ``value``: ``d``, ``P`` and the
    Fixed prior on the float64 kernel ``(d,)*k + (d,)`` of :func:`kernel_at`, ready for
    :func:`theory.limit.prediction.predict_limit`."""
    return Source(family.vocab_size, family.parents, Fixed(kernel_at(family, value)))


_T, _W = sp.Symbol("t", positive=True), sp.Symbol("w", positive=True)
_PARITY = [[[int(e == (x1 ^ x2)) for e in range(2)] for x2 in range(2)] for x1 in range(2)]


def _tenths(rows: list[list[int]]) -> list[list[sp.Rational]]:
    return [[sp.Rational(v, 10) for v in row] for row in rows]


BINARY_PARITY_FAMILY = KernelFamily(
    "binary chain + t·parity", _T, (0, 1), (1, 2),
    blend_kernel(on_parent(_tenths([[9, 1], [2, 8]]), 0), _PARITY, _T))
"""``(1-t)·A(e|x_{l-1}) + t·1{e = x_{l-1} ⊕ x_{l-2}}``, ``A = [[9/10, 1/10], [1/5, 4/5]]``: the
second parent acts only through an interaction; ``{1}``, then ``{1, 2}``, then ``{3}`` win (the
pure parity chain 0, 1, 1, 0, 1, 1, ... has period 3)."""

TWO_PARENT_FAMILY = KernelFamily(
    "(1-w)·A(e|x_{l-1}) + w·B(e|x_{l-2})", _W, (0, 1), (1, 2),
    blend_kernel(on_parent(_tenths([[1, 6, 3], [3, 3, 4], [1, 1, 8]]), 0),
                 on_parent(_tenths([[1, 1, 8], [5, 2, 3], [1, 1, 8]]), 1), _W))
"""``d = 3``, ``A = [[1, 6, 3], [3, 3, 4], [1, 1, 8]]/10``,
``B = [[1, 1, 8], [5, 2, 3], [1, 1, 8]]/10``: weight ``w`` on the second parent; ``{1}``, then
``{1, 2}``, then ``{2}`` win."""
