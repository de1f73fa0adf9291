"""The selector's dynamics at a finite classifier temperature ``a`` (docs/theory.md §3).

Stage-wise training ranks head sets by ``G_L``, the ``a → 0`` slope of the loss. In joint
training ``a`` grows while the selector still moves, so the set it favours is decided by the
loss at the temperature reached. With the exact copier (head ``h`` copies offset ``h``), head-set
products ``K_S(l) = Π_{h∈S} 1{l-h >= 1 and x_{l-h} = x_{L+1-h}}``, a selector ``c̃`` and
``s_l = Σ_S c̃_S K_S(l)``, the model predicts ``ŷ = Σ_l p_l e(x_l)``, ``p = softmax_l(a s_l)``.

**Losses of the vertices (the GIH at temperature a).** With ``c̃`` one-hot on ``S`` the
similarity is 0/1, so with ``x = e^{-a}``, ``M_S(e) = Σ_l K_S(l) 1{x_l = e}``, ``N(e)`` the count
of ``e`` in the context, ``m_S = Σ_e M_S(e)`` and ``u_S = L - m_S``,

    ŷ_S(e) = (M_S(e) + (N(e) - M_S(e)) x) / (m_S + u_S x),

exact per sequence (:func:`gih_predict` at that ``a``). :func:`gih_losses` evaluates it for every
set and every ``a`` of a grid on one draw of sequences (common random numbers), per sequence.

**Growth rates.** With ``g = ∂ℓ/∂ŷ`` (``nll``: ``-1{e=y}/ŷ_y``, 0 at the loss floor;
``official_ce``: ``softmax(ŷ) - e(y)``), ``∂ℓ/∂s_l = a p_l (g_{x_l} - <g, ŷ>)``, so the fitness
of a set is ``f_T = -∂ℓ/∂c̃_T = -Σ_l ∂ℓ/∂s_l K_T(l)`` (for ``nll``, ``a (E_q K_T - E_p K_T)``
with ``q`` the restriction of ``p`` to the positions holding the target). Through
``c̃ = C²/ΣC²``, ``∂c̃_T/∂C_S = (2C_S/ΣC²)(δ_TS - c̃_T)``, so

    r_S(a) = -∂ℓ/∂C_S = (2C_S/ΣC²) (f_S - Σ_T c̃_T f_T)

(:func:`selector_growth`), and ``dc̃_S/dt = (4/ΣC²) c̃_S (f_S - f̄)``: the replicator of
:mod:`theory.dynamics.replicator` with ``a G`` replaced by ``f(a)``. As ``a → 0``, ``p`` and
``q`` become uniform and ``f_T/a`` tends to the stage-1 signal ``g(T)`` of
:func:`theory.criterion.estimates.stage1_signal`. At the vertex ``c̃ = e_S`` the fitness of every
set comes from the joint counts ``J_ST(e) = Σ_l K_S(l) K_T(l) 1{x_l = e}``:
``Σ_l p_l K_T(l) 1{x_l = e} = (J_ST(e) + (M_T(e) - J_ST(e)) x)/(m_S + u_S x)``
(:func:`vertex_fitness`); ``T`` invades the vertex ``S`` when ``f_T > f_S`` there.

**Small a.** Per sequence with target ``y`` and ``N(y) >= 1``, write ``α = M_S(y)/N(y)`` and
``β = m_S/L``, the means of ``K_S`` over the positions holding ``y`` and over all ``L``; the
cumulant expansion of the two log-partition functions gives for ``nll``

    ℓ_S(a) = -log(N(y)/L) - a (α - β) - (a²/2) (α(1-α) - β(1-β)) + O(a³),

so ``c1_S = mean(α - β) = G_L(S)`` and ``c2_S = -mean(α(1-α) - β(1-β))/2``
(``-H_n(S, S)/2`` of :func:`theory.criterion.training_sample.sample_curvature`). For
``official_ce``, ``ŷ_e = π_e + a δ_e + a² δ_e (1/2 - β) + O(a³)`` with ``π_e = N(e)/L`` and
``δ_e = M_S(e)/L - π_e β``; with ``q = softmax(π)``,
``c1 = mean(δ_y - <q, δ>)`` and ``c2 = mean((1/2 - β)(<q, δ> - δ_y) + Var_q(δ)/2)``
(:func:`small_temperature_expansion`). A sequence whose target is absent sits at the floor
(``nll``) and adds nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from theory.criterion.values import check_head_set
from theory.errors import require
from theory.predictors.reference import LOSS_FLOOR, context_similarity
from theory.sizes import FLOAT_BYTES, require_memory
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import Source
from theory.validation import as_int, is_real

__all__ = [
    "TEMPERATURE_LOSS_KINDS",
    "SetCounts",
    "TemperatureLosses",
    "check_temperatures",
    "set_counts",
    "gih_losses",
    "losses_from_counts",
    "selector_fitness",
    "selector_growth",
    "vertex_fitness",
    "small_temperature_expansion",
]

TEMPERATURE_LOSS_KINDS = ("nll", "official_ce")
"""``nll``: ``-log max(ŷ(y), LOSS_FLOOR)``; ``official_ce``: cross-entropy with ``ŷ`` as logits."""

_LOG_FLOOR = -math.log(LOSS_FLOOR)


def _check_loss(loss: Any) -> str:
    require(loss in TEMPERATURE_LOSS_KINDS, "loss", f"one of {TEMPERATURE_LOSS_KINDS}", loss)
    return str(loss)


def check_temperatures(temperatures: Any) -> np.ndarray:
    """A 1-D increasing grid of finite temperatures ``>= 0`` as float64 ``(A,)``."""
    grid = np.asarray(temperatures, dtype=np.float64)
    require(grid.ndim == 1 and grid.size >= 1 and bool(np.all(np.isfinite(grid)))
            and bool(np.all(grid >= 0)) and bool(np.all(np.diff(grid) > 0)), "temperatures",
            "an increasing 1-D grid of finite numbers >= 0", temperatures)
    return grid


def _check_tokens(tokens: Any, sets: Any) -> tuple[np.ndarray, tuple[tuple[int, ...], ...]]:
    tok = np.asarray(tokens)
    require(tok.ndim == 2 and tok.shape[1] >= 2 and np.issubdtype(tok.dtype, np.integer)
            and int(tok.min()) >= 0, "tokens", "an integer array (n, L+1) of tokens >= 0",
            (tok.shape, str(tok.dtype)))
    out = tuple(check_head_set(s) for s in sets)
    L = tok.shape[1] - 1
    require(len(out) >= 1 and all(h <= L for s in out for h in s), "sets",
            f"head sets with offsets in 1..L = 1..{L}", sets)
    return tok.astype(np.int64, copy=False), out


@dataclass(frozen=True, eq=False)
class SetCounts:
    """The counts a sample's vertices depend on (module docstring).

    Attributes:
        sets: the head sets.
        joint: float64 (n, |𝒮|, |𝒮|, d), ``J_ST(e)``; its diagonal is ``M_S(e)``.
        tokens: float64 (n, d), ``N(e)``, the count of ``e`` in the context.
        targets: int64 (n,), ``y = x_{L+1}``.
    """

    sets: tuple[tuple[int, ...], ...]
    joint: np.ndarray
    tokens: np.ndarray
    targets: np.ndarray

    @property
    def match(self) -> np.ndarray:
        """``M_S(e)`` (n, |𝒮|, d)."""
        return np.einsum("nssd->nsd", self.joint)


def set_counts(tokens: Any, sets: Any, *, vocab_size: int) -> SetCounts:
    """The joint match counts ``J_ST(e) = Σ_l K_S(l) K_T(l) 1{x_l = e}`` of a sample.

    Args:
        tokens: integer ``(n, L+1)``, context then target.
        sets: head sets (offsets in ``1..L``).
        vocab_size: ``d``.
    """
    tok, sets = _check_tokens(tokens, sets)
    d = as_int(vocab_size, "vocab_size", minimum=2, symbol="d")
    require(int(tok.max()) < d, "tokens", f"values in 0..{d - 1}", int(tok.max()))
    ctx = tok[:, :-1]
    prods = np.stack([context_similarity(ctx, s) for s in sets], axis=1)  # (n, |𝒮|, L)
    onehot = (ctx[:, :, None] == np.arange(d)).astype(np.float64)  # (n, L, d)
    joint = np.einsum("nsl,ntl,nld->nstd", prods, prods, onehot, optimize=True)
    return SetCounts(sets, joint, onehot.sum(axis=1), tok[:, -1].copy())


def _vertex_probs(match: np.ndarray, count: np.ndarray, x: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``ŷ_S(e)`` (n, S, A, d) and ``Z_S = m_S + u_S x`` (n, S, A): match (n, S, d), count
    (n, d), x (A,)."""
    m = match.sum(axis=-1)[:, :, None]  # (n, S, 1)
    L = count.sum(axis=-1)[:, None, None]  # (n, 1, 1)
    norm = m + (L - m) * x[None, None, :]  # (n, S, A)
    num = match[:, :, None, :] + (count[:, None, None, :] - match[:, :, None, :]) * x[
        None, None, :, None]
    return num / norm[..., None], norm


