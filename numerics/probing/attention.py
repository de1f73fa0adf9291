"""Read-outs of attention patterns against the limit (docs/theory.md §2, §3.3-§3.4).

An attention entry is a name mapped to an array (numpy or torch), read by its shape, or to a
pair ``(array, layout)`` that declares how to read it, ``layout`` one of
:data:`ATTENTION_LAYOUTS` (:func:`numerics.probing.attention_taps` declares the layout of every
tap of a library model). ``n`` sequences, context ``L``, window ``M``:

- ``"copier"`` ``(H, M)``: the simplified model's copier attention ``σ_h(·, i)`` over offsets
  ``i = 1..M`` (its tap ``copier.attention``) → one :class:`OffsetProfile` per head.
- ``"copier_positions"`` ``(n, H, L+1, K)``: a content-dependent copier, ``σ_h(l, k)`` per
  sequence and position ``l = 1..L+1`` over ``K`` offsets: ``K = M+1`` holds offsets ``0..M``
  (offset 0, the position itself, first), ``K = M`` offsets ``1..M`` (the full model's tap
  ``copier.position_attention``, :class:`numerics.FullInductionHeadModel`) → one :class:`OffsetProfile`
  per head.
- ``"query"`` ``(n, L)``: the attention of the query over the keys ``l = 1..L`` (tap
  ``classifier.attention``) → one :class:`MatchCorrelation`.
- ``"query_heads"`` ``(n, heads, L)``: the same, per head.
- ``"pattern"`` ``(n, heads, L, L)``: a full causal pattern, query × key (the TransformerLens
  convention ``[batch, head, query_pos, key_pos]``, :class:`numerics.StandardTransformer`'s
  ``blocks.{i}.attn.hook_pattern``) → both read-outs per head: the offset profile, and the
  match read-out of the last query row (position ``L``, which predicts ``x_{L+1}``).
- ``"auto"`` (a bare array): the first of ``query``, ``copier``, ``query_heads``, ``pattern``
  whose shape fits. A ``copier_positions`` array is read only when declared: its last axis
  holds offsets, not keys, which its shape does not say.

A declared layout is checked against its shape. Every row of an entry must be a distribution,
except in ``copier_positions``, where only the rows ``l = M+1..L`` it reads are checked (a row
with no valid offset, ``l = 1`` without offset 0, is all 0).

Offset profile, ``i = 1..M``, averaged over sequences and the context positions where every
offset in the window is valid:

- full pattern: ``profile_h(i) = mean over queries q = M+1..L of A[h, q, q-i]`` (read with
  ``np.diagonal`` per offset); ``self_mass_h`` is the same mean of ``A[h, q, q]``, and the mass
  ``1 - self_mass - Σ_i profile(i)`` lies on offsets beyond ``M``;
- ``copier_positions``: ``profile_h(i) = mean over l = M+1..L of σ_h(l, i)``;
  ``self_mass_h`` is the same mean of ``σ_h(l, 0)`` (0 when ``K = M``), so
  ``self_mass + Σ_i profile(i) = 1``: the mass on the position itself is reported beside the
  profile, not renormalised away (:meth:`numerics.FullInductionHeadModel.copier_attention`
  with a context is the same average). The query row ``l = L+1`` is left out: its embedding is
  0, so its attention carries no content;
- ``copier``: the rows themselves, ``self_mass = 0`` (their window is ``1..M``).

The peak offset is the argmax over ``1..M``; a head that mostly attends to itself shows it in
``self_mass``, not in its peak.

Match read-out: the indicator ``I_l = Π_{h∈S} 1{l-h >= 1 and x_{l-h} = x_{L+1-h}}``
(:func:`theory.predictors.reference.context_similarity`) against the query's attention ``A_l``; per
sequence the Pearson correlation (where both vary) and the mass ``Σ_l A_l I_l``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from numerics.probing.readouts import MatchCorrelation, OffsetProfile
from theory.errors import InductionHeadsError, require
from theory.predictors.probabilities import PROB_SUM_ATOL, check_probabilities
from theory.predictors.reference import context_similarity

__all__ = ["ATTENTION_LAYOUTS", "summarise_attention", "offset_profile", "window_profile",
           "match_correlation"]

ATTENTION_LAYOUTS = ("auto", "copier", "copier_positions", "query", "query_heads", "pattern")
"""How an attention entry is read (module docstring); ``"auto"`` reads a bare array by shape."""

_SPREAD_FLOOR = 1e-12
"""A sequence whose attention or indicator has a smaller norm after centring does not vary."""


def _as_numpy(value: Any, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64).numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InductionHeadsError(
            f"attention {name!r}: expected a float array or a pair (array, layout), received "
            f"{type(value).__name__} ({err})") from None


def offset_profile(pattern: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean attention by offset of full patterns ``(n, heads, L, L)`` (module docstring).

    Returns:
        ``(profile (heads, M) over offsets 1..M, self mass (heads,))``, both over the queries
        ``q = M+1..L`` (1-based).
    """
    profile = np.empty((pattern.shape[1], window))  # (heads, M)
    for i in range(1, window + 1):  # loop over the window's offsets only
        diag = np.diagonal(pattern, offset=-i, axis1=2, axis2=3)  # (n, heads, L-i): q = i..L-1
        profile[:, i - 1] = diag[..., window - i:].mean(axis=(0, 2))  # queries q > M (1-based)
    own = np.diagonal(pattern, offset=0, axis1=2, axis2=3)  # (n, heads, L): q = 0..L-1
    return profile, own[..., window:].mean(axis=(0, 2))


