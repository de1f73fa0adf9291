"""The selection criterion G(S) (SPEC §3), its χ² relative, and the finite-length signal G_L(S).

For a kernel π with stationary law μ and a set of offsets S, let ``z = (x_{l-h})_{h∈S}``, ``e = x_l``:

    G(S)    = Σ_z μ(z)^2 (Σ_e μ(e|z)^2/μ(e) - 1) = Σ_{z,e} (μ(z,e) - μ(z)μ(e))^2 / μ(e)
    χ²(S)   = Σ_z μ(z)   (Σ_e μ(e|z)^2/μ(e) - 1) = Σ_{z,e} (μ(z,e) - μ(z)μ(e))^2 / (μ(z)μ(e))

(the right-hand forms use Σ_e μ(e|z) = Σ_e μ(e) = 1; they are manifestly >= 0 and avoid the
cancellation of the left-hand forms; terms with a zero denominator have a zero numerator and
count 0). ``G(∅) = χ²(∅) = 0`` and, as ``μ(z) <= 1``, ``G(S) <= χ²(S)``. Both are computed on the
window ``K = max(max S, r) + 1``.

The prior expectation ``E_π G(S)`` is a Monte Carlo mean over kernels (exact for a Fixed prior).
The finite-length criterion ``G_L(S)`` is the mean over sequences of the stage-1 signal
``-∂ℓ/∂a`` at ``a = 0`` for the exact copier (see :func:`stage1_signal`); ``G_L -> G`` as L grows.
Measured: d=4, P=(1,2,3), alpha=0.3, S=(1,2,3): G = 0.0458, G_L = 0.0405 / 0.0428 / 0.0448 at
L = 50 / 100 / 400 (from below). For the paper's alpha=0.1 many chains mix slowly and G_L sits
*above* G, decaying slowly: G_L - G at (1,2) = 0.008 / 0.006 / 0.0045 at L = 100 / 400 / 1600.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from theory.errors import require
from theory.kernels import sample_kernels
from theory.sequences import sample_sequences_np
from theory.spec import Fixed, Source, _check_parents
from theory.stationary import as_exact_kernel, marginal, window_law, window_law_field

__all__ = [
    "MC_KERNEL_FLOOR",
    "CriterionEstimate",
    "modified_chi2",
    "chi2_mutual_information",
    "criterion_values",
    "modified_chi2_exact",
    "chi2_mutual_information_exact",
    "symbolic_criterion",
    "expected_criterion",
    "exact_copier_similarity",
    "stage1_signal",
    "finite_length_criterion",
]

MC_KERNEL_FLOOR = 1e-30
"""Floor on prior-drawn kernel entries inside :func:`expected_criterion` only (rows renormalised).

Dirichlet draws with tiny alpha underflow to exact zeros (d=3, alpha=0.01: ~0.1% of entries), which
can make the chain reducible; the floor restores primitivity and moves a row by at most d·1e-30.
Products of up to r floors stay far from underflow in the GTH solve. Kernels whose chain is governed
by entries below the floor (alpha <~ 0.02) get the floor's stationary law instead of the true one."""

_LAW_BUDGET = 1 << 22
"""Most float64 window-law entries held at once (32 MiB): kernels are processed in chunks."""

_KINDS = ("G", "chi2")


def _check_set(head_set: Any) -> tuple[int, ...]:
    """A head set as sorted distinct positive offsets (the empty set allowed)."""
    try:
        s = tuple(sorted(int(h) for h in head_set))
    except (TypeError, ValueError):
        s = None
    require(s is not None and len(set(s)) == len(s) and all(h >= 1 for h in s), "head_set",
            "distinct positive integer offsets, e.g. (1, 2) or ()", head_set)
    return s  # type: ignore[return-value]


def _window(parents: tuple[int, ...], sets: tuple[tuple[int, ...], ...]) -> int:
    return max([parents[-1]] + [max(s) for s in sets if s]) + 1


