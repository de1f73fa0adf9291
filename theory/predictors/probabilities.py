"""Validation of next-token probability arrays handed to the library (docs/theory.md §6.3).

:func:`check_probabilities` turns whatever a caller hands over as predicted probabilities into a
float64 array, or refuses it with :class:`theory.errors.InductionHeadsError` naming the expected
and the received value. It refuses:

- a value that is not a numeric array (``None``, strings, ragged lists, complex numbers);
- a wrong shape: the wrong number of axes, or an axis of the wrong size (``n`` sequences,
  ``L`` positions, ``d`` vocabulary), e.g. ``(n, L+1, d)`` where ``(n, L, d)`` is expected;
- non-finite entries (NaN, ±inf);
- negative entries;
- rows (the last axis) that do not sum to 1 within :data:`PROB_SUM_ATOL`.

When the entries look like logits or unnormalised scores (an entry above 1, or a row sum off by
more than :data:`LOGIT_HINT_GAP`), the message says so and names the two ways out: a softmax, or
the logits adapter ``numerics.from_logits``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from theory.errors import InductionHeadsError, require
from theory.validation import is_int, is_real

__all__ = ["PROB_SUM_ATOL", "LOGIT_HINT_GAP", "check_probabilities"]

PROB_SUM_ATOL = 1e-4
"""Largest accepted ``|Σ_e ŷ(e) - 1|`` per row: a float32 softmax over up to ~10^5 tokens is off
by about 1e-5, while any row that was never normalised is off by far more."""

LOGIT_HINT_GAP = 1e-2
"""A row sum off by more than this (or an entry above 1) makes the message suggest logits."""

_LOGIT_HINT = ("; these look like logits; pass them through softmax or use the logits adapter "
               "numerics.from_logits")


def _shape_label(ndim: int) -> tuple[str, ...]:
    """Axis names for messages: ``(n, d)``, ``(n, L, d)``, else ``(n, ..., d)``."""
    if ndim == 2:
        return ("n", "d")
    if ndim == 3:
        return ("n", "L", "d")
    return ("n",) + tuple(f"axis{k}" for k in range(1, ndim - 1)) + ("d",)


def _check_size(value: Any, name: str) -> int | None:
    if value is None:
        return None
    require(is_int(value) and value >= 1,
            name, "None or an integer >= 1", value)
    return int(value)


def check_probabilities(probs: Any, *, n: int | None = None, vocab_size: int | None = None,
                        positions: int | None = None, ndim: int | None = None,
                        what: str = "probs", atol: float = PROB_SUM_ATOL) -> np.ndarray:
    """Validate next-token probabilities and return them as a float64 array.

    Args:
        probs: array-like of shape ``(n, d)`` (one prediction per sequence), ``(n, L, d)`` (one
            per position) or, with ``ndim``, any shape whose last axis is a distribution.
        n: expected number of sequences (first axis), or None for any.
        vocab_size: expected ``d`` (last axis), or None for any ``d >= 1``.
        positions: expected ``L`` (second axis of ``(n, L, d)``); implies ``ndim = 3``.
        ndim: expected number of axes; default 3 when ``positions`` is given, else 2.
        what: the name of the input in messages, e.g. ``"model output"``.
        atol: accepted ``|row sum - 1|``; finite and ``> 0``.

    Returns:
        float64 array of the received shape (a copy; rows are not renormalised).

    Raises:
        InductionHeadsError: on any of the refusals of the module docstring; the message gives
            the expected and the received value (shape, entry and its index, or row sum).
    """
    n, vocab_size, positions = (_check_size(v, name) for v, name in
                                ((n, "n"), (vocab_size, "vocab_size"), (positions, "positions")))
    if ndim is None:
        ndim = 3 if positions is not None else 2
    require(is_int(ndim) and ndim >= 2,
            "ndim", "an integer >= 2 (sequences first, distributions last)", ndim)
    require(positions is None or ndim == 3, "ndim", "3 when positions is given", ndim)
    require(is_real(atol)
            and math.isfinite(atol) and atol > 0, "atol", "a finite number > 0", atol)

    labels = list(_shape_label(int(ndim)))
    for axis, size in ((0, n), (1 if ndim == 3 else None, positions), (ndim - 1, vocab_size)):
        if axis is not None and size is not None:
            labels[axis] = f"{labels[axis]}={size}"
    expected_shape = "(" + ", ".join(labels) + ")"
    try:
        arr = np.asarray(probs)
    except (TypeError, ValueError, RuntimeError) as err:
        raise InductionHeadsError(
            f"{what}: expected a float array of shape {expected_shape}, received "
            f"{type(probs).__name__} that numpy cannot read ({err})") from None
    require(arr.dtype.kind in "biuf", what, f"a real float array of shape {expected_shape}",
            f"dtype {arr.dtype}")
    require(arr.ndim == ndim, what, f"an array of shape {expected_shape}", arr.shape)
    sizes = {0: ("n", n), ndim - 1: ("d (the vocabulary)", vocab_size)}
    if ndim == 3:
        sizes[1] = ("L (positions)", positions)
    for axis, (label, size) in sorted(sizes.items()):
        if size is not None:
            require(arr.shape[axis] == size, what,
                    f"shape {expected_shape}: axis {axis} is {label} = {size}", arr.shape)
    require(all(s >= 1 for s in arr.shape), what, f"non-empty axes {expected_shape}", arr.shape)

    out = arr.astype(np.float64)
    finite = np.isfinite(out)
    if not finite.all():
        bad = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise InductionHeadsError(
            f"{what}: expected finite probabilities, received {out[bad]!r} at index {bad}")
    sums = out.sum(axis=-1)
    gap = np.abs(sums - 1.0)
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(gap)), gap.shape))
    looks_like_logits = bool(out.max() > 1.0 + atol or gap[worst] > LOGIT_HINT_GAP)
    hint = _LOGIT_HINT if looks_like_logits else ""
    if out.min() < 0:
        bad = tuple(int(i) for i in np.unravel_index(int(np.argmin(out)), out.shape))
        raise InductionHeadsError(
            f"{what}: expected probabilities >= 0, received {float(out[bad])!r} at index "
            f"{bad}{hint}")
    if gap[worst] > atol:
        raise InductionHeadsError(
            f"{what}: expected rows (last axis) summing to 1 within {atol:g}, received a row "
            f"summing to {float(sums[worst])!r} at index {worst}{hint}")
    return out