def window_profile(sigma: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean copier attention by offset of ``(n, H, L+1, K)`` per-position rows (module docstring).

    Args:
        sigma: ``σ_h(l, k)`` for ``l = 1..L+1``; ``K = M+1`` (offsets 0..M) or ``K = M``
            (offsets 1..M).
        window: ``M``.

    Returns:
        ``(profile (H, M) over offsets 1..M, self mass (H,))``, both averaged over the
        sequences and the positions ``l = M+1..L``.
    """
    interior = sigma[:, :, window:-1]  # (n, H, L-M, K): l = M+1..L
    mean = interior.mean(axis=(0, 2))  # (H, K)
    if sigma.shape[3] == window + 1:
        return mean[:, 1:], mean[:, 0]
    return mean, np.zeros(sigma.shape[1])


def match_correlation(attention: np.ndarray, indicator: np.ndarray
                      ) -> tuple[float | None, float | None, int, float]:
    """Per-sequence Pearson correlation and match mass: both ``(n, L)``.

    Returns:
        ``(mean correlation or None, its standard error or None, sequences used, mean mass)``.
    """
    mass = float((attention * indicator).sum(axis=1).mean())
    a = attention - attention.mean(axis=1, keepdims=True)  # (n, L)
    b = indicator - indicator.mean(axis=1, keepdims=True)  # (n, L)
    norm_a = np.sqrt((a * a).sum(axis=1))  # (n,)
    norm_b = np.sqrt((b * b).sum(axis=1))  # (n,)
    varies = (norm_a > _SPREAD_FLOOR) & (norm_b > _SPREAD_FLOOR)  # (n,)
    used = int(varies.sum())
    if used == 0:
        return None, None, 0, mass
    corr = (a[varies] * b[varies]).sum(axis=1) / (norm_a[varies] * norm_b[varies])  # (used,)
    se = float(corr.std(ddof=1) / math.sqrt(used)) if used >= 2 else None
    return float(corr.mean()), se, used, mass


def _profiles(name: str, profile: np.ndarray, self_mass: np.ndarray) -> list[OffsetProfile]:
    return [OffsetProfile(name=name, head=h + 1, profile=tuple(float(v) for v in row),
                          peak_offset=int(np.argmax(row)) + 1, self_mass=float(own))
            for h, (row, own) in enumerate(zip(profile, self_mass))]  # heads from 1


def _matches(name: str, rows: np.ndarray, indicator: np.ndarray, head_set: tuple[int, ...],
             heads: bool) -> list[MatchCorrelation]:
    """``rows`` is ``(n, heads, L)``; ``heads`` false for an ``(n, L)`` entry (head None)."""
    out = []
    for h in range(rows.shape[1]):
        corr, se, used, mass = match_correlation(rows[:, h], indicator)
        out.append(MatchCorrelation(name=name, head=h + 1 if heads else None, head_set=head_set,
                                    correlation=corr, correlation_se=se, sequences=used,
                                    match_mass=mass))
    return out


def _split(name: str, value: Any) -> tuple[Any, str]:
    """``(array, layout)`` of an entry: a bare array is ``"auto"``."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], str):
        require(value[1] in ATTENTION_LAYOUTS, f"attention {name!r} layout",
                f"one of {ATTENTION_LAYOUTS}", value[1])
        return value
    return value, "auto"


def _fits(layout: str, shape: tuple[int, ...], n: int, L: int, window: int) -> bool:
    """Whether ``shape`` is the shape of ``layout`` (module docstring)."""
    if layout == "query":
        return shape == (n, L)
    if layout == "copier":
        return len(shape) == 2 and shape[1] == window
    if layout == "query_heads":
        return len(shape) == 3 and shape[0] == n and shape[2] == L
    if layout == "pattern":
        return len(shape) == 4 and shape[0] == n and shape[2:] == (L, L)
    return (len(shape) == 4 and shape[0] == n and shape[2] == L + 1
            and shape[3] in (window, window + 1))  # copier_positions


def _layout_shapes(n: int, L: int, window: int) -> dict[str, str]:
    return {"copier": f"(H, M={window})", "copier_positions":
            f"(n={n}, H, L+1={L + 1}, K={window + 1} or {window})", "query": f"(n={n}, L={L})",
            "query_heads": f"(n={n}, heads, L={L})", "pattern": f"(n={n}, heads, L={L}, L={L})"}


def _resolve_layout(name: str, layout: str, shape: tuple[int, ...], n: int, L: int,
                    window: int) -> str:
    """The entry's layout: checked against its shape when declared, found by shape for auto."""
    shapes = _layout_shapes(n, L, window)
    what = f"attention {name!r}"
    if layout != "auto":
        require(_fits(layout, shape, n, L, window), what,
                f"the shape {shapes[layout]} of its layout {layout!r}", shape)
        return layout
    for candidate in ("query", "copier", "query_heads", "pattern"):
        if _fits(candidate, shape, n, L, window):
            return candidate
    hint = ("; a per-position copier's offsets need the declared layout: pass "
            "(array, 'copier_positions') or use attention_taps(model)"
            if _fits("copier_positions", shape, n, L, window) else "")
    listed = ", ".join(f"{shapes[k]} {k}" for k in ("copier", "query", "query_heads", "pattern"))
    raise InductionHeadsError(f"{what}: expected one of {listed}, received {shape}{hint}")


def summarise_attention(entries: Mapping[str, Any], context: np.ndarray, *, window: int,
                        head_set: tuple[int, ...], atol: float = PROB_SUM_ATOL
                        ) -> tuple[tuple[OffsetProfile, ...], tuple[MatchCorrelation, ...]]:
    """Read every attention entry by its declared layout or its shape (module docstring).

    Args:
        entries: name → array (numpy or torch) or ``(array, layout)``, ``layout`` one of
            :data:`ATTENTION_LAYOUTS`.
        context: integer ``(n, L)``, the context the patterns were computed on.
        window: ``M``.
        head_set: ``S`` of the match indicator (theory's ``S*``).
        atol: accepted ``|row sum - 1|`` of an attention row.

    Returns:
        ``(offset profiles, match correlations)`` in the entries' order.

    Raises:
        InductionHeadsError: on a non-mapping, an unknown layout, a shape that is not its
            declared layout's or (undeclared) none of the shapes, or rows that are not
            distributions (via :func:`theory.predictors.probabilities.check_probabilities`).
    """
    require(isinstance(entries, Mapping), "attention",
            "a mapping name -> array, or a callable returning one", type(entries).__name__)
    n, L = context.shape
    indicator = context_similarity(context, head_set)  # (n, L)
    offsets: list[OffsetProfile] = []
    matches: list[MatchCorrelation] = []
    for name, value in entries.items():
        require(isinstance(name, str), "attention name", "a string", name)
        value, declared = _split(name, value)
        arr = _as_numpy(value, name)
        what = f"attention {name!r}"
        layout = _resolve_layout(name, declared, arr.shape, n, L, window)
        if layout in ("pattern", "copier_positions"):
            require(L > window, what, f"a context longer than the window M = {window}", L)
        if layout == "query":
            arr = check_probabilities(arr, n=n, vocab_size=L, what=what, atol=atol)
            matches += _matches(name, arr[:, None, :], indicator, head_set, heads=False)
        elif layout == "copier":
            arr = check_probabilities(arr, vocab_size=window, what=what, atol=atol)
            offsets += _profiles(name, arr, np.zeros(arr.shape[0]))
        elif layout == "query_heads":
            arr = check_probabilities(arr, n=n, vocab_size=L, ndim=3, what=what, atol=atol)
            matches += _matches(name, arr, indicator, head_set, heads=True)
        elif layout == "pattern":
            arr = check_probabilities(arr, n=n, vocab_size=L, ndim=4, what=what, atol=atol)
            offsets += _profiles(name, *offset_profile(arr, window))
            matches += _matches(name, arr[:, :, L - 1, :], indicator, head_set, heads=True)
        else:  # copier_positions: only the rows l = M+1..L are read
            check_probabilities(arr[:, :, window:L], n=n, vocab_size=arr.shape[3], ndim=4,
                                what=f"{what} at positions l = {window + 1}..{L}", atol=atol)
            offsets += _profiles(name, *window_profile(arr, window))
    return tuple(offsets), tuple(matches)