def _from_joint(joint: Any, nb: int, kind: str) -> Any:
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
                     sets: tuple[tuple[int, ...], ...], *, kind: str = "G") -> np.ndarray:
    """G(S) (or χ² MI) of every set for every kernel, vectorised over kernels and sets.

    Args:
        kernels: float ``(n,) + (d,)*k + (d,)``.
        parents: ``P``.
        sets: head sets (offsets); one window ``K = max(max S over sets, r) + 1`` serves all.
        kind: ``"G"`` or ``"chi2"``.

    Returns:
        float64 ``(n, n_sets)``; exactly 0 in the column of the empty set.
    """
    parents = _check_parents(parents)
    require(kind in _KINDS, "kind", f"one of {_KINDS}", kind)
    sets = tuple(_check_set(s) for s in sets)
    kernels = np.asarray(kernels, dtype=np.float64)
    require(kernels.ndim == len(parents) + 2, "kernels",
            f"a batch (n,) + (d,)*{len(parents)} + (d,)", kernels.shape)
    n, d = kernels.shape[0], kernels.shape[-1]
    window = _window(parents, sets)
    chunk = max(1, _LAW_BUDGET // d**window)
    out = np.zeros((n, len(sets)))  # (n, n_sets)
    for lo in range(0, n, chunk):
        law = window_law(kernels[lo:lo + chunk], parents, window)  # (c,) + (d,)*K
        for j, s in enumerate(sets):
            if s:
                out[lo:lo + chunk, j] = _from_joint(marginal(law, s, batch_ndim=1), 1, kind)
    return out


def _float_single(kernel: Any, parents: Any, head_set: Any, kind: str) -> Any:
    parents = _check_parents(parents)
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
    parents = _check_parents(parents)
    s = _check_set(head_set)
    if not s:
        as_exact_kernel(kernel, parents)  # validate even when the answer is 0
        return sp.Integer(0)
    law, field = window_law_field(kernel, parents, _window(parents, (s,)))
    return field.to_sympy(_from_joint(marginal(law, s), 0, kind))


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
    parents = _check_parents(parents)
    require(kind in _KINDS, "kind", f"one of {_KINDS}", kind)
    s = _check_set(head_set)
    law, field = window_law_field(kernel, parents, _window(parents, (s,)), symbolic=True)
    if not s:
        return sp.Integer(0)
    return sp.factor(field.to_sympy(_from_joint(marginal(law, s), 0, kind)))


@dataclass(frozen=True, eq=False)
class CriterionEstimate:
    """Monte Carlo (or exact) estimates of a criterion for several head sets.

    Attributes:
        sets: the head sets, in the caller's order.
        values: ``(n_sets,)`` means.
        stderr: ``(n_sets,)`` standard errors of the means (0 for an exact value).
        samples: kernels (G, chi2) or sequences (G_L) averaged; 1 for an exact value.
        kind: ``"G"``, ``"chi2"`` or ``"G_L"``.
        per_sample: ``(samples, n_sets)`` per-kernel / per-sequence values, or None.
    """

    sets: tuple[tuple[int, ...], ...]
    values: np.ndarray
    stderr: np.ndarray
    samples: int
    kind: str
    per_sample: np.ndarray | None = None

    @property
    def best(self) -> tuple[int, ...]:
        """The set with the largest value (first one on ties)."""
        return self.sets[int(np.argmax(self.values))]

    def difference_stderr(self, i: int, j: int) -> float:
        """Standard error of ``values[i] - values[j]`` (paired over samples; 0 when exact)."""
        if self.per_sample is None or self.samples < 2:
            return float(np.hypot(self.stderr[i], self.stderr[j]))
        diff = self.per_sample[:, i] - self.per_sample[:, j]  # (samples,)
        return float(diff.std(ddof=1) / np.sqrt(self.samples))


def _estimate(sets: tuple[tuple[int, ...], ...], per: np.ndarray, kind: str
              ) -> CriterionEstimate:
    m = per.shape[0]
    err = per.std(axis=0, ddof=1) / np.sqrt(m) if m > 1 else np.zeros(per.shape[1])
    values = per.mean(axis=0)  # (n_sets,)
    for arr in (per, err, values):
        arr.setflags(write=False)
    return CriterionEstimate(sets, values, err, m, kind, per)


def _check_common(source: Any, sets: Any, samples: Any, rng: Any
                  ) -> tuple[tuple[int, ...], ...]:
    require(isinstance(source, Source), "source", "a theory.spec.Source", type(source).__name__)
    require(isinstance(rng, np.random.Generator), "rng", "a numpy.random.Generator",
            type(rng).__name__)
    require(isinstance(samples, (int, np.integer)) and not isinstance(samples, bool)
            and samples >= 2, "samples", "an integer >= 2", samples)
    out = tuple(_check_set(s) for s in sets)
    require(len(out) >= 1, "sets", "at least one head set", sets)
    return out


def expected_criterion(source: Source, sets: Any, *, samples: int = 1000,
                       rng: np.random.Generator, kind: str = "G") -> CriterionEstimate:
    """Prior expectation ``E_π[G(S)]`` (or χ² MI) for every set in ``sets``.

    Monte Carlo over ``samples`` kernels from the prior, entries floored at
    :data:`MC_KERNEL_FLOOR`; exact (``stderr = 0``, ``samples = 1``) for a Fixed prior.

    Returns:
        :class:`CriterionEstimate` of kind ``"G"`` or ``"chi2"`` with ``per_sample``.
    """
    sets = _check_common(source, sets, samples, rng)
    require(kind in _KINDS, "kind", f"one of {_KINDS}", kind)
    if isinstance(source.prior, Fixed):
        kernels = np.array(source.prior.kernel)[None]  # (1,) + (d,)*k + (d,)
    else:
        kernels = sample_kernels(source, int(samples), rng=rng)  # (n,) + (d,)*k + (d,)
        kernels = np.maximum(kernels, MC_KERNEL_FLOOR)
        kernels /= kernels.sum(axis=-1, keepdims=True)
    return _estimate(sets, criterion_values(kernels, source.parents, sets, kind=kind), kind)


def exact_copier_similarity(context: np.ndarray, head_set: tuple[int, ...]) -> np.ndarray:
    """Similarity of the exact copier: ``s_l = Π_{h∈S} 1{l-h >= 1 and x_{l-h} = x_{L+1-h}}``.

    Convention: ``context`` is what the model sees, ``x_1..x_L`` (shape ``(n, L)``, no target);
    the query's context ``x_{L+1-h}`` is ``context[:, L-h]``. Empty set: ``s_l = 1``.

    Args:
        context: integer tokens ``(n, L)`` with ``L > max(S)``.
        head_set: ``S``.

    Returns:
        float64 ``(n, L)``; column ``l-1`` is ``s_l``.
    """
    s = _check_set(head_set)
    ctx = np.asarray(context)
    require(ctx.ndim == 2 and np.issubdtype(ctx.dtype, np.integer), "context",
            "an integer array (n, L)", f"{ctx.dtype} array of shape {ctx.shape}")
    n, length = ctx.shape
    require(length > max(s, default=0), "context length",
            f"L > max(S) = {max(s, default=0)}", length)
    sim = np.ones((n, length))  # (n, L)
    for h in s:
        match = np.zeros((n, length))  # (n, L): positions l <= h have no x_{l-h}
        match[:, h:] = ctx[:, : length - h] == ctx[:, length - h, None]
        sim *= match
    return sim


def stage1_signal(tokens: np.ndarray, head_set: tuple[int, ...]) -> np.ndarray:
    """Per-sequence stage-1 signal ``-∂ℓ/∂a`` at ``a = 0`` for the exact copier.

    With target ``e = x_{L+1}``, ``N_e = Σ_l 1{x_l = e}`` and ``s̄ = mean_l s_l``:
    ``g = Σ_l 1{x_l = e} (s_l - s̄) / N_e``, and ``g = 0`` when ``N_e = 0``.

    Args:
        tokens: integer ``(n, L+1)``, context ``x_1..x_L`` then the target ``x_{L+1}``.
        head_set: ``S``.

    Returns:
        float64 ``(n,)``.
    """
    tok = np.asarray(tokens)
    require(tok.ndim == 2 and tok.shape[1] >= 2, "tokens", "an integer array (n, L+1), L >= 1",
            tok.shape)
    sim = exact_copier_similarity(tok[:, :-1], head_set)  # (n, L)
    hit = (tok[:, :-1] == tok[:, -1:]).astype(np.float64)  # (n, L): 1{x_l = e}
    count = hit.sum(axis=1)  # (n,)
    centred = sim - sim.mean(axis=1, keepdims=True)  # (n, L)
    num = np.sum(hit * centred, axis=1)  # (n,)
    return np.divide(num, count, out=np.zeros_like(num), where=count > 0)


def finite_length_criterion(source: Source, sets: Any, seq_len: int, *, samples: int = 2000,
                            rng: np.random.Generator) -> CriterionEstimate:
    """``G_L(S)``: the mean stage-1 signal over ``samples`` sequences of ``L + 1`` tokens.

    Sequences from :func:`theory.sequences.sample_sequences_np` (uniform start, no burn-in).

    Args:
        source: the source.
        sets: head sets.
        seq_len: ``L > max(max S, r)``.
        samples: sequences, >= 2.
        rng: numpy generator.

    Returns:
        :class:`CriterionEstimate` of kind ``"G_L"`` with ``per_sample`` ``(samples, n_sets)``.
    """
    sets = _check_common(source, sets, samples, rng)
    bound = max([source.max_parent] + [max(s) for s in sets if s])
    require(isinstance(seq_len, (int, np.integer)) and not isinstance(seq_len, bool)
            and seq_len > bound, "seq_len", f"an integer L > max(max S, r) = {bound}", seq_len)
    tokens = sample_sequences_np(source, int(samples), int(seq_len) + 1, rng=rng)  # (n, L+1)
    per = np.stack([stage1_signal(tokens, s) for s in sets], axis=1)  # (n, n_sets)
    return _estimate(sets, per, "G_L")
