"""Lemma 4 (replicator flow): gradient flow on the selector is a replicator equation.

Statement. Let ``K`` head sets carry parameters ``C_S ≠ 0``, weights ``c_S = C_S^2`` and
``c̃_S = C_S^2 / Q`` with ``Q = Σ_T C_T^2``, and let the stage-1 loss be linear in ``c̃``
(Lemma 1): ``ℓ(C) = -a Σ_S c̃_S G_S`` with ``a > 0``. Gradient flow ``dC/dt = -∇_C ℓ`` gives

    dc̃_S/dt = (4a/Q) c̃_S (G_S - Ḡ),        Ḡ = Σ_T c̃_T G_T,
    dQ/dt = 0                               (Q = ΣC^2 is conserved),
    dḠ/dt = (4a/Q) Σ_S c̃_S (G_S - Ḡ)^2 >= 0  (the mean criterion never decreases),

and at a vertex ``c̃ = e_{S*}`` the Jacobian of the flow on the simplex (coordinates
``c̃_T, T ≠ S*``) is ``diag((4a/Q)(G_T - G_{S*}))``: all eigenvalues are negative when
``S* = argmax G`` is strict, so the vertex is asymptotically stable.

Consequence: on the simplex the flow runs at the effective rate ``a / ΣC^2``; with a learning
rate ``lr`` the step is ``lr · a / ΣC^2`` per iteration, so a small ``C_init`` (small ``ΣC^2``,
conserved along the flow) makes stage 1 fast, and a small ``a`` must be compensated by a large
learning rate (the default schedule's lr = 3000 at ``a = 0.01``, docs/theory.md §2).

Assumptions: ``G_S`` real constants (``a`` frozen, copier frozen: the loss is exactly linear in
``c̃``), ``C_S`` real and non-zero (a set with ``C_S = 0`` stays at zero and drops out).

Supports docs/theory.md §3 (selector limit): ``dc̃_S/dt ∝ a · c̃_S (G(S) - Σ_T c̃_T G(T))``
and ``c̃ → one-hot on S* = argmax G``.

How it is checked, for every ``K`` in ``sizes`` (default 2..4), with symbols ``C_S`` (real,
non-zero), ``G_S`` (real) and ``a`` (positive): sympy differentiates the loss in ``C``, the
chain rule gives ``dc̃/dt``, ``dQ/dt`` and ``dḠ/dt``, and each residual against the claim is
brought to canonical form by ``together`` + ``cancel``; the variance form is decided ``>= 0``
by the assumption system; the Jacobian of the claimed field is taken at the vertex and compared
entrywise with the diagonal claim, whose entries are decided ``< 0`` after writing
``G_T = G_{S*} - δ_T`` with ``δ_T > 0``. The claimed right side can be injected.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import sympy as sp

from proofs._result import LemmaResult, check_sizes, conclude, rational_residual
from theory.errors import require

__all__ = ["claimed_rhs", "numeric_rhs", "finite_difference_rhs", "verify"]

Claim = Callable[[Sequence[sp.Expr], Sequence[sp.Expr], sp.Expr, sp.Expr], list[sp.Expr]]
"""``(c̃, G, a, Q) -> [dc̃_S/dt]``: a claimed right side of the flow on the simplex."""

_STATEMENT = (
    "c_S = C_S^2, c̃ = c/ΣC^2, ℓ = -a Σ_S c̃_S G_S, dC/dt = -∇ℓ ⇒ dc̃_S/dt = (4a/ΣC^2) c̃_S "
    "(G_S - Σ_T c̃_T G_T); ΣC^2 conserved; d(Σc̃G)/dt = (4a/ΣC^2) Var_c̃(G) >= 0; at c̃ = e_S* the "
    "Jacobian is diag((4a/ΣC^2)(G_T - G_S*)), negative when S* is the strict argmax"
)


def claimed_rhs(c_tilde: Sequence[sp.Expr], g: Sequence[sp.Expr], a: sp.Expr, q: sp.Expr
                ) -> list[sp.Expr]:
    """The claimed flow ``dc̃_S/dt = (4a/Q) c̃_S (G_S - Σ_T c̃_T G_T)``, one entry per set."""
    g_bar = sp.Add(*[c * gg for c, gg in zip(c_tilde, g)])
    return [4 * a / q * c * (gg - g_bar) for c, gg in zip(c_tilde, g)]


def numeric_rhs(k: int, *, claim: Claim = claimed_rhs
                ) -> Callable[[np.ndarray, np.ndarray, float], np.ndarray]:
    """The claim, lambdified in the parameters: ``(C (K,), G (K,), a) ↦ dc̃/dt (K,)``."""
    require(isinstance(k, int) and not isinstance(k, bool) and k >= 1, "k", "an integer >= 1", k)
    c_par, g, a, _, c_tilde, q = _symbols(k)
    fn = sp.lambdify([c_par, g, a], claim(c_tilde, g, a, q), modules="numpy")
    return lambda c, gv, av: np.asarray(fn(np.asarray(c, dtype=np.float64),
                                           np.asarray(gv, dtype=np.float64), float(av)),
                                        dtype=np.float64)


def finite_difference_rhs(c: np.ndarray, g: np.ndarray, a: float, *, step: float = 1e-6
                          ) -> np.ndarray:
    """``dc̃/dt`` under gradient flow, by central finite differences in numpy (no sympy).

    The gradient ``∇_C ℓ`` of ``ℓ(C) = -a Σ c̃_S G_S`` is taken by central differences, then
    ``c̃`` is differenced along ``-∇ℓ``: ``(c̃(C - h∇ℓ) - c̃(C + h∇ℓ)) / 2h``.

    Args:
        c: float64 ``(K,)`` parameters ``C_S`` (not all zero).
        g: float64 ``(K,)`` criteria ``G_S``.
        a: the temperature.
        step: the difference step ``h``.

    Returns:
        float64 ``(K,)``: the rate of change of ``c̃``.
    """
    c = np.asarray(c, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    require(c.ndim == 1 and c.shape == g.shape and bool(np.any(c != 0)), "c",
            "a (K,) array matching g, not all zero", c)
    require(step > 0, "step", "a positive step", step)

    def weights(x: np.ndarray) -> np.ndarray:  # (K,) -> (K,)
        return x ** 2 / np.sum(x ** 2)

    def loss(x: np.ndarray) -> float:
        return float(-a * weights(x) @ g)

    eye = np.eye(c.size)
    grad = np.array([(loss(c + step * eye[i]) - loss(c - step * eye[i])) / (2 * step)
                     for i in range(c.size)])  # (K,)
    return (weights(c - step * grad) - weights(c + step * grad)) / (2 * step)


def _symbols(k: int) -> tuple:
    c_par = sp.symbols(f"C1:{k + 1}", real=True, nonzero=True)  # (K,)
    g = sp.symbols(f"G1:{k + 1}", real=True)  # (K,)
    a = sp.Symbol("a", positive=True)
    q = sp.Add(*[x ** 2 for x in c_par])
    c_tilde = [x ** 2 / q for x in c_par]  # (K,)
    loss = -a * sp.Add(*[ct * gg for ct, gg in zip(c_tilde, g)])
    return c_par, g, a, loss, c_tilde, q


def _vertex_jacobian(k: int, claim: Claim) -> tuple[list[sp.Expr], list[str]]:
    """Residuals of the Jacobian claim at the vertex ``e_1`` and its sign certificate."""
    x = sp.symbols(f"x1:{k + 1}", nonnegative=True)  # simplex coordinates c̃
    g = sp.symbols(f"G1:{k + 1}", real=True)
    a, q = sp.symbols("a Q", positive=True)
    field = claim([1 - sp.Add(*x[1:]), *x[1:]], g, a, q)[1:]  # (K-1,) in coordinates x_2..x_K
    vertex = {xi: 0 for xi in x[1:]}
    residuals, failed = [], []
    delta = sp.symbols(f"delta2:{k + 1}", positive=True)
    gaps = {g[t]: g[0] - delta[t - 1] for t in range(1, k)}
    for i in range(1, k):
        for j in range(1, k):
            entry = sp.diff(field[i - 1], x[j]).xreplace(vertex)
            expected = 4 * a / q * (g[i] - g[0]) if i == j else sp.S.Zero
            residuals.append(rational_residual(entry, expected))
        eigen = sp.cancel(sp.diff(field[i - 1], x[i]).xreplace(vertex).xreplace(gaps))
        if eigen.is_negative is not True:
            residuals.append(sp.Symbol(f"undecided_negative_eigenvalue_K{k}_{i}"))
            failed.append(f"K={k}: eigenvalue {i} not decided < 0")
    return residuals, failed


def verify(*, claim: Claim = claimed_rhs, sizes: Sequence[int] = (2, 3, 4)) -> LemmaResult:
    """Check Lemma 4 exactly; ``claim`` may be replaced to show that a wrong formula fails.

    Args:
        claim: ``(c̃, G, a, Q) -> [dc̃_S/dt]``, the claimed flow on the simplex.
        sizes: numbers of head sets ``K`` (each in 2..5).

    Returns:
        The frozen :class:`LemmaResult`.

    Raises:
        InductionHeadsError: when ``sizes`` is empty or out of range.
    """
    sizes = check_sizes(sizes, "sizes", 2, 5)
    residuals: list[sp.Expr] = []
    failed: list[str] = []
    for k in sizes:
        c_par, g, a, loss, c_tilde, q = _symbols(k)
        flow = [-sp.diff(loss, x) for x in c_par]  # dC/dt, (K,)

        def rate(expr: sp.Expr, flow: list = flow, c_par: tuple = c_par) -> sp.Expr:
            return sp.Add(*[sp.diff(expr, x) * v for x, v in zip(c_par, flow)])

        claimed = claim(c_tilde, g, a, q)
        for s in range(k):
            r = rational_residual(rate(c_tilde[s]), claimed[s])
            residuals.append(r)
            if r != sp.S.Zero:
                failed.append(f"K={k}: dc̃_{s + 1}/dt")
        residuals.append(rational_residual(rate(q), 0))
        g_bar = sp.Add(*[ct * gg for ct, gg in zip(c_tilde, g)])
        variance = 4 * a / q * sp.Add(*[ct * (gg - g_bar) ** 2 for ct, gg in zip(c_tilde, g)])
        residuals.append(rational_residual(rate(g_bar), variance))
        if variance.is_nonnegative is not True:
            residuals.append(sp.Symbol(f"undecided_variance_K{k}"))
            failed.append(f"K={k}: variance not decided >= 0")
        jac_residuals, jac_failed = _vertex_jacobian(k, claim)
        residuals.extend(jac_residuals)
        failed.extend(jac_failed)
        if any(r != sp.S.Zero for r in jac_residuals):
            failed.append(f"K={k}: vertex Jacobian")

    detail = (
        "sympy gradient of ℓ in C, chain rule for dc̃/dt, dΣC²/dt, dḠ/dt; together+cancel against "
        "the claim, 0 and the variance form (assumptions: >= 0); vertex Jacobian of the claimed "
        "field vs diag((4a/Q)(G_T - G_S*)), eigenvalues < 0 with G_T = G_S* - δ_T, δ_T > 0"
    )
    return conclude("replicator", _STATEMENT, residuals=residuals, detail=detail,
                    failed=failed, sizes_checked=tuple(f"K={k}" for k in sizes))
