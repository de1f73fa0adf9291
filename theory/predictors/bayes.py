"""The Bayes posterior predictive of ``x_{L+1}`` for every prior of a source (docs/theory.md §1, §3.5).

The predictive ``p(x_{L+1} = e | x_1..x_L) = E[π(e | z*) | x_1..x_L]`` is computed conditional on
the start tokens ``x_1..x_r`` (``r = max(P)``): only the transitions ``t = r+1..L`` enter the
likelihood. Under the default start (``"uniform"``, :mod:`theory.sources.sequences`) the start tokens do
not depend on the kernel, so this is the exact posterior predictive. Under ``start="stationary"``
their law ``μ_π(x_1..x_r)`` depends on the kernel (as it does after a ``burn_in > 0`` under any
start), and the predictive here leaves that factor out: it is the posterior given the
transitions, with the start tokens as fixed conditioning context. The factor carries O(1)
information against O(L) from the transitions; :func:`bayes_predict_importance` weights by the
full likelihood, start included; the two differ by a total variation that falls with L
(tests/theory/predictors/test_bayes.py; values in docs/results.md §9).

- ``Dirichlet(α)``: the closed form ``(N(z*, e) + α) / (N(z*) + dα)``
  (:func:`theory.predictors.reference.bayes_predict`).
- ``Fixed(π)``: the prior is a point mass, so the predictive is ``π(· | z*)`` (the oracle).
- ``Mixture`` with one component ``(P_1, α_1)``: the kernel depends on ``P_1`` only and its rows
  are Dirichlet, so the closed form on ``P_1``, counted over the transitions ``t >= r+1``.
- ``Mixture`` with ``J >= 2`` components: ``π(·|z) = Σ_j w_j π_j(·|z_j)`` (``z_j`` the context
  restricted to ``P_j``) is a convex combination *within* every sequence, not a choice of one
  component per sequence. Writing each transition as drawn from component ``c_t ~ w`` gives

      p(e | x) = Σ_j w_j E_{c | x}[(n_j(z*_j, e) + α_j) / (n_j(z*_j) + dα_j)],

  with ``n_j`` the counts of the transitions assigned to ``j``. The posterior over the
  assignments ``c`` is a sum over ``J^(L-r)`` products of Dirichlet-multinomial terms (exact
  enumeration, in tests/theory/predictors/test_bayes.py, is feasible for about ten transitions
  only), so :func:`mixture_bayes_smc` estimates it by sequential importance resampling over
  ``c`` (the Dirichlet rows integrated out), consistent in the number of particles. The filter is
  sequential: it loops over the transitions, vectorised over sequences and particles.

:func:`bayes_predict_prior` dispatches on the prior for the final position, and
:func:`bayes_predict_prior_positions` gives every position, ``(n, T, d)``, row ``l-1``
predicting ``x_{l+1}`` (rows ``l < r`` NaN, as in :mod:`theory.predictors.positional`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from theory.errors import require
from theory.predictors.positional import bayes_predict_positions, oracle_predict_positions
from theory.predictors.reference import bayes_predict, check_context, oracle_predict
from theory.sizes import FLOAT_BYTES, require_memory
from theory.sources.kernels import sample_kernels
from theory.sources.priors import Dirichlet, Fixed, Mixture, MixtureComponent, structure_weights
from theory.sources.sequences import START_MODES
from theory.sources.spec import Source
from theory.sources.stationary import window_law
from theory.validation import as_generator, as_int

__all__ = [
    "DEFAULT_PARTICLES",
    "RESAMPLE_ESS_FRACTION",
    "MonteCarloPredictive",
    "needs_monte_carlo",
    "bayes_predict_prior",
    "bayes_predict_prior_positions",
    "mixture_bayes_smc",
    "bayes_predict_importance",
]

DEFAULT_PARTICLES = 256
"""Particles per sequence of :func:`mixture_bayes_smc` in the dispatchers (accuracy measured in
tests/theory/predictors/test_bayes.py against exact enumeration and against 16 times as many
particles)."""

RESAMPLE_ESS_FRACTION = 0.5
"""A sequence's particles are resampled when their effective sample size drops below this
fraction of the particle count (the usual adaptive rule)."""

_CHUNK_ENTRIES = 1 << 22
"""Count-table entries of one chunk of sequences (16 MiB as int32)."""

_TINY = np.finfo(np.float64).tiny
"""Floor of kernel entries and start laws inside ``log``: an entry that underflowed to 0 (an
impossible transition) weighs ``e^-708`` instead of making ``0 · log 0`` a NaN."""


@dataclass(frozen=True)
class MonteCarloPredictive:
    """A Monte Carlo estimate of the posterior predictive.

    Attributes:
        probs: float64 ``(n, d)`` (or ``(n, T, d)`` per position); rows sum to 1.
        se: its standard error, same shape, or None when not estimated.
        ess: effective sample size per sequence ``(n,)`` (importance sampling), or None.
    """

    probs: np.ndarray
    se: np.ndarray | None = None
    ess: np.ndarray | None = None


def needs_monte_carlo(source: Source) -> bool:
    """Whether the source's Bayes predictive is a Monte Carlo estimate: a prior of >= 2 parts
    (mixture components, switching structures or finite-mixture chains)."""
    require(isinstance(source, Source), "source", "a theory.sources.spec.Source", type(source).__name__)
    prior = source.prior
    if isinstance(prior, Mixture):
        return len(prior.components) > 1
    return len(structure_weights(prior)) > 1


def _tokens(tokens: Any, source: Source, what: str) -> np.ndarray:
    require(isinstance(source, Source), "source", "a theory.sources.spec.Source", type(source).__name__)
    x = check_context(tokens, source.vocab_size)
    require(x.shape[1] >= source.max_parent, what,
            f"at least r = max(P) = {source.max_parent} tokens per sequence (the query's "
            "parent context)", x.shape)
    return x


def _single_component(source: Source) -> MixtureComponent | None:
    prior = source.prior
    if isinstance(prior, Dirichlet):
        return MixtureComponent(source.parents, 1.0, prior.alpha)
    if isinstance(prior, Fixed) or len(prior.components) > 1:
        return None
    return prior.components[0]


def bayes_predict_prior(context: Any, source: Source, *, rng: np.random.Generator | None = None,
                        particles: int = DEFAULT_PARTICLES) -> np.ndarray:
    """The posterior predictive of ``x_{L+1}`` under the source's prior (module docstring).

    Args:
        context: integer ``(n, L)``, ``x_1..x_L``, ``L >= r``.
        source: the source the context was drawn from.
        rng: numpy generator (keyword-only), needed only when :func:`needs_monte_carlo`
            (:func:`mixture_bayes_smc`); unused otherwise.
        particles: particles per sequence of that estimate.

    Returns:
        float64 ``(n, d)``; rows sum to 1.

    Raises:
        InductionHeadsError: on a bad source or context, or a missing ``rng`` for a mixture of
            two or more components.
    """
    ctx = _tokens(context, source, "context")
    d, r = source.vocab_size, source.max_parent
    if isinstance(source.prior, Fixed):
        kernels = np.broadcast_to(source.prior.kernel, (len(ctx),) + source.prior.kernel.shape)
        return oracle_predict(ctx, source.parents, kernels)
    comp = _single_component(source)
    if comp is not None:
        shift = r - comp.parents[-1]  # drop the start tokens before P_1's first transition
        return bayes_predict(ctx[:, shift:], comp.parents, comp.alpha, vocab_size=d)
    return mixture_bayes_smc(ctx, source, rng=rng, particles=particles).probs


def bayes_predict_prior_positions(tokens: Any, source: Source, *,
                                  rng: np.random.Generator | None = None,
                                  particles: int = DEFAULT_PARTICLES) -> np.ndarray:
    """:func:`bayes_predict_prior` at every position: tokens ``(n, T)`` → float64 ``(n, T, d)``.

    Row ``l-1`` is the predictive of ``x_{l+1}`` from ``x_1..x_l``; rows ``l < r`` are NaN. The
    closed forms count with :func:`theory.predictors.positional.match_counts` (no loop over positions);
    the Monte Carlo estimate filters once through the sequence and reads every position.
    """
    x = _tokens(tokens, source, "tokens")
    d, r = source.vocab_size, source.max_parent
    if isinstance(source.prior, Fixed):
        kernels = np.broadcast_to(source.prior.kernel, (len(x),) + source.prior.kernel.shape)
        return oracle_predict_positions(x, source.parents, kernels)
    comp = _single_component(source)
    if comp is not None:
        shift = r - comp.parents[-1]
        out = np.full(x.shape + (d,), np.nan)  # (n, T, d)
        out[:, shift:] = bayes_predict_positions(x[:, shift:], comp.parents, comp.alpha,
                                                 vocab_size=d)
        return out
    return mixture_bayes_smc(x, source, rng=rng, particles=particles, positions=True).probs


def _rows(x: np.ndarray, parents: tuple[int, ...], r: int, d: int) -> np.ndarray:
    """Flat row index of ``(x_{t-p})_{p∈parents}`` for the queries ``t = r+1..T+1``: ``(n, T+1-r)``."""
    t = np.arange(r + 1, x.shape[1] + 2)  # (T+1-r,) 1-based query positions
    out = np.zeros((x.shape[0], t.size), dtype=np.int64)
    for p in parents:  # x_{t-p} is column t-p-1
        out = out * d + x[:, t - p - 1]
    return out


def _normalised_weights(logw: np.ndarray) -> np.ndarray:
    w = np.exp(logw - logw.max(axis=1, keepdims=True))  # (c, K)
    return w / w.sum(axis=1, keepdims=True)


def _resample(weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Systematic resampling of every row: weights ``(m, K)``, uniforms ``(m,)`` → ``(m, K)``."""
    m, k = weights.shape
    cdf = np.cumsum(weights, axis=1)  # (m, K)
    cdf[:, -1] = 1.0
    shift = np.arange(m)[:, None]  # rows stacked on [i, i+1]: one sorted array
    points = (np.arange(k)[None, :] + u[:, None]) / k  # (m, K) in [0, 1)
    flat = np.searchsorted((cdf + shift).ravel(), (points + shift).ravel(), side="right")
    return np.minimum(flat.reshape(m, k) - shift * k, k - 1)


