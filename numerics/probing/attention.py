"""Read-outs of attention patterns against the limit (docs/theory.md §2, §3.3-§3.4).

The probe does not guess which layer an entry comes from; it reads every entry by its shape:

- ``(H, M)``: the simplified model's copier attention ``σ_h(·, i)`` over offsets ``i = 1..M``
  (tap ``copier.attention``) → one :class:`OffsetProfile` per head.
- ``(n, L)``: the attention of the query over the keys ``l = 1..L`` (tap
  ``classifier.attention``) → one :class:`MatchCorrelation`.
- ``(n, heads, L)``: the same, per head.
- ``(n, heads, L, L)``: a full causal pattern, query × key (the TransformerLens convention
  ``[batch, head, query_pos, key_pos]``) → both read-outs per head: the offset profile, and the
  match read-out of the last query row (position ``L``, which predicts ``x_{L+1}``).

Offset profile of a full pattern: ``profile_h(i) = mean over sequences and queries q > M of
A[h, q, q-i]``, ``i = 1..M`` (the queries where every offset in the window is valid), read with
``np.diagonal`` per offset. Match read-out: the indicator
``I_l = Π_{h∈S} 1{l-h >= 1 and x_{l-h} = x_{L+1-h}}`` (:func:`theory.predictors.context_similarity`)
against the query's attention ``A_l``; per sequence the Pearson correlation (where both vary)
and the mass ``Σ_l A_l I_l``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from numerics.probing.report import MatchCorrelation, OffsetProfile
from theory.errors import InductionHeadsError, require
from theory.predictors import context_similarity
from theory.probabilities import PROB_SUM_ATOL, check_probabilities

__all__ = ["summarise_attention", "offset_profile", "match_correlation"]

_SPREAD_FLOOR = 1e-12
"""A sequence whose attention or indicator has a smaller norm after centring does not vary."""


def _as_numpy(value: Any, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64).numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InductionHeadsError(
            f"attention {name!r}: expected a float array, received {type(value).__name__} "
            f"({err})") from None


def offset_profile(pattern: np.ndarray, window: int) -> np.ndarray:
    """Mean attention by offset: pattern ``(n, heads, L, L)`` → ``(heads, M)`` (module docstring)."""
    profile = np.empty((pattern.shape[1], window))  # (heads, M)
    for i in range(1, window + 1):  # loop over the window's offsets only
        diag = np.diagonal(pattern, offset=-i, axis1=2, axis2=3)  # (n, heads, L-i): q = i..L-1
        profile[:, i - 1] = diag[..., window - i:].mean(axis=(0, 2))  # queries q > M (1-based)
    return profile


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


def _profiles(name: str, profile: np.ndarray) -> list[OffsetProfile]:
    return [OffsetProfile(name=name, head=h, profile=tuple(float(v) for v in row),
                          peak_offset=int(np.argmax(row)) + 1)
            for h, row in enumerate(profile)]


def _matches(name: str, rows: np.ndarray, indicator: np.ndarray, head_set: tuple[int, ...],
             heads: bool) -> list[MatchCorrelation]:
    """``rows`` is ``(n, heads, L)``; ``heads`` false for an ``(n, L)`` entry (head None)."""
    out = []
    for h in range(rows.shape[1]):
        corr, se, used, mass = match_correlation(rows[:, h], indicator)
        out.append(MatchCorrelation(name=name, head=h if heads else None, head_set=head_set,
                                    correlation=corr, correlation_se=se, sequences=used,
                                    match_mass=mass))
    return out


def summarise_attention(entries: Mapping[str, Any], context: np.ndarray, *, window: int,
                        head_set: tuple[int, ...], atol: float = PROB_SUM_ATOL
                        ) -> tuple[tuple[OffsetProfile, ...], tuple[MatchCorrelation, ...]]:
    """Read every attention entry by its shape (module docstring).

    Args:
        entries: name → array (numpy or torch) of one of the shapes of the module docstring.
        context: integer ``(n, L)``, the context the patterns were computed on.
        window: ``M``.
        head_set: ``S`` of the match indicator (theory's ``S*``).
        atol: accepted ``|row sum - 1|`` of an attention row.

    Returns:
        ``(offset profiles, match correlations)`` in the entries' order.

    Raises:
        InductionHeadsError: on a non-mapping, a shape that is none of the above, or rows that
            are not distributions (via :func:`theory.probabilities.check_probabilities`).
    """
    require(isinstance(entries, Mapping), "attention",
            "a mapping name -> array, or a callable returning one", type(entries).__name__)
    n, L = context.shape
    indicator = context_similarity(context, head_set)  # (n, L)
    offsets: list[OffsetProfile] = []
    matches: list[MatchCorrelation] = []
    shapes = (f"(H, M={window}) copier attention, (n={n}, L={L}) query attention, "
              f"(n={n}, heads, L={L}) or (n={n}, heads, L={L}, L={L}) patterns")
    for name, value in entries.items():
        require(isinstance(name, str), "attention name", "a string", name)
        arr = _as_numpy(value, name)
        what = f"attention {name!r}"
        if arr.shape == (n, L):
            arr = check_probabilities(arr, n=n, vocab_size=L, what=what, atol=atol)
            matches += _matches(name, arr[:, None, :], indicator, head_set, heads=False)
        elif arr.ndim == 2 and arr.shape[1] == window:
            arr = check_probabilities(arr, vocab_size=window, what=what, atol=atol)
            offsets += _profiles(name, arr)
        elif arr.ndim == 3 and arr.shape[0] == n and arr.shape[2] == L:
            arr = check_probabilities(arr, n=n, vocab_size=L, ndim=3, what=what, atol=atol)
            matches += _matches(name, arr, indicator, head_set, heads=True)
        elif arr.ndim == 4 and arr.shape[0] == n and arr.shape[2:] == (L, L):
            require(L > window, what, f"a context longer than the window M = {window}", L)
            arr = check_probabilities(arr, n=n, vocab_size=L, ndim=4, what=what, atol=atol)
            offsets += _profiles(name, offset_profile(arr, window))
            matches += _matches(name, arr[:, :, L - 1, :], indicator, head_set, heads=True)
        else:
            raise InductionHeadsError(f"{what}: expected one of {shapes}, received {arr.shape}")
    return tuple(offsets), tuple(matches)
