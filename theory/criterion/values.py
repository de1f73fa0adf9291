"""The selection criterion G(S) (docs/theory.md §3) and its χ² relative, per kernel: float, exact, symbolic.

For a kernel π with stationary law μ and a set of offsets S, let ``z = (x_{l-h})_{h∈S}``, ``e = x_l``:

    G(S)    = Σ_z μ(z)^2 (Σ_e μ(e|z)^2/μ(e) - 1) = Σ_{z,e} (μ(z,e) - μ(z)μ(e))^2 / μ(e)
    χ²(S)   = Σ_z μ(z)   (Σ_e μ(e|z)^2/μ(e) - 1) = Σ_{z,e} (μ(z,e) - μ(z)μ(e))^2 / (μ(z)μ(e))

(the right-hand forms use Σ_e μ(e|z) = Σ_e μ(e) = 1; they are manifestly >= 0 and avoid the
cancellation of the left-hand forms; terms with a zero denominator have a zero numerator and
count 0). ``G(∅) = χ²(∅) = 0`` and, as ``μ(z) <= 1``, ``G(S) <= χ²(S)``. Both are computed on the
window ``K = max(max S, r) + 1``.

The prior expectation ``E_π G(S)`` and the finite-length criterion ``G_L(S)`` (the mean stage-1
signal over sequences) are in :mod:`theory.criterion.estimates`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from theory.errors import require
from theory.sizes import LAW_CHUNK_ENTRIES
from theory.sources.priors import check_parents
from theory.sources.stationary import marginal, window_law
from theory.sources.stationary_exact import as_exact_kernel, window_law_field
from theory.validation import as_offsets

__all__ = [
    "modified_chi2",
    "chi2_mutual_information",
    "criterion_values",
    "modified_chi2_exact",
    "chi2_mutual_information_exact",
    "symbolic_criterion",
    "CRITERION_KINDS",
    "check_head_set",
    "law_window",
    "criterion_from_joint",
]

CRITERION_KINDS = ("G", "chi2")


def check_head_set(head_set: Any) -> tuple[int, ...]:
    """A head set as sorted distinct positive offsets (the empty set allowed; floats, strings and
    bools refused)."""
    return tuple(sorted(as_offsets(head_set, "head_set", allow_empty=True, increasing=False)))


def law_window(parents: tuple[int, ...], sets: tuple[tuple[int, ...], ...]) -> int:
    return max([parents[-1]] + [max(s) for s in sets if s]) + 1


def criterion_from_joint(joint: Any, nb: int, kind: str) -> Any:
    """G or χ² from the joint law ``B + (d,)*m + (d,)`` of ``(z, e)`` (float or object array)."""
    z_axes = tuple(range(nb, joint.ndim - 1))
    mu_e = joint.sum(axis=z_axes, keepdims=True)  # B + (1,)*m + (d,)
    mu_z = joint.sum(axis=-1, keepdims=True)  # B + (d,)*m + (1,)
    num = (joint - mu_z * mu_e) ** 2  # B + (d,)*m + (d,)
    den = mu_e if kind == "G" else mu_z * mu_e
    den = np.broadcast_to(den, num.shape)
    if joint.dtype == object:
        terms = np.array([n / q if q != 0 else n - n for n, q in zip(num.flat, den.flat)],
                         dtype=object).reshape(num.shape)  # field elements: exact division
    else:
        terms = np.divide(num, den, out=np.zeros(num.shape), where=den > 0)
    return terms.sum(axis=tuple(range(nb, joint.ndim)))


def criterion_values(kernels: np.ndarray, parents: tuple[int, ...],
                     sets: tuple[tuple[int, ...], ...], *, kind: str = "G",
                     on_chunk: Callable[[int], None] | None = None) -> np.ndarray:
    """G(S) (or χ² MI) of every set for every kernel, vectorised over kernels and sets.

    Args:
        kernels: float ``(n,) + (d,)*k + (d,)``.
        parents: ``P``.
        sets: head sets (offsets); one window ``K = max(max S over sets, r) + 1`` serves all.
        kind: ``"G"`` or ``"chi2"``.
        on_chunk: called with the number of kernels of each chunk (of
            :data:`theory.sizes.LAW_CHUNK_ENTRIES` law entries) once its values are in, so
            that a caller can show progress; None for none.

    Returns:
        float64 ``(n, n_sets)``; exactly 0 in the column of the empty set.
    """
    parents = check_parents(parents)
    require(kind in CRITERION_KINDS, "kind", f"one of {CRITERION_KINDS}", kind)
    sets = tuple(check_head_set(s) for s in sets)
    kernels = np.asarray(kernels, dtype=np.float64)
    require(kernels.ndim == len(parents) + 2, "kernels",
            f"a batch (n,) + (d,)*{len(parents)} + (d,)", kernels.shape)
    n, d = kernels.shape[0], kernels.shape[-1]
    window = law_window(parents, sets)
    chunk = max(1, LAW_CHUNK_ENTRIES // d**window)
    out = np.zeros((n, len(sets)))  # (n, n_sets)
    for lo in range(0, n, chunk):
        law = window_law(kernels[lo:lo + chunk], parents, window)  # (c,) + (d,)*K
        for j, s in enumerate(sets):
            if s:
                out[lo:lo + chunk, j] = criterion_from_joint(marginal(law, s, batch_ndim=1), 1,
                                                             kind)
        if on_chunk is not None:
            on_chunk(law.shape[0])
    return out


def _float_single(kernel: Any, parents: Any, head_set: Any, kind: str) -> Any:
    parents = check_parents(parents)
    arr = np.asarray(kernel, dtype=np.float64)
    batched = arr.ndim == len(parents) + 2
    vals = criterion_values(arr if batched else arr[None], parents, (head_set,), kind=kind)
    return vals[:, 0] if batched else float(vals[0, 0])


def modified_chi2(kernel: np.ndarray, parents: tuple[int, ...], head_set: tuple[int, ...]) -> Any:
    """``G(S)`` of one kernel ``(d,)*k + (d,)`` (a float) or a batch ``(n,) + ...`` (``(n,)``)."""
    return _float_single(kernel, parents, head_set, "G")


def chi2_mutual_information(kernel: np.ndarray, parents: tuple[int, ...],
                            head_set: tuple[int, ...]) -> Any:
    """Ordinary χ² mutual information of ``(z, e)``; same shapes as :func:`modified_chi2`."""
    return _float_single(kernel, parents, head_set, "chi2")


def _exact(kernel: Any, parents: Any, head_set: Any, kind: str) -> sp.Rational:
    parents = check_parents(parents)
    s = check_head_set(head_set)
    if not s:
        as_exact_kernel(kernel, parents)  # validate even when the answer is 0
        return sp.Integer(0)
    law, field = window_law_field(kernel, parents, law_window(parents, (s,)))
    return field.to_sympy(criterion_from_joint(marginal(law, s), 0, kind))


def modified_chi2_exact(kernel: Any, parents: tuple[int, ...], head_set: tuple[int, ...]
                        ) -> sp.Rational:
    """``G(S)`` in exact arithmetic for a kernel of Rationals (see :func:`window_law_exact`)."""
    return _exact(kernel, parents, head_set, "G")


def chi2_mutual_information_exact(kernel: Any, parents: tuple[int, ...],
                                  head_set: tuple[int, ...]) -> sp.Rational:
    """χ² mutual information in exact arithmetic for a kernel of Rationals."""
    return _exact(kernel, parents, head_set, "chi2")


def symbolic_criterion(kernel: Any, parents: tuple[int, ...], head_set: tuple[int, ...], *,
                       kind: str = "G") -> sp.Expr:
    """``G(S)`` (or χ² MI) as a sympy expression of a symbolic kernel (small cases, notebooks).

    Args:
        kernel: nested lists / object array ``(d,)*k + (d,)`` of sympy expressions whose rows sum
            to 1 identically, e.g. ``[[1 - p, p], [q, 1 - q]]`` with positive symbols p, q.
        parents: ``P``.
        head_set: ``S``.
        kind: ``"G"`` or ``"chi2"``.

    Returns:
        A simplified rational expression; valid where the chain is primitive (not checked).
    """
    parents = check_parents(parents)
    require(kind in CRITERION_KINDS, "kind", f"one of {CRITERION_KINDS}", kind)
    s = check_head_set(head_set)
    law, field = window_law_field(kernel, parents, law_window(parents, (s,)), symbolic=True)
    if not s:
        return sp.Integer(0)
    return sp.factor(field.to_sympy(criterion_from_joint(marginal(law, s), 0, kind)))
