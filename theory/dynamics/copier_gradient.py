"""The copier's loss gradient at a frozen selector and temperature, in numpy.

Stage 2 of stage-wise training moves the copier logits ``w`` (H, M) alone, with the selector
``c̃`` where stage 1 left it and ``a`` at its initial value; this module gives the gradient that
stage follows (:mod:`theory.dynamics.copier_stage` takes its steps).

**The gradient** (derived here; checked against torch autograd on ``numerics.InductionHeadModel``
in tests/numerics/models/test_copier_gradient_autograd.py). One sequence, context ``x_1..x_L``,
target ``y = x_{L+1}``, the positions ``A = {l : x_l = y}``:

    σ_h = softmax(w_h) over the window W_h (0 outside),
    u_h(l) = Σ_{i ∈ W_h, l-i >= 1} σ_h(i) e(x_{l-i}),   q_h = u_h(L+1),
    k_h(l) = <q_h, u_h(l)> / (|q_h| |u_h(l)|)            (0 where u_h(l) = 0),
    s_l = Σ_S c̃_S Π_{h∈S} k_h(l),   p_l = softmax_l(a s_l),   ŷ = Σ_{l∈A} p_l,
    ℓ = -log max(ŷ, LOSS_FLOOR).

The model renormalises σ_h over the offsets valid at ``l``; that rescales ``u_h(l)`` and
cancels in ``k_h(l)``, so ``u_h`` may use the global σ_h as above. Then, term by term,

    ∂ℓ/∂s_l = a p_l (1 - 1{l∈A}/ŷ)                     (0 where ŷ <= LOSS_FLOOR: the clamp),
    ∂s_l/∂k_h(l) = Σ_{S∋h} c̃_S Π_{g∈S, g≠h} k_g(l),
    ∂k/∂u = (q̄ - k ū)/|u|,   ∂k/∂q = (ū - k q̄)/|q|      (ū = u/|u|, q̄ = q/|q|),
    ∂k_h(l)/∂σ_h(j) = 1{l-j >= 1} (q̄_h[x_{l-j}] - k ū_h(l)[x_{l-j}]) / |u_h(l)|
                      + (ū_h(l)[x_{L+1-j}] - k q̄_h[x_{L+1-j}]) / |q_h|,

with ``v[t]`` the entry of ``v`` at token ``t``. ``k_h(l)`` does not change when σ_h is scaled
(``u`` and ``q`` scale together), so by Euler's relation ``Σ_j σ_h(j) ∂k/∂σ_h(j) = 0`` and the
softmax's Jacobian ``σ_j (δ_ij - σ_i)`` leaves

    ∂k_h(l)/∂w_{h,i} = σ_h(i) ∂k_h(l)/∂σ_h(i),
    ∂ℓ/∂w_{h,i} = σ_h(i) Σ_l ∂ℓ/∂s_l · ∂s_l/∂k_h(l) · ∂k_h(l)/∂σ_h(i),

which is 0 outside the window. The loss is the mean over sequences, so is its gradient; the
per-sequence terms give standard errors. Under gradient flow the own-offset mass moves at
``dσ_h(h)/dt = -σ_h(h) (∂_{h,h} ℓ - Σ_j σ_h(j) ∂_{h,j} ℓ)``; that combination is formed per
sequence before averaging (a paired difference over one sample), which is its ``drift``.

**Two forms.** :meth:`CopierSample.per_sequence` evaluates the formulas above per sequence and
position (the form behind the standard errors). :meth:`CopierSample.mean_gradient` uses that
``u_h(l)`` reads only the tokens ``(x_{l-1}, …, x_{l-M})`` (absent ones marked), so ``k_h(l)``
and ``∂k_h(l)/∂σ_h`` are tables over (query window, position window), as in the model's window
patterns (docs/theory.md §2), and a step sums ``∂ℓ/∂k`` into their cells, then over the query
or the position cells before reading the one-hot tokens at each offset (``R·P·H·d`` work a step
for ``R`` query and ``P`` position patterns); it falls back to the direct form (``n·L·H·M·d``)
where that is cheaper.
The normalisation offset of the model (``norm_offset``) is taken as 0, the theory's value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from theory.errors import require
from theory.predictors.reference import LOSS_FLOOR, check_context
from theory.sources.spec import ModelSpec
from theory.validation import as_float

__all__ = ["COPIER_GRADIENT_CHUNK", "CopierGradient", "CopierSample", "initial_logits",
           "copier_softmax", "check_selector_weights", "copier_loss_gradient",
           "copier_gradient"]

COPIER_GRADIENT_CHUNK = 256
"""Sequences the direct form evaluates at once: bounds the ``(n, L+1, M, d)`` one-hot copies to
a few MiB at the default L = 100 while keeping numpy's loops long."""