def _loss_and_grad(probs: np.ndarray, target: np.ndarray, loss: str
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Per-sequence loss (...) and ``g = ∂ℓ/∂ŷ`` (..., d) of ŷ (n, ..., d) against (n,)."""
    d = probs.shape[-1]
    shape = (-1,) + (1,) * (probs.ndim - 1)
    hot = (target.reshape(shape) == np.arange(d)).astype(np.float64)  # (n, 1.., d)
    picked = (probs * hot).sum(axis=-1)
    if loss == "nll":
        inv = np.divide(1.0, picked, out=np.zeros_like(picked), where=picked > LOSS_FLOOR)
        return -np.log(np.maximum(picked, LOSS_FLOOR)), -hot * inv[..., None]
    top = probs.max(axis=-1, keepdims=True)
    q = np.exp(probs - top)
    total = q.sum(axis=-1, keepdims=True)
    return (top + np.log(total))[..., 0] - picked, q / total - hot


def losses_from_counts(counts: SetCounts, temperatures: Any, *, loss: str = "nll"
                       ) -> np.ndarray:
    """Per-sequence loss of every vertex (the GIH of each set) at every ``a``: (n, |𝒮|, A)."""
    grid = check_temperatures(temperatures)
    probs, _ = _vertex_probs(counts.match, counts.tokens, np.exp(-grid))
    return _loss_and_grad(probs, counts.targets, _check_loss(loss))[0]


@dataclass(frozen=True, eq=False)
class TemperatureLosses:
    """Monte Carlo losses of every set's GIH on a temperature grid, one draw for all.

    Attributes:
        sets: the head sets.
        temperatures: float64 (A,), the grid.
        loss: one of :data:`TEMPERATURE_LOSS_KINDS`.
        per_sequence: float64 (n, |𝒮|, A), every sequence's loss.
    """

    sets: tuple[tuple[int, ...], ...]
    temperatures: np.ndarray
    loss: str
    per_sequence: np.ndarray

    @property
    def samples(self) -> int:
        """Sequences behind the means."""
        return int(self.per_sequence.shape[0])

    @property
    def values(self) -> np.ndarray:
        """Mean loss (|𝒮|, A)."""
        return self.per_sequence.mean(axis=0)

    @property
    def stderr(self) -> np.ndarray:
        """Standard error of the means (|𝒮|, A)."""
        return self.per_sequence.std(axis=0, ddof=1) / math.sqrt(self.samples)

    def difference(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """``ℓ_i - ℓ_j`` (A,) and its paired standard error (A,) (set indices)."""
        diff = self.per_sequence[:, i] - self.per_sequence[:, j]  # (n, A)
        return diff.mean(axis=0), diff.std(axis=0, ddof=1) / math.sqrt(self.samples)

    def extended(self, more: TemperatureLosses) -> TemperatureLosses:
        """These losses pooled with ``more`` (the same sets, grid and loss)."""
        require(isinstance(more, TemperatureLosses) and more.sets == self.sets
                and more.loss == self.loss
                and np.array_equal(more.temperatures, self.temperatures), "more",
                f"losses of the sets {self.sets} on the same grid and loss", type(more).__name__)
        return TemperatureLosses(self.sets, self.temperatures, self.loss,
                                 np.concatenate([self.per_sequence, more.per_sequence]))


def gih_losses(source: Source, sets: Any, seq_len: int, temperatures: Any, *, samples: int,
               rng: np.random.Generator, loss: str = "nll") -> TemperatureLosses:
    """The loss of GIH_S at temperature ``a`` for every set and every ``a`` of a grid.

    One draw of ``samples`` sequences of ``L + 1`` tokens (uniform start, no burn-in, as for
    ``G_L``) serves every set and every ``a``, so differences are paired; the per-sequence loss
    is exact (module docstring) and equals :func:`theory.gih_predict`'s.

    Args:
        source: the source.
        sets: head sets (offsets).
        seq_len: ``L > max(max S, r)``.
        temperatures: increasing grid of finite ``a >= 0`` (A,).
        samples: sequences, >= 2.
        rng: numpy generator, the only randomness.
        loss: one of :data:`TEMPERATURE_LOSS_KINDS`.

    Returns:
        :class:`TemperatureLosses` with per-sequence values (n, |𝒮|, A).
    """
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    require(isinstance(rng, np.random.Generator), "rng", "a numpy.random.Generator",
            type(rng).__name__)
    loss = _check_loss(loss)
    grid = check_temperatures(temperatures)
    sets = tuple(check_head_set(s) for s in sets)
    bound = max([source.max_parent] + [max(s) for s in sets if s])
    seq_len = as_int(seq_len, "seq_len", minimum=bound + 1, symbol="L")
    samples = as_int(samples, "samples", minimum=2)
    S, A, d = len(sets), grid.size, source.vocab_size
    require_memory(samples * S * (2 * seq_len + S * d + 2 * A * d) * FLOAT_BYTES,
                   f"GIH losses for d={d}, {S} head sets, {A} temperatures at L={seq_len} "
                   f"over {samples} sequences", "pass fewer samples or temperatures")
    tokens = sample_sequences_np(source, samples, seq_len + 1, rng=rng)  # (n, L+1)
    counts = set_counts(tokens, sets, vocab_size=source.vocab_size)
    per = losses_from_counts(counts, grid, loss=loss)
    return TemperatureLosses(sets, grid, loss, per)


def selector_fitness(tokens: Any, sets: Any, a: float, *, vocab_size: int, weights: Any = None,
                     loss: str = "nll") -> np.ndarray:
    """Per-sequence fitness ``f_T = -∂ℓ/∂c̃_T`` of the exact-copier model, float64 (n, |𝒮|).

    Exact (module docstring), evaluated over positions, so ``c̃`` may be anywhere on the
    simplex.

    Args:
        tokens: integer ``(n, L+1)``.
        sets: head sets (offsets).
        a: the temperature, a finite number.
        vocab_size: ``d`` (the official loss normalises over every token, seen or not).
        weights: ``c̃`` (|𝒮|,), non-negative, summing to 1; None for uniform.
        loss: one of :data:`TEMPERATURE_LOSS_KINDS`.
    """
    tok, sets = _check_tokens(tokens, sets)
    require(is_real(a) and math.isfinite(a), "a", "a finite number", a)
    loss = _check_loss(loss)
    c_tilde = _check_weights(weights, len(sets))
    ctx, target = tok[:, :-1], tok[:, -1]
    d = as_int(vocab_size, "vocab_size", minimum=2, symbol="d")
    require(int(tok.max()) < d, "tokens", f"values in 0..{d - 1}", int(tok.max()))
    prods = np.stack([context_similarity(ctx, s) for s in sets], axis=1)  # (n, |𝒮|, L)
    sim = np.einsum("s,nsl->nl", c_tilde, prods)  # (n, L)
    z = float(a) * sim
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)  # (n, L)
    onehot = (ctx[:, :, None] == np.arange(d)).astype(np.float64)  # (n, L, d)
    y_hat = np.einsum("nl,nld->nd", p, onehot)  # (n, d)
    _, grad_y = _loss_and_grad(y_hat, target, loss)  # (n, d)
    at_token = np.einsum("nld,nd->nl", onehot, grad_y)  # (n, L): g_{x_l}
    dl_ds = float(a) * p * (at_token - (grad_y * y_hat).sum(axis=1, keepdims=True))  # (n, L)
    return -np.einsum("nl,nsl->ns", dl_ds, prods)


def _check_weights(weights: Any, count: int) -> np.ndarray:
    if weights is None:
        return np.full(count, 1.0 / count)
    w = np.asarray(weights, dtype=np.float64)
    require(w.shape == (count,) and bool(np.all(np.isfinite(w))) and bool(np.all(w >= 0))
            and abs(float(w.sum()) - 1.0) <= 1e-12, "weights",
            f"c̃: {count} weights >= 0 summing to 1", weights)
    return w


def selector_growth(tokens: Any, sets: Any, a: float, *, vocab_size: int, selector: Any = None,
                    loss: str = "nll") -> np.ndarray:
    """Per-sequence ``r_S(a) = -∂ℓ/∂C_S`` at the selector ``C``, float64 (n, |𝒮|).

    ``r_S = (2C_S/ΣC²)(f_S - Σ_T c̃_T f_T)`` with ``c̃ = C²/ΣC²`` and ``f``
    :func:`selector_fitness` (module docstring); exact per sequence, so the mean over sequences
    is ``-∂/∂C_S`` of the mean loss.

    Args:
        tokens: integer ``(n, L+1)``.
        sets: head sets (offsets).
        a: the temperature.
        vocab_size: ``d``.
        selector: ``C`` (|𝒮|,), not all zero; None for all ones (``c̃`` uniform).
        loss: one of :data:`TEMPERATURE_LOSS_KINDS`.
    """
    _, checked = _check_tokens(tokens, sets)
    c = (np.ones(len(checked)) if selector is None
         else np.asarray(selector, dtype=np.float64))
    require(c.shape == (len(checked),) and bool(np.all(np.isfinite(c)))
            and float(c @ c) > 0, "selector", f"C: {len(checked)} finite numbers, not all 0",
            selector)
    total = float(c @ c)
    c_tilde = c * c / total
    fit = selector_fitness(tokens, checked, a, vocab_size=vocab_size, weights=c_tilde,
                           loss=loss)  # (n, |𝒮|)
    return (2.0 * c / total)[None, :] * (fit - (fit @ c_tilde)[:, None])


def vertex_fitness(counts: SetCounts, temperatures: Any, *, loss: str = "nll") -> np.ndarray:
    """Per-sequence fitness at every vertex: ``f_T(a)`` with ``c̃ = e_S``, (n, |𝒮|_S, |𝒮|_T, A).

    From the joint counts (module docstring); ``T`` invades the vertex ``S`` at ``a`` where the
    mean of ``f_T - f_S`` is positive.
    """
    grid = check_temperatures(temperatures)
    loss = _check_loss(loss)
    x = np.exp(-grid)  # (A,)
    joint, count = counts.joint, counts.tokens
    match = counts.match  # (n, S, d)
    probs, norm = _vertex_probs(match, count, x)  # (n, S, A, d), (n, S, A)
    _, grad = _loss_and_grad(probs, counts.targets, loss)  # (n, S, A, d)
    mean_grad = (grad * probs).sum(axis=-1)  # (n, S, A)
    # Σ_l p_l K_T(l) 1{x_l = e} = (J_ST(e) + (M_T(e) - J_ST(e)) x) / Z_S: (n, S, T, A, d)
    mass = (joint[:, :, :, None, :] + (match[:, None, :, None, :] - joint[:, :, :, None, :])
            * x[None, None, None, :, None]) / norm[:, :, None, :, None]
    inner = np.einsum("nsad,nstad->nsta", grad, mass)
    return -grid[None, None, None, :] * (inner - mean_grad[:, :, None, :] * mass.sum(axis=-1))


def small_temperature_expansion(counts: SetCounts, *, loss: str = "nll"
                                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-sequence ``(ℓ(0), c1_S, c2_S)``, each float64 (n, |𝒮|), of
    ``ℓ_S(a) = ℓ(0) - a c1_S + a² c2_S + O(a³)`` (module docstring; exact closed forms).

    For ``nll`` the mean of ``c1`` over sequences is ``G_L(S)`` on those sequences.
    """
    loss = _check_loss(loss)
    match, count, y = counts.match, counts.tokens, counts.targets
    n, S, d = match.shape
    L = count.sum(axis=-1)  # (n,)
    beta = match.sum(axis=-1) / L[:, None]  # (n, S): mean of K_S over all L
    rows = np.arange(n)
    if loss == "nll":
        n_y = count[rows, y]  # (n,)
        held = n_y > 0
        alpha = np.divide(match[rows, :, y], n_y[:, None], out=np.zeros((n, S)),
                          where=held[:, None])  # (n, S): mean of K_S over A
        base = np.where(held, -np.log(np.where(held, n_y, 1.0) / L), _LOG_FLOOR)  # (n,)
        c1 = np.where(held[:, None], alpha - beta, 0.0)
        c2 = np.where(held[:, None], -(alpha * (1 - alpha) - beta * (1 - beta)) / 2, 0.0)
        return np.repeat(base[:, None], S, axis=1), c1, c2
    pi = count / L[:, None]  # (n, d)
    delta = match / L[:, None, None] - pi[:, None, :] * beta[:, :, None]  # (n, S, d)
    q = np.exp(pi - pi.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)  # (n, d)
    base = pi.max(axis=1) + np.log(np.exp(pi - pi.max(axis=1, keepdims=True)).sum(axis=1)) \
        - pi[rows, y]  # (n,)
    mean_q = np.einsum("nd,nsd->ns", q, delta)
    var_q = np.einsum("nd,nsd->ns", q, delta * delta) - mean_q ** 2
    delta_y = delta[rows, :, y]  # (n, S)
    return (np.repeat(base[:, None], S, axis=1), delta_y - mean_q,
            (0.5 - beta) * (mean_q - delta_y) + var_q / 2)