def _filter(x: np.ndarray, source: Source, particles: int, rng: np.random.Generator,
            positions: bool) -> np.ndarray:
    """One chunk of sequences through the particle filter: ``(c, d)`` or ``(c, T, d)``."""
    comps = source.prior.components
    d, r = source.vocab_size, source.max_parent
    c, T = x.shape
    K = particles
    rows = [_rows(x, comp.parents, r, d) for comp in comps]  # each (c, T+1-r)
    sizes = [d ** len(comp.parents) for comp in comps]  # R_j rows per component
    counts = [np.zeros((c, K, R, d), dtype=np.int32) for R in sizes]  # n_j per particle
    totals = [np.zeros((c, K, R), dtype=np.int32) for R in sizes]  # n_j(row) = Σ_e n_j(row, e)
    # flat row of (sequence, particle, component row): one-array gathers and scatters
    base = [(np.arange(c)[:, None] * K + np.arange(K)[None, :]) * R for R in sizes]  # (c, K)
    logw = np.zeros((c, K))  # (c, K) log importance weights
    out = np.full((c, T, d), np.nan) if positions else None  # (c, T, d)

    def mixed(step: int) -> np.ndarray:
        """``Σ_j w_j`` (add-α predictive of component j) at the query ``r+1+step``, ``(c, K, d)``."""
        total = 0.0
        for comp, n_j, s_j, b, u in zip(comps, counts, totals, base, rows):
            at = b + u[:, step, None]  # (c, K)
            total = total + comp.weight * (n_j.reshape(-1, d)[at] + comp.alpha) / (
                s_j.reshape(-1)[at][..., None] + d * comp.alpha)
        return total

    for step in range(T - r):  # the transition x_t, t = r+1+step (column t-1)
        if positions:  # position l = t-1 predicts x_t before seeing it
            out[:, r + step - 1] = np.einsum("ck,cke->ce", _normalised_weights(logw), mixed(step))
        y = x[:, r + step, None]  # (c, 1)
        at = [b + u[:, step, None] for b, u in zip(base, rows)]  # J × (c, K)
        like = np.stack([comp.weight * (n_j.reshape(-1)[a * d + y] + comp.alpha)
                         / (s_j.reshape(-1)[a] + d * comp.alpha)
                         for comp, n_j, s_j, a in zip(comps, counts, totals, at)],
                        axis=-1)  # (c, K, J): w_j times component j's probability of x_t
        total = like.sum(axis=-1)  # (c, K): p(x_t | particle)
        logw += np.log(total)
        u_resample, u_label = rng.random(c), rng.random((c, K))  # drawn every step
        w = _normalised_weights(logw)  # (c, K)
        low = np.flatnonzero(1.0 / np.sum(w * w, axis=1) < RESAMPLE_ESS_FRACTION * K)
        if low.size:
            idx = _resample(w[low], u_resample[low])  # (m, K)
            for a in counts + totals:
                a[low] = a[low[:, None], idx]
            like[low], total[low] = like[low[:, None], idx], total[low[:, None], idx]
            logw[low] = 0.0
        cum = np.cumsum(like, axis=-1) / total[..., None]  # (c, K, J)
        label = np.sum(cum[..., :-1] <= u_label[..., None], axis=-1)  # (c, K) in 0..J-1
        for j, (n_j, s_j, a) in enumerate(zip(counts, totals, at)):
            hit = (label == j).astype(np.int32)  # (c, K); every (sequence, particle) once
            n_j.reshape(-1)[a * d + y] += hit
            s_j.reshape(-1)[a] += hit
    last = np.einsum("ck,cke->ce", _normalised_weights(logw), mixed(T - r))  # (c, d)
    if positions:
        out[:, T - 1] = last
        return out
    return last