def initial_logits(spec: ModelSpec) -> np.ndarray:
    """The copier logits at the spec's initialisation, float64 ``(H, M)``: ``w_plus`` at offset
    ``h`` of head ``h``, ``w_minus`` elsewhere in its window, ``-inf`` outside it."""
    require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", type(spec).__name__)
    inside = np.array(spec.window_mask(), dtype=bool)  # (H, M)
    logits = np.where(inside, spec.w_minus, -np.inf)  # (H, M)
    logits[np.arange(spec.heads), np.arange(spec.heads)] = spec.w_plus
    return logits


def copier_softmax(logits: np.ndarray) -> np.ndarray:
    """σ: the softmax of each row of ``(H, M)`` logits (``-inf`` outside a window gives 0)."""
    shifted = logits - logits.max(axis=1, keepdims=True)  # (H, M)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=1, keepdims=True)


def check_selector_weights(selector_weights: Any, spec: ModelSpec) -> np.ndarray:
    """c̃ as float64 ``(|𝒮|,)``: one number >= 0 per head set of ``spec``, summing to 1."""
    c = np.asarray(selector_weights, dtype=np.float64)
    require(c.shape == (len(spec.sets),) and bool(np.all(np.isfinite(c)))
            and bool(np.all(c >= 0)) and abs(float(c.sum()) - 1.0) <= 1e-6, "selector_weights",
            f"c̃: {len(spec.sets)} numbers >= 0 summing to 1 (one per head set)", c)
    return c


@dataclass(frozen=True, eq=False)
class _Chunk:
    """The token-only arrays of a chunk of sequences, computed once for every step."""

    onehot: np.ndarray  # (n, L+1, M, d): e(x_{l-i}), 0 where l - i < 1
    hit: np.ndarray  # (n, L): l ∈ A


def _prepare(tok: np.ndarray, window: int, vocab: int) -> list[_Chunk]:
    L = tok.shape[1] - 1
    pos = np.arange(1, L + 2)[:, None] - np.arange(1, window + 1)[None, :]  # (L+1, M): l - i
    valid = pos >= 1  # (L+1, M)
    chunks = []
    for start in range(0, tok.shape[0], COPIER_GRADIENT_CHUNK):
        part = tok[start:start + COPIER_GRADIENT_CHUNK]  # (n, L+1)
        padded = np.concatenate([np.full((part.shape[0], 1), -1, dtype=np.int64),
                                 part[:, :L]], axis=1)  # (n, L+1)
        shifted = np.where(valid, padded[:, np.where(valid, pos, 0)], -1)  # (n, L+1, M)
        onehot = (shifted[..., None] == np.arange(vocab)).astype(np.float64)
        chunks.append(_Chunk(onehot, part[:, :L] == part[:, L:]))
    return chunks


def _similarity(k: np.ndarray, c_tilde: np.ndarray, sets: tuple[tuple[int, ...], ...]
                ) -> tuple[np.ndarray, np.ndarray]:
    """``s = Σ_S c̃_S Π_{h∈S} k_h`` ``(...)`` and ``∂s/∂k_h`` ``(..., H)`` from ``k``
    ``(..., H)``."""
    sim = np.zeros(k.shape[:-1])
    dsim_dk = np.zeros(k.shape)
    for weight, s in zip(c_tilde, sets):
        sim += weight * (np.prod(k[..., [h - 1 for h in s]], axis=-1) if s else 1.0)
        for h in s:
            rest = [g - 1 for g in s if g != h]
            dsim_dk[..., h - 1] += weight * (np.prod(k[..., rest], axis=-1) if rest else 1.0)
    return sim, dsim_dk


