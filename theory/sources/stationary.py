"""Stationary laws of the order-r chain (float64 numpy) and marginals of window laws.

The chain with parents ``P`` (``r = max(P)``) is a first-order chain on r-tuples
``w_l = (x_{l-r+1}, ..., x_l)`` (oldest first, ``N = d^r`` states): ``w_l -> w_{l+1}`` appends
``x_{l+1} ~ π(· | x_{l+1-p_1}, ..., x_{l+1-p_k})`` and drops ``x_{l-r+1}``. Its stationary law
``μ_r`` solves ``μ (I - T + E) = 1^T`` (``E`` the all-ones matrix), which has a unique solution
exactly when the chain has a single recurrent class; we require more, *primitivity* (irreducible and
aperiodic on the support of ``T``), so that the law is unique and the chain converges to it.

The law of a longer window ``(x_{l-K+1}, ..., x_l)`` (oldest first, ``K >= r + 1``) is
``μ_r(x_{l-K+1..l-K+r}) Π_{t=l-K+r+1}^{l} π(x_t | x_{t-p_1}, ..., x_{t-p_k})``.

Float path: an edge of the transition graph is an entry ``> PRIMITIVITY_ATOL`` (0.0: the exact
support, so primitivity is decided structurally, without a tolerance). The linear system is solved
by a batched LAPACK inverse where it is well-conditioned and by GTH elimination (relative accuracy
for every entry, no subtractions) for nearly reducible chains: with small alpha, Dirichlet rows hold
entries like 1e-40 and ``I - T + E`` is then numerically singular (LAPACK fails outright on the
paper's d=3, P=(1,2) for small alpha; docs/results.md §7). Rows with tiny alpha may also underflow to exact zeros and make the chain
reducible; callers that average over a prior (``theory.criterion.estimates.expected_criterion``)
floor kernel entries first.

The chain structure here (:func:`transition_matrix`, the primitivity check, the window extension)
and :func:`marginal` work on float arrays and on object arrays of field elements alike; the exact and
symbolic laws built on them are in :mod:`theory.sources.stationary_exact`.

Size: each kernel needs dense ``d^r x d^r`` matrices, so :func:`window_law` estimates its memory
(:func:`theory.sizes.window_law_bytes`) and refuses a request over the limit of
:mod:`theory.sizes` before allocating, then builds and solves the chains in chunks of kernels
(:func:`theory.sizes.solve_chunk`): a many-kernel request holds one chunk's matrices at a time.
Every kernel's law is computed by the same per-matrix operations whatever the chunking, so the
results do not depend on it (including the batch-wide GTH fallback when LAPACK finds a singular
matrix: it then redoes every chunk).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import sympy as sp

from theory import sizes
from theory.errors import InductionHeadsError, require
from theory.sources.priors import STOCHASTIC_ATOL, check_parents
from theory.validation import as_float_array, as_int, as_offsets

__all__ = [
    "PRIMITIVITY_ATOL",
    "SOLVE_COND_MAX",
    "transition_matrix",
    "is_primitive",
    "window_law",
    "marginal",
    "check_window",
    "extend_law",
    "require_primitive",
]

PRIMITIVITY_ATOL = 0.0
"""Float kernel entries ``<= PRIMITIVITY_ATOL`` are not edges of the transition graph (exact support)."""

SOLVE_COND_MAX = 1e6
"""Largest 1-norm condition number of ``I - T + E`` solved by LAPACK: its error, about cond times
machine epsilon, stays <= ~1e-11 (docs/results.md §7); worse-conditioned chains use GTH."""


def check_window(window: Any, r: int) -> int:
    return as_int(window, "window", minimum=r + 1, symbol="K")


def _check_float_kernel(kernel: Any, parents: tuple[int, ...]) -> np.ndarray:
    """Validate a float kernel ``(n,)? + (d,)*k + (d,)``; return it as float64."""
    k = len(parents)
    arr = as_float_array(kernel, "kernel")
    require(arr.ndim in (k + 1, k + 2), "kernel",
            f"shape (d,)*{k} + (d,) or (n,) + (d,)*{k} + (d,) for parents {parents}", arr.shape)
    core = arr.shape[arr.ndim - k - 1:]
    require(len(set(core)) == 1 and core[0] >= 2, "kernel", "equal axes of length d >= 2", arr.shape)
    require(bool(np.all(np.isfinite(arr)) and np.all(arr >= 0)), "kernel",
            "finite entries >= 0", "negative or non-finite entries")
    worst = float(np.max(np.abs(arr.sum(axis=-1) - 1.0)))
    require(worst <= STOCHASTIC_ATOL, "kernel", "rows summing to 1",
            f"a row off by {worst:.3g}")
    return arr


def _factor(kernel: np.ndarray, parents: tuple[int, ...], m: int) -> np.ndarray:
    """Kernel of the token at window position ``m`` (0-based) given positions ``m - p``.

    Args:
        kernel: ``B + (d,)*k + (d,)`` (float or object array).
        parents: ``P``; requires ``m >= r``.
        m: position of the new token in a window of ``m + 1`` tokens.

    Returns:
        ``B + shape`` broadcastable to ``B + (d,)*(m+1)``: entry ``π(x_m | x_{m-p_1}, ..., x_{m-p_k})``.
    """
    k = len(parents)
    nb = kernel.ndim - k - 1
    d = kernel.shape[-1]
    # Parents in decreasing offset sit at increasing positions m - p_k < ... < m - p_1.
    perm = tuple(range(nb)) + tuple(nb + j for j in reversed(range(k))) + (nb + k,)
    shape = list(kernel.shape[:nb]) + [1] * m + [d]
    for p in parents:
        shape[nb + m - p] = d
    return kernel.transpose(perm).reshape(shape)


def transition_matrix(kernel: np.ndarray, parents: tuple[int, ...]) -> np.ndarray:
    """Transition matrix of the chain on r-tuples, ``T[w, w']``, shape ``B + (d^r, d^r)``.

    States are r-tuples ``(x_{l-r+1}, ..., x_l)`` in C order (oldest token most significant).
    Works on float arrays and on object arrays of field elements; ``kernel`` is ``B + (d,)*k + (d,)``, unvalidated.

    Raises:
        InductionHeadsError: when a float batch's matrices exceed the memory limit.
    """
    parents = tuple(parents)
    r, d, k = parents[-1], kernel.shape[-1], len(parents)
    batch = kernel.shape[: kernel.ndim - k - 1]
    if kernel.dtype != object:
        count = math.prod(batch)
        sizes.require_memory(2 * count * d ** (2 * r) * sizes.FLOAT_BYTES,
                             f"transition matrices for d={d}, r={r} ({d**r} states) of "
                             f"{count} kernel(s)", "pass fewer kernels")
    cond = np.broadcast_to(_factor(kernel, parents, r), batch + (d,) * (r + 1))  # B + (d,)*(r+1)
    rest = d ** (r - 1)
    out = np.zeros(batch + (d, rest, rest, d), dtype=kernel.dtype)  # B + (x_old, w_mid, w_mid', e)
    if kernel.dtype == object:
        out[...] = kernel.flat[0] - kernel.flat[0]  # the zero of the entries' own field
    j = np.arange(rest)
    out[..., :, j, j, :] = cond.reshape(batch + (d, rest, d))
    return out.reshape(batch + (d**r, d**r))


def is_primitive(support: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Irreducibility and aperiodicity of transition graphs, batched.

    Irreducible iff ``(I + B)^(N-1) > 0``; primitive (irreducible and aperiodic) iff
    ``B^m > 0`` for ``m = (N-1)^2 + 1`` (Wielandt). Both by repeated boolean squaring.

    Args:
        support: bool ``B + (N, N)``, ``support[..., i, j]`` = edge ``i -> j``.

    Returns:
        ``(irreducible, primitive)``, bool arrays of shape ``B``.
    """
    n_states = support.shape[-1]
    adj = support.astype(np.float64)  # B + (N, N)
    reach = np.minimum(adj + np.eye(n_states), 1.0)
    power = adj
    for _ in range(max(1, math.ceil(math.log2((n_states - 1) ** 2 + 1)))):
        power = np.minimum(power @ power, 1.0)
    for _ in range(max(1, math.ceil(math.log2(max(n_states - 1, 1))))):
        reach = np.minimum(reach @ reach, 1.0)
    return np.all(reach > 0, axis=(-2, -1)), np.all(power > 0, axis=(-2, -1))


def _non_primitive_error(kind: str, index: int, count: int, total: int) -> InductionHeadsError:
    return InductionHeadsError(
        "kernel: expected a primitive chain (irreducible and aperiodic on the support of "
        f"the transition graph, so a unique stationary law); received a {kind} chain "
        f"(batch index {index}, {count} of {total} such)")


def require_primitive(support: np.ndarray, kernel_entries_positive: np.ndarray) -> None:
    """Raise unless every chain is primitive; ``support`` is ``(n, N, N)``, the flag ``(n,)``."""
    todo = np.flatnonzero(~kernel_entries_positive)  # all-positive kernels: T^r > 0, primitive
    if todo.size == 0:
        return
    irreducible, primitive = is_primitive(support[todo])
    bad = np.flatnonzero(~primitive)
    if bad.size:
        i = int(bad[0])
        kind = "periodic" if irreducible[i] else "reducible"
        raise _non_primitive_error(kind, int(todo[i]), bad.size, support.shape[0])


def _require_primitive_chunked(stack: np.ndarray, parents: tuple[int, ...], chunk: int) -> None:
    """:func:`require_primitive` for a kernel batch ``(n,) + (d,)*k + (d,)``, ``chunk`` at a time.

    Only kernels with a zero entry are checked (an all-positive kernel gives ``T^r > 0``); their
    transition graphs are built ``chunk`` kernels at a time, and the message counts all of them.
    """
    n = stack.shape[0]
    positive = np.all(stack.reshape(n, -1) > PRIMITIVITY_ATOL, axis=1)  # (n,)
    todo = np.flatnonzero(~positive)
    first, count = None, 0
    for lo in range(0, todo.size, chunk):
        idx = todo[lo:lo + chunk]
        support = transition_matrix(stack[idx], parents) > PRIMITIVITY_ATOL  # (c, N, N)
        irreducible, primitive = is_primitive(support)
        bad = np.flatnonzero(~primitive)
        if bad.size and first is None:
            j = int(bad[0])
            first = ("periodic" if irreducible[j] else "reducible", int(idx[j]))
        count += bad.size
    if first is not None:
        raise _non_primitive_error(first[0], first[1], count, n)


def _gth(trans: np.ndarray) -> np.ndarray:
    """Stationary laws by GTH elimination (Grassmann-Taksar-Heyman), ``(n, N, N)`` -> ``(n, N)``.

    Gaussian elimination on ``I - T`` that forms each pivot as a sum of off-diagonal
    probabilities, never a difference: every entry of ``μ`` has small *relative* error, even
    for nearly reducible chains where a solve of ``I - T + E`` is ill-conditioned.
    """
    t = np.array(trans, dtype=np.float64)  # (n, N, N), overwritten by the censored chains
    n_states = t.shape[-1]
    for k in range(n_states - 1, 0, -1):
        out = t[:, k, :k].sum(axis=-1)  # (n,): P(leave state k towards states < k)
        if not np.all(out > 0):
            raise InductionHeadsError(
                "kernel: expected a numerically primitive chain; received one whose "
                "elimination met a zero pivot (transition probabilities underflow)")
        t[:, :k, k] /= out[:, None]
        t[:, :k, :k] += t[:, :k, k, None] * t[:, k, None, :k]  # (n, k, k)
    mu = np.zeros(t.shape[:-1])  # (n, N)
    mu[:, 0] = 1.0
    for k in range(1, n_states):
        mu[:, k] = np.einsum("ni,ni->n", mu[:, :k], t[:, :k, k])
    return mu / mu.sum(axis=-1, keepdims=True)


def _solve_lapack(trans: np.ndarray) -> np.ndarray | None:
    """Stationary laws of stacked primitive stochastic matrices ``(n, N, N)`` -> ``(n, N)``.

    ``μ = 1^T (I - T + E)^{-1}`` by a batched LAPACK inverse, kept where the 1-norm condition
    number is below ``SOLVE_COND_MAX``; the other chains (nearly reducible ones) go through
    :func:`_gth`. Returns None when LAPACK finds a matrix of the batch singular (the caller
    then uses :func:`_gth` for the whole batch).
    """
    n_states = trans.shape[-1]
    a = np.eye(n_states) - trans + 1.0  # (n, N, N): I - T + E
    try:
        inv = np.linalg.inv(a)  # (n, N, N)
    except np.linalg.LinAlgError:
        return None
    mu = inv.sum(axis=-2)  # (n, N): μ_j = Σ_i (A^{-1})_{ij}
    cond = np.abs(a).sum(axis=-2).max(axis=-1) * np.abs(inv).sum(axis=-2).max(axis=-1)  # (n,)
    redo = ~(np.isfinite(cond) & (cond < SOLVE_COND_MAX))
    if np.any(redo):
        mu[redo] = _gth(trans[redo])
    mu = np.clip(mu, 0.0, None)  # round-off below 0 (at most ~cond * eps)
    return mu / mu.sum(axis=-1, keepdims=True)


def extend_law(law_r: np.ndarray, kernel: np.ndarray, parents: tuple[int, ...], window: int
            ) -> np.ndarray:
    """Multiply kernel factors onto an r-window law: ``B + (d,)*r`` -> ``B + (d,)*K``."""
    law = law_r
    for m in range(parents[-1], window):
        law = law[..., None] * _factor(kernel, parents, m)  # B + (d,)*(m+1)
    return law


def window_law(kernel: np.ndarray, parents: tuple[int, ...], window: int) -> np.ndarray:
    """Stationary law of the window ``(x_{l-K+1}, ..., x_l)`` (oldest first), float64.

    Args:
        kernel: ``(d,)*k + (d,)`` or batched ``(n,) + (d,)*k + (d,)``.
        parents: ``P``.
        window: ``K >= r + 1``.

    Returns:
        ``(d,)*K`` or ``(n,) + (d,)*K``; sums to 1.

    Raises:
        InductionHeadsError: on a bad kernel or window, a non-primitive chain, or a request
            whose memory estimate (:func:`theory.sizes.window_law_bytes`) exceeds the limit.
    """
    parents = check_parents(parents)
    arr = _check_float_kernel(kernel, parents)
    r, k, d = parents[-1], len(parents), arr.shape[-1]
    window = check_window(window, r)
    batched = arr.ndim == k + 2
    stack = arr if batched else arr[None]  # (n,) + (d,)*k + (d,)
    n = stack.shape[0]
    sizes.require_memory(
        sizes.window_law_bytes(n, d, r, window),
        f"window law for d={d}, r={r} ({d**r} states), window K={window}, over {n} kernel(s)",
        "pass fewer kernels or a shorter window"
        if sizes.solve_bytes_per_kernel(d, r) < sizes.memory_limit_bytes()
        else "use fewer states d^r: one kernel's dense solve alone exceeds it")
    chunk = sizes.solve_chunk(n, d, r)
    _require_primitive_chunked(stack, parents, chunk)
    law_r = _solve_chunked(stack, parents, chunk).reshape((n,) + (d,) * r)  # (n,) + (d,)*r
    law = extend_law(law_r, stack, parents, window)  # (n,) + (d,)*K
    return law if batched else law[0]


def _solve_chunked(stack: np.ndarray, parents: tuple[int, ...], chunk: int) -> np.ndarray:
    """Stationary r-window laws ``(n, N)`` of primitive kernels ``(n,) + (d,)*k + (d,)``.

    :func:`_solve_lapack` on ``chunk`` kernels at a time, with its batch-wide rule kept: if
    LAPACK finds any matrix singular, every kernel goes through :func:`_gth`.
    """
    n, n_states = stack.shape[0], stack.shape[-1] ** parents[-1]
    mu = np.empty((n, n_states))  # (n, N)
    for lo in range(0, n, chunk):
        part = _solve_lapack(transition_matrix(stack[lo:lo + chunk], parents))  # (c, N)
        if part is None:
            for lo2 in range(0, n, chunk):
                mu[lo2:lo2 + chunk] = _gth(transition_matrix(stack[lo2:lo2 + chunk], parents))
            return mu
        mu[lo:lo + chunk] = part
    return mu


def marginal(law: Any, offsets: tuple[int, ...], *, batch_ndim: int = 0) -> Any:
    """Joint law of ``((x_{l-h})_{h in S}, x_l)`` from a window law.

    Args:
        law: window law ``B + (d,)*K`` (float array, object array, or a sympy array when
            ``batch_ndim == 0``); the last axis is ``x_l``, axis ``K-1-h`` is ``x_{l-h}``.
        offsets: ``S``, distinct offsets in ``1..K-1``; the output's z-axes follow this order.
        batch_ndim: number of leading batch axes ``B`` (0 or 1 in this library).

    Returns:
        ``B + (d,)*|S| + (d,)``, the same kind of array as ``law``.
    """
    is_sympy = isinstance(law, sp.NDimArray)
    arr = np.array(law.tolist(), dtype=object) if is_sympy else np.asarray(law)
    batch_ndim = as_int(batch_ndim, "batch_ndim")
    require(0 <= batch_ndim < arr.ndim, "batch_ndim", f"an integer in [0, {arr.ndim - 1}]",
            batch_ndim)
    window = arr.ndim - batch_ndim
    offs = as_offsets(offsets, "offsets", allow_empty=True, increasing=False)
    require(all(h <= window - 1 for h in offs), "offsets",
            f"distinct offsets in 1..{window - 1} (window K = {window})", offsets)
    keep = [batch_ndim + window - 1 - h for h in offs] + [arr.ndim - 1]
    drop = tuple(ax for ax in range(batch_ndim, arr.ndim) if ax not in keep)
    summed = arr.sum(axis=drop) if drop else arr
    # After the sum, kept axes are in increasing window position; reorder to offsets' order.
    order = sorted(keep)
    perm = tuple(range(batch_ndim)) + tuple(batch_ndim + order.index(ax) for ax in keep)
    out = summed.transpose(perm)
    if is_sympy:
        return sp.ImmutableDenseNDimArray(out.tolist(), out.shape)
    return out