def mixture_bayes_smc(tokens: Any, source: Source, *, rng: np.random.Generator,
                      particles: int = DEFAULT_PARTICLES, groups: int = 1,
                      positions: bool = False) -> MonteCarloPredictive:
    """Posterior predictive of a mixture prior by sequential importance resampling.

    Each particle carries an assignment of the transitions seen so far to the components, kept
    as per-component count tables. At the transition ``x_t`` a particle is weighted by
    ``p(x_t | its counts) = Σ_j w_j (n_j(z_j, x_t) + α_j)/(n_j(z_j) + dα_j)``, the particles of
    a sequence are resampled (systematic) when their effective sample size falls below
    :data:`RESAMPLE_ESS_FRACTION` of their number, and ``c_t`` is drawn from its posterior
    given the particle; the predictive at a position is the weighted mean of the particles'
    predictives (Rao–Blackwellised: no Dirichlet row is sampled). With one component it is the
    closed form exactly. Conditional on the start tokens (module docstring).

    Args:
        tokens: integer ``(n, T)``, ``T >= r``.
        source: a source with a :class:`theory.sources.priors.Mixture` prior.
        rng: numpy generator (keyword-only, the only randomness). Per chunk of sequences and
            per transition it draws one uniform per sequence, then one per particle; the
            chunks depend only on ``particles``, ``groups`` and the source.
        particles: ``K >= 1`` particles per sequence and group.
        groups: ``G >= 1`` independent filters per sequence; the estimate is their mean and,
            for ``G >= 2``, ``se`` their standard deviation over ``sqrt(G)``.
        positions: every position ``(n, T, d)`` (rows ``l < r`` NaN) instead of ``(n, d)``.

    Returns:
        :class:`MonteCarloPredictive` (``ess`` None).
    """
    x = _tokens(tokens, source, "tokens")
    require(not isinstance(source.prior, (Dirichlet, Fixed)), "source",
            "a source with a Mixture prior", type(source.prior).__name__)
    rng = as_generator(rng, needed_for="the mixture posterior is a Monte Carlo estimate")
    K = as_int(particles, "particles", minimum=1)
    G = as_int(groups, "groups", minimum=1)
    d = source.vocab_size
    n, T = x.shape
    table = sum(d ** (len(c.parents) + 1) + d ** len(c.parents) for c in source.prior.components)
    chunk = max(1, _CHUNK_ENTRIES // (K * table))
    out_entries = n * G * (T if positions else 1) * d
    require_memory(FLOAT_BYTES * (out_entries + min(chunk, n * G) * K * (table + 4 * d)),
                   f"the particle filter of n={n} sequences of T={T} tokens, {K} particles "
                   f"x {G} group(s)", "pass fewer sequences or particles")
    rep = np.repeat(x, G, axis=0)  # (n·G, T): the groups of a sequence are adjacent rows
    parts = [_filter(rep[lo:lo + chunk], source, K, rng, positions)
             for lo in range(0, n * G, chunk)]
    est = np.concatenate(parts).reshape((n, G) + parts[0].shape[1:])  # (n, G, [T,] d)
    se = est.std(axis=1, ddof=1) / math.sqrt(G) if G > 1 else None
    return MonteCarloPredictive(est.mean(axis=1), se)


def bayes_predict_importance(context: Any, source: Source, *, samples: int,
                             rng: np.random.Generator, start: str = "uniform",
                             chunk: int = 4096) -> MonteCarloPredictive:
    """Posterior predictive by importance sampling of kernels from the prior (any prior).

    Draws ``S`` kernels ``π_s`` from the prior (shared by all sequences), weights each by the
    sequence's full likelihood ``μ_s(x_1..x_r) Π_{t=r+1}^{L} π_s(x_t | z_t)``, with
    ``μ_s(x_1..x_r) = d^-r`` for ``start="uniform"`` and the stationary window law for
    ``start="stationary"`` (``burn_in = 0``), and returns ``Σ_s w̄_s π_s(· | z*)``. The standard
    error is the delta-method one of a self-normalised estimate,
    ``sqrt(Σ_s w̄_s² (π_s(e|z*) - p̂(e))²)``, and ``ess = 1 / Σ_s w̄_s²``; both are reliable only
    when ``ess`` is large. The likelihood concentrates as ``L`` grows, so the estimator suits
    short contexts (it checks the other estimators there).

    Args:
        context: integer ``(n, L)``, ``L >= r``.
        source: the source (any prior; a Fixed prior gives the oracle with ``ess = S``).
        samples: ``S >= 1`` kernels.
        rng: numpy generator (keyword-only): the kernels are drawn in chunks of ``chunk``, so
            the estimate depends on ``chunk`` as well as on ``rng``.
        start: the start mode of :mod:`theory.sources.sequences` the context was drawn with.
        chunk: kernels held at once.

    Returns:
        :class:`MonteCarloPredictive` with ``se`` and ``ess``.
    """
    ctx = _tokens(context, source, "context")
    require(isinstance(start, str) and start in START_MODES, "start", f"one of {START_MODES}",
            start)
    S = as_int(samples, "samples", minimum=1)
    chunk = as_int(chunk, "chunk", minimum=1)
    rng = as_generator(rng, needed_for="kernels are drawn from the prior")
    d, parents, r = source.vocab_size, source.parents, source.max_parent
    n, L = ctx.shape
    rows = _rows(ctx, parents, r, d)  # (n, L+1-r) parent contexts of t = r+1..L+1
    cells = rows[:, :-1] * d + ctx[:, r:]  # (n, L-r) flat (z_t, x_t)
    width = d ** (len(parents) + 1)
    counts = np.zeros((n, width))  # (n, d^k·d) transition counts
    np.add.at(counts, (np.arange(n)[:, None], cells), 1.0)
    first = np.zeros(n, dtype=np.int64)
    for t in range(r):  # flat index of the start window (x_1..x_r)
        first = first * d + ctx[:, t]
    require_memory(FLOAT_BYTES * chunk * (n * (d + 2) + 2 * width),
                   f"importance sampling of n={n} sequences in chunks of {chunk} kernels",
                   "pass a smaller chunk")
    top = np.full(n, -np.inf)  # running max of the log weights
    acc = {key: np.zeros((n, d)) for key in ("w", "wf", "w2", "w2f", "w2ff")}
    for lo in range(0, S, chunk):
        kern = sample_kernels(source, min(chunk, S - lo), rng=rng)  # (s,) + (d,)*k + (d,)
        flat = kern.reshape(len(kern), -1, d)  # (s, d^k, d)
        logk = np.log(np.maximum(flat.reshape(len(kern), width), _TINY))  # (s, d^k·d)
        loglik = counts @ logk.T  # (n, s)
        if start == "stationary":
            law = window_law(kern, parents, r + 1).sum(axis=1).reshape(len(kern), d ** r)
            loglik += np.log(np.maximum(law[:, first].T, _TINY))  # (n, s)
        new_top = np.maximum(top, loglik.max(axis=1))  # (n,)
        scale = np.exp(top - new_top)[:, None]  # (n, 1): rescales the running sums
        for key in acc:
            acc[key] *= scale if key in ("w", "wf") else scale * scale
        top = new_top
        w = np.exp(loglik - top[:, None])  # (n, s)
        f = flat[:, rows[:, -1], :].transpose(1, 0, 2)  # (n, s, d): π_s(· | z*_i)
        acc["w"] += w.sum(axis=1)[:, None]
        acc["wf"] += np.einsum("ns,nse->ne", w, f)
        acc["w2"] += (w * w).sum(axis=1)[:, None]
        acc["w2f"] += np.einsum("ns,nse->ne", w * w, f)
        acc["w2ff"] += np.einsum("ns,nse->ne", w * w, f * f)
    probs = acc["wf"] / acc["w"]  # (n, d)
    var = (acc["w2ff"] - 2 * probs * acc["w2f"] + probs ** 2 * acc["w2"]) / acc["w"] ** 2
    ess = (acc["w"][:, 0] ** 2) / acc["w2"][:, 0]  # (n,)
    return MonteCarloPredictive(probs, np.sqrt(np.maximum(var, 0.0)), ess)