def _loss_and_slope(sim: np.ndarray, hit: np.ndarray, a: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per-sequence loss ``(n,)`` and ``∂ℓ/∂s_l`` ``(n, L)`` from ``s`` ``(n, L)``."""
    logit = a * sim
    p = np.exp(logit - logit.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)  # (n, L)
    y_hat = (p * hit).sum(axis=1)  # (n,)
    loss = -np.log(np.maximum(y_hat, LOSS_FLOOR))
    above = y_hat > LOSS_FLOOR
    inv = np.divide(1.0, y_hat, out=np.zeros_like(y_hat), where=above)
    return loss, np.where(above[:, None], a * p * (1.0 - hit * inv[:, None]), 0.0)


def _chunk_gradient(chunk: _Chunk, sigma: np.ndarray, c_tilde: np.ndarray,
                    sets: tuple[tuple[int, ...], ...], a: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per-sequence loss ``(n,)`` and ``∂ℓ/∂w`` ``(n, H, M)`` of one chunk."""
    onehot, hit = chunk.onehot, chunk.hit  # (n, L+1, M, d), (n, L)
    n, L = hit.shape
    H, M = sigma.shape
    copies = np.einsum("nlmd,hm->nlhd", onehot, sigma)  # (n, L+1, H, d)
    q, u = copies[:, L], copies[:, :L]  # (n, H, d), (n, L, H, d)
    nq = np.sqrt(np.einsum("nhd,nhd->nh", q, q))  # (n, H), > 0 since L >= M
    nu = np.sqrt(np.einsum("nlhd,nlhd->nlh", u, u))  # (n, L, H)
    live = nu > 0
    safe_nu = np.where(live, nu, 1.0)
    q_bar = q / nq[..., None]  # (n, H, d)
    u_bar = u / safe_nu[..., None]  # (n, L, H, d)
    k = np.where(live, np.einsum("nhd,nlhd->nlh", q_bar, u_bar), 0.0)  # (n, L, H)

    sim, dsim_dk = _similarity(k, c_tilde, sets)  # (n, L), (n, L, H)
    loss, dloss_ds = _loss_and_slope(sim, hit, a)  # (n,), (n, L)
    dloss_dk = dloss_ds[..., None] * dsim_dk * live  # a copy that is 0 for every σ: k ≡ 0 there

    # ∂k/∂σ_j, u side: (q̄[x_{l-j}] - k ū(l)[x_{l-j}]) / |u(l)|, the one-hot 0 where l - j < 1
    ctx = onehot[:, :L]  # (n, L, M, d)
    q_at = np.einsum("nhd,nljd->nlhj", q_bar, ctx)  # (n, L, H, M)
    u_at = np.einsum("nlhd,nljd->nlhj", u_bar, ctx)  # (n, L, H, M)
    part_u = np.einsum("nlh,nlhj->nhj", dloss_dk / safe_nu, q_at - k[..., None] * u_at)
    # query side: (ū(l)[x_{L+1-j}] - k q̄[x_{L+1-j}]) / |q|
    query = onehot[:, L]  # (n, M, d)
    uq_at = np.einsum("nlhd,njd->nlhj", u_bar, query)  # (n, L, H, M)
    qq_at = np.einsum("nhd,njd->nhj", q_bar, query)  # (n, H, M)
    part_q = (np.einsum("nlh,nlhj->nhj", dloss_dk, uq_at)
              - np.einsum("nlh,nhj->nhj", dloss_dk * k, qq_at)) / nq[..., None]
    return loss, sigma[None] * (part_u + part_q)


def _gradient(chunks: list[_Chunk], sigma: np.ndarray, c_tilde: np.ndarray,
              sets: tuple[tuple[int, ...], ...], a: float) -> tuple[np.ndarray, np.ndarray]:
    parts = [_chunk_gradient(chunk, sigma, c_tilde, sets, a) for chunk in chunks]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


@dataclass(frozen=True, eq=False)
class _Patterns:
    """A sample by window pattern: ``u_h(l)`` depends on ``l`` only through the tokens
    ``(x_{l-1}, …, x_{l-M})`` it can read (absent ones marked -1), so ``k_h(l)`` and its
    derivative are tables over (query pattern, position pattern), and a step's mean gradient
    sums ``∂ℓ/∂k`` into those cells (docs/theory.md §2, window patterns)."""

    windows: np.ndarray  # (P, M, d) one-hot tokens of each distinct position window
    queries: np.ndarray  # (R, M, d) one-hot tokens of each distinct query window
    position: np.ndarray  # (n, L) the window index of each position
    query: np.ndarray  # (n,) the query window index of each sequence
    hit: np.ndarray  # (n, L): l ∈ A


def _patterns(tok: np.ndarray, window: int, vocab: int) -> _Patterns:
    n, L = tok.shape[0], tok.shape[1] - 1
    pos = np.arange(1, L + 2)[:, None] - np.arange(1, window + 1)[None, :]  # (L+1, M): l - i
    valid = pos >= 1
    padded = np.concatenate([np.full((n, 1), -1, dtype=np.int64), tok[:, :L]], axis=1)
    shifted = np.where(valid, padded[:, np.where(valid, pos, 0)], -1)  # (n, L+1, M)
    radix = (vocab + 1) ** np.arange(window, dtype=np.int64)  # (M,)
    codes = (shifted + 1) @ radix  # (n, L+1)
    cells, position = np.unique(codes[:, :L], return_inverse=True)
    queries, query = np.unique(codes[:, L], return_inverse=True)

    def onehot(code: np.ndarray) -> np.ndarray:  # (K,) codes -> (K, M, d)
        digits = (code[:, None] // radix[None, :]) % (vocab + 1) - 1  # (K, M)
        return (digits[..., None] == np.arange(vocab)).astype(np.float64)

    return _Patterns(onehot(cells), onehot(queries), position.reshape(n, L), query.reshape(n),
                     tok[:, :L] == tok[:, L:])


def _pattern_mean_gradient(pat: _Patterns, sigma: np.ndarray, c_tilde: np.ndarray,
                           sets: tuple[tuple[int, ...], ...], a: float) -> np.ndarray:
    """The mean ``∂ℓ/∂w`` ``(H, M)`` over the sample, from the window-pattern tables.

    Every contraction is a (batched) matrix product, head-major where the head is the batch.
    """
    n, L = pat.hit.shape
    windows_t = pat.windows.transpose(0, 2, 1)  # (P, d, M)
    queries_t = pat.queries.transpose(0, 2, 1)  # (R, d, M)
    u = np.matmul(sigma, pat.windows)  # (P, H, d)
    q = np.matmul(sigma, pat.queries)  # (R, H, d)
    nu = np.sqrt((u * u).sum(axis=2))  # (P, H)
    nq = np.sqrt((q * q).sum(axis=2))  # (R, H)
    live = nu > 0
    safe_nu = np.where(live, nu, 1.0)
    u_bar, q_bar = u / safe_nu[..., None], q / nq[..., None]  # (P, H, d), (R, H, d)
    u_heads, q_heads = u_bar.transpose(1, 0, 2), q_bar.transpose(1, 0, 2)  # (H, P, d), (H, R, d)
    table = np.matmul(q_heads, u_heads.transpose(0, 2, 1)) * live.T[:, None, :]  # (H, R, P)
    sim, dsim_dk = _similarity(table.transpose(1, 2, 0), c_tilde, sets)  # (R, P), (R, P, H)
    R, P = sim.shape
    cell = pat.query[:, None] * P + pat.position  # (n, L)
    _, dloss_ds = _loss_and_slope(sim.ravel()[cell], pat.hit, a)  # (n, L)
    per_cell = np.bincount(cell.ravel(), weights=dloss_ds.ravel(), minlength=R * P)
    # Σ ∂ℓ/∂k per cell, head-major
    weight = per_cell.reshape(1, R, P) * dsim_dk.transpose(2, 0, 1) * live.T[:, None, :]
    # Σ_{r,p} weight ∂k/∂σ_j, summed over the query (r) or position (p) cells before the
    # one-hot read-out at offset j, so that no (R, P, H, M) table is formed.
    by_position = np.matmul(weight.transpose(0, 2, 1), q_heads)  # (H, P, d)
    by_query = np.matmul(weight, u_heads)  # (H, R, d)
    k_weight = weight * table  # (H, R, P)
    k_by_position, k_by_query = k_weight.sum(axis=1).T, k_weight.sum(axis=2).T  # (P, H), (R, H)
    u_side = (np.matmul(by_position.transpose(1, 0, 2), windows_t)
              - k_by_position[..., None] * np.matmul(u_bar, windows_t))  # (P, H, M)
    q_side = (np.matmul(by_query.transpose(1, 0, 2), queries_t)
              - k_by_query[..., None] * np.matmul(q_bar, queries_t))  # (R, H, M)
    grad = ((u_side / safe_nu[..., None]).sum(axis=0)
            + (q_side / nq[..., None]).sum(axis=0))  # (H, M)
    return sigma * grad / n


def _check_tokens(tokens: Any, spec: ModelSpec) -> np.ndarray:
    tok = check_context(tokens).astype(np.int64)
    require(tok.shape[1] - 1 > spec.window, "tokens",
            f"an (n, L+1) sample with L > M = {spec.window}", tok.shape)
    require(int(tok.min()) >= 0, "tokens", "tokens >= 0", int(tok.min()))
    return tok


class CopierSample:
    """A fixed sample prepared once for the copier's gradient at many σ (module docstring).

    Args:
        tokens: integer ``(n, L+1)``: contexts ``x_1..x_L`` and targets ``x_{L+1}``.
        spec: the model's spec (sizes, windows and head sets).

    Raises:
        InductionHeadsError: on a bad spec or sample (``L > M`` is required).
    """

    def __init__(self, tokens: Any, spec: ModelSpec) -> None:
        require(isinstance(spec, ModelSpec), "spec", "a theory.ModelSpec", type(spec).__name__)
        self.tokens = _check_tokens(tokens, spec)  # (n, L+1)
        self.spec = spec
        self.inside = np.array(spec.window_mask(), dtype=bool)  # (H, M)
        vocab = int(self.tokens.max()) + 1
        # A window's code needs (d+1)^M < 2^62; the tables cost R·P·H·d a step against the
        # direct form's n·L·H·M·d: the cheaper wins.
        pat = (_patterns(self.tokens, spec.window, vocab)
               if (vocab + 1) ** spec.window < 2 ** 62 else None)
        if (pat is not None
                and pat.windows.shape[0] * pat.queries.shape[0] > pat.hit.size * spec.window):
            pat = None
        self._patterns = pat
        self._chunks = _prepare(self.tokens, spec.window, vocab)

    @property
    def samples(self) -> int:
        """The sequences ``n``."""
        return int(self.tokens.shape[0])

    def attention(self, logits: Any) -> np.ndarray:
        """σ ``(H, M)`` at ``logits`` (entries outside a head's window ignored).

        Raises:
            InductionHeadsError: on another shape or a non-finite logit inside a window.
        """
        w = np.array(logits, dtype=np.float64)
        require(w.shape == self.inside.shape, "logits",
                f"an array of shape (H, M) = {self.inside.shape}", w.shape)
        require(bool(np.all(np.isfinite(w[self.inside]))), "logits",
                "finite inside the windows", w)
        return copier_softmax(np.where(self.inside, w, -np.inf))

    def per_sequence(self, logits: Any, selector_weights: Any, a: float
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Per-sequence losses ``(n,)`` and gradients ``∂ℓ_i/∂w`` ``(n, H, M)``."""
        sigma = self.attention(logits)
        c = check_selector_weights(selector_weights, self.spec)
        return _gradient(self._chunks, sigma, c, self.spec.sets, as_float(a, "a"))

    def mean_gradient(self, logits: Any, selector_weights: Any, a: float) -> np.ndarray:
        """The sample's mean ``∂ℓ/∂w`` ``(H, M)`` (the pattern tables where they are cheaper)."""
        if self._patterns is None:
            return self.per_sequence(logits, selector_weights, a)[1].mean(axis=0)
        sigma = self.attention(logits)
        c = check_selector_weights(selector_weights, self.spec)
        return _pattern_mean_gradient(self._patterns, sigma, c, self.spec.sets,
                                      as_float(a, "a"))


def copier_loss_gradient(tokens: Any, spec: ModelSpec, *, logits: Any, selector_weights: Any,
                         a: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-sequence loss and its gradient in the copier logits (module docstring).

    Args:
        tokens: integer ``(n, L+1)``: contexts ``x_1..x_L`` and targets ``x_{L+1}``.
        spec: the model's spec (sizes, windows and head sets).
        logits: float ``(H, M)`` copier logits ``w`` (entries outside a head's window ignored).
        selector_weights: ``(|𝒮|,)`` c̃ in ``spec.sets`` order.
        a: the classifier temperature.

    Returns:
        float64 ``(n,)`` losses and ``(n, H, M)`` gradients ``∂ℓ_i/∂w`` (0 outside windows).
    """
    return CopierSample(tokens, spec).per_sequence(logits, selector_weights, a)


def _drift(grad: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``dσ_h(h)/dt`` under gradient flow, per row of ``grad`` ``(..., H, M)`` -> ``(..., H)``."""
    H = sigma.shape[0]
    own = np.arange(H)
    centred = grad[..., own, own] - np.einsum("...hm,hm->...h", grad, sigma)
    return -sigma[own, own] * centred


@dataclass(frozen=True, eq=False)
class CopierGradient:
    """The copier's loss gradient on a sample, with standard errors over its sequences.

    Attributes:
        attention: ``(H, M)`` σ where it is taken.
        mean: ``(H, M)`` ``∂ℓ/∂w``, the mean over sequences.
        se: ``(H, M)`` its standard error.
        drift: ``(H,)`` ``dσ_h(h)/dt`` under gradient flow (module docstring).
        drift_se: ``(H,)`` its paired standard error.
        samples: the sequences.
    """

    attention: np.ndarray
    mean: np.ndarray
    se: np.ndarray
    drift: np.ndarray
    drift_se: np.ndarray
    samples: int


def copier_gradient(tokens: Any, spec: ModelSpec, *, selector_weights: Any,
                    logits: Any | None = None, a: float | None = None) -> CopierGradient:
    """``∂ℓ/∂w`` on a sample, at ``logits`` (default the spec's initialisation) and ``a``
    (default ``spec.a_init``), with c̃ fixed at ``selector_weights``.

    ``tokens``: an integer ``(n, L+1)`` sample or a :class:`CopierSample` of one. With tokens
    drawn from the source this is the Monte Carlo estimate of the population gradient; its
    standard errors are over sequences, the drift's paired (formed per sequence).
    """
    sample = tokens if isinstance(tokens, CopierSample) else CopierSample(tokens, spec)
    w = initial_logits(spec) if logits is None else logits
    _, grad = sample.per_sequence(w, selector_weights,
                                  spec.a_init if a is None else a)  # (n, H, M)
    sigma = sample.attention(w)  # (H, M)
    n = grad.shape[0]
    drift = _drift(grad, sigma)  # (n, H)
    scale = np.sqrt(n) if n > 1 else np.nan
    ddof = 1 if n > 1 else 0
    return CopierGradient(sigma, grad.mean(axis=0), grad.std(axis=0, ddof=ddof) / scale,
                          drift.mean(axis=0), drift.std(axis=0, ddof=ddof) / scale, n)
