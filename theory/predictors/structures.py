"""Bayes over per-sequence structures, and the predictor that knows each sequence's structure.

Under a :class:`theory.sources.priors.Switching` or :class:`theory.sources.priors.FiniteMixture`
prior each sequence draws a structure ``j`` (prior ``w_j``, :func:`theory.structure_weights`)
and then its kernel given ``j``. Every structure has a closed-form sequential predictive
``q_j(x_t | x_1..x_{t-1})``:

- rows i.i.d. ``Dirichlet(α_j)`` on ``P_j`` (a switching component with ``alpha``; a Dirichlet
  prior, a one-component mixture): the Dirichlet-multinomial predictive
  ``(N(z_j, e) + α_j) / (N(z_j) + dα_j)``, ``z_j`` the query's tokens at ``P_j``;
- a fixed kernel (a switching component with ``kernel``, a chain of a finite mixture, a Fixed
  prior): its own row ``π_j(· | z_j)``.

As in :mod:`theory.predictors.bayes`, everything is conditional on the start tokens
``x_1..x_r`` with the source's ``r = max(P)`` for every structure, so that the structures'
likelihoods cover the same transitions ``t = r+1..l``. The evidence of ``j`` after position
``l`` is ``log w_j + Σ_{t=r+1}^{l} log q_j(x_t | x_1..x_{t-1})``, the posterior
:func:`structure_posterior` its normalised exponential (log space), and the exact Bayes
predictive

    p(e | x_1..x_l) = Σ_j posterior_j(l) q_j(e | x_1..x_l).

Two computations of the same quantities, checked against each other in
tests/theory/predictors/test_structures.py:

- at the query only (:func:`bayes_predict_structures`), O(n·L) per structure: the evidence of a
  Dirichlet structure is the Gamma-function marginal likelihood of its transition counts,
  ``Σ_z [log Γ(dα) - log Γ(N(z) + dα) + Σ_e (log Γ(N(z,e) + α) - log Γ(α))]``, summed over the
  cells that occur (an empty cell adds 0), so no ``d^k``-sized table is held;
- at every position (:func:`bayes_predict_structures_positions`, :func:`structure_posterior`):
  the running sum of the log sequential predictives, with the per-position predictives of
  :mod:`theory.predictors.positional` (vectorised over sequences and positions; the loop runs
  over structures only, and the mixture over structures is accumulated in log space as they
  come, so no ``J``-fold copy of the predictives is held).

The oracle structure (:func:`oracle_structure_predict`, :func:`oracle_structure_predict_positions`)
is the predictor told each sequence's structure: ``q_{j_i}`` alone. Between Bayes and the oracle
of :mod:`theory.predictors.reference` (which knows the kernel), it isolates what is lost by not
knowing the structure. With one structure it is the Bayes predictive.

Rows follow :mod:`theory.predictors.positional`: row ``l-1`` is after position ``l`` (it
predicts ``x_{l+1}``); predictive rows ``l < r`` are NaN, posterior rows ``l <= r`` are the prior.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
from scipy.special import gammaln

from theory.errors import require
from theory.predictors.positional import bayes_predict_positions, oracle_predict_positions
from theory.predictors.reference import check_context
from theory.sizes import FLOAT_BYTES, require_memory
from theory.sources.kernels import check_structures
from theory.sources.priors import Dirichlet, Fixed, Mixture, Switching, structure_weights
from theory.sources.spec import Source

__all__ = [
    "check_source_tokens",
    "has_structure_predictives",
    "structure_posterior",
    "bayes_predict_structures",
    "bayes_predict_structures_positions",
    "oracle_structure_predict",
    "oracle_structure_predict_positions",
]

_TINY = np.finfo(np.float64).tiny
"""Floor of a fixed kernel's entries inside ``log``: an impossible transition weighs ``e^-708``
rather than ``-inf``, so a sequence no structure explains still gets a finite posterior."""

_POSITION_ARRAYS = 6
"""``(n, T, d)`` float arrays the per-position pass holds at once: a structure's predictive,
the running mixture and the count arrays of :func:`theory.predictors.positional.match_counts`."""

_QUERY_ARRAYS = 8
"""``(n, L)`` int64 arrays the query pass holds at once: parent rows, tokens, sequence indices,
cell keys and the sorted copies ``np.unique`` makes of them."""


class _Structure(NamedTuple):
    """One structure's predictive: Dirichlet rows (``alpha``) or a fixed kernel on ``parents``."""

    parents: tuple[int, ...]
    alpha: float | None
    kernel: np.ndarray | None


def check_source_tokens(tokens: Any, source: Source, what: str) -> np.ndarray:
    """``tokens`` as int64 ``(n, T)`` over the source's vocabulary with ``T >= r = max(P)``."""
    require(isinstance(source, Source), "source", "a theory.sources.spec.Source",
            type(source).__name__)
    x = check_context(tokens, source.vocab_size)
    require(x.shape[1] >= source.max_parent, what,
            f"at least r = max(P) = {source.max_parent} tokens per sequence (the query's "
            "parent context)", x.shape)
    return x


def has_structure_predictives(source: Source) -> bool:
    """Whether every structure of the source's prior has a closed-form predictive: all priors
    but a :class:`theory.sources.priors.Mixture` of two or more components (a blend within every
    sequence, whose predictive is a Monte Carlo estimate)."""
    require(isinstance(source, Source), "source", "a theory.sources.spec.Source",
            type(source).__name__)
    return not (isinstance(source.prior, Mixture) and len(source.prior.components) > 1)


def _structures(source: Source) -> tuple[_Structure, ...]:
    prior, parents = source.prior, source.parents
    require(has_structure_predictives(source), "source",
            "a prior whose structures have closed-form predictives (Dirichlet, Fixed, Switching, "
            "FiniteMixture or a one-component Mixture; a blended Mixture's predictive is "
            "theory.predictors.bayes.mixture_bayes_smc)", type(prior).__name__)
    if isinstance(prior, Dirichlet):
        return (_Structure(parents, prior.alpha, None),)
    if isinstance(prior, Fixed):
        return (_Structure(parents, None, prior.kernel),)
    if isinstance(prior, Mixture):
        comp = prior.components[0]
        return (_Structure(comp.parents, comp.alpha, None),)
    if isinstance(prior, Switching):
        return tuple(_Structure(c.parents, c.alpha, c.kernel) for c in prior.components)
    return tuple(_Structure(parents, None, kernel) for kernel in prior.kernels)


def _require_fits(n: int, width: int, d: int, count: int, what: str, *, positions: bool
                  ) -> None:
    """Refuse, before allocating, ``count`` structures over ``n`` sequences of ``width`` tokens
    (at every position, or at the query only)."""
    per_token = _POSITION_ARRAYS * d + count + 2 if positions else _QUERY_ARRAYS
    require_memory(FLOAT_BYTES * (n * width * per_token + n * count * (d + 1)),
                   f"{what} of n={n} sequences of T={width} tokens over d={d}, {count} "
                   "structure(s)", "pass fewer or shorter sequences")


# ---------------------------------------------------------------------------- the query only

def _rows(x: np.ndarray, parents: tuple[int, ...], r: int, d: int) -> np.ndarray:
    """Flat row index of ``(x_{t-p})_{p∈parents}`` for ``t = r+1..L+1``: int64 ``(n, L+1-r)``."""
    t = np.arange(r + 1, x.shape[1] + 2)  # (L+1-r,) 1-based positions
    out = np.zeros((x.shape[0], t.size), dtype=np.int64)
    for p in parents:  # x_{t-p} is column t-p-1
        out = out * d + x[:, t - p - 1]
    return out


def _query(x: np.ndarray, structure: _Structure, r: int, d: int, evidence: bool
           ) -> tuple[np.ndarray, np.ndarray | None]:
    """A structure's predictive of ``x_{L+1}`` ``(n, d)`` and, with ``evidence``, its log
    marginal likelihood of the transitions ``t = r+1..L`` ``(n,)``."""
    n = x.shape[0]
    rows = _rows(x, structure.parents, r, d)  # (n, L+1-r)
    seen, query, ys = rows[:, :-1], rows[:, -1], x[:, r:]  # (n, L-r), (n,), (n, L-r)
    seq = np.broadcast_to(np.arange(n)[:, None], seen.shape)  # (n, L-r)
    if structure.kernel is not None:
        table = structure.kernel.reshape(-1, d)  # (d^k_j, d)
        pred = table[query]  # (n, d)
        if not evidence:
            return pred, None
        return pred, np.log(np.maximum(table[seen, ys], _TINY)).sum(axis=1)
    a = structure.alpha
    hit = (seen == query[:, None]).ravel()  # transitions whose row is the query's
    counts = np.bincount((seq * d + ys).ravel()[hit], minlength=n * d).reshape(n, d)
    pred = (counts + a) / (counts.sum(axis=1, keepdims=True) + d * a)  # (n, d)
    if not evidence:
        return pred, None
    width = d ** len(structure.parents)
    cells, cell_counts = np.unique((seq * width + seen) * d + ys, return_counts=True)
    occupied, row_counts = np.unique(seq * width + seen, return_counts=True)
    logm = np.bincount(cells // (width * d), minlength=n,
                       weights=gammaln(cell_counts + a) - gammaln(a))
    logm -= np.bincount(occupied // width, minlength=n,
                        weights=gammaln(row_counts + d * a) - gammaln(d * a))
    return pred, logm  # (n, d), (n,)


def bayes_predict_structures(context: Any, source: Source) -> np.ndarray:
    """The exact posterior predictive of ``x_{L+1}`` over the structures (module docstring).

    Args:
        context: integer ``(n, L)``, ``L >= r``.
        source: a source whose prior has closed-form structure predictives
            (:func:`has_structure_predictives`).

    Returns:
        float64 ``(n, d)``; rows sum to 1.
    """
    ctx = check_source_tokens(context, source, "context")
    structures = _structures(source)
    d, r = source.vocab_size, source.max_parent
    n, L = ctx.shape
    _require_fits(n, L, d, len(structures), "the structure posterior at the query",
                  positions=False)
    log_w = np.log(structure_weights(source.prior))  # (J,)
    parts = [_query(ctx, s, r, d, evidence=len(structures) > 1) for s in structures]
    if len(parts) == 1:
        return parts[0][0]
    log_joint = np.stack([lw + logm for lw, (_, logm) in zip(log_w, parts)], axis=1)  # (n, J)
    post = np.exp(log_joint - log_joint.max(axis=1, keepdims=True))  # (n, J)
    post /= post.sum(axis=1, keepdims=True)
    return np.einsum("nj,jne->ne", post, np.stack([pred for pred, _ in parts]))


# ----------------------------------------------------------------------- at every position

def _positions(x: np.ndarray, structure: _Structure, r: int, d: int) -> np.ndarray:
    """A structure's predictive at every position ``(n, T, d)`` counted over ``t >= r+1``;
    rows ``l < r`` NaN."""
    n, T = x.shape
    out = np.full((n, T, d), np.nan)  # (n, T, d)
    if structure.kernel is not None:
        kernels = np.broadcast_to(structure.kernel, (n,) + structure.kernel.shape)
        out[:, r - 1:] = oracle_predict_positions(x, structure.parents, kernels)[:, r - 1:]
        return out
    shift = r - structure.parents[-1]  # drop the start tokens before P_j's first transition
    out[:, shift:] = bayes_predict_positions(x[:, shift:], structure.parents, structure.alpha,
                                             vocab_size=d)
    return out


def _log_evidence(pred: np.ndarray, x: np.ndarray, r: int) -> np.ndarray:
    """``Σ_{t=r+1}^{l} log q(x_t | x_<t)`` after every position ``l``, float64 ``(n, T)``."""
    n, T = x.shape
    step = np.take_along_axis(pred[:, :-1], x[:, 1:, None], axis=2)[..., 0]  # (n, T-1)
    logs = np.zeros((n, T))  # (n, T): column l-1 is after position l
    logs[:, r:] = np.log(np.maximum(step[:, r - 1:], _TINY))  # x_(l+1) from row l-1, l >= r
    return np.cumsum(logs, axis=1)


def _position_pass(x: np.ndarray, source: Source) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per structure: its log prior plus evidence ``(n, T)`` and its predictive ``(n, T, d)``."""
    structures = _structures(source)
    d, r = source.vocab_size, source.max_parent
    n, T = x.shape
    _require_fits(n, T, d, len(structures), "the structure posterior at every position",
                  positions=True)
    for log_w, structure in zip(np.log(structure_weights(source.prior)), structures):
        pred = _positions(x, structure, r, d)  # (n, T, d)
        yield log_w + _log_evidence(pred, x, r), pred


def structure_posterior(tokens: Any, source: Source) -> np.ndarray:
    """The posterior over each sequence's structure after every position.

    Args:
        tokens: integer ``(n, T)``, ``T >= r``.
        source: the source (a prior with one structure gives a posterior of 1; one with two or
            more needs closed-form structure predictives, :func:`has_structure_predictives`).

    Returns:
        float64 ``(n, T, J)``: entry ``[i, l-1, j]`` is ``p(j | x_1..x_l)`` given the
        transitions ``t = r+1..l`` with prior :func:`theory.structure_weights`; rows sum to 1,
        and rows ``l <= r`` (no transition seen) are the prior.
    """
    x = check_source_tokens(tokens, source, "tokens")
    n, T = x.shape
    if len(structure_weights(source.prior)) == 1:
        return np.ones((n, T, 1))
    log_joint = np.stack([lj for lj, _ in _position_pass(x, source)], axis=-1)  # (n, T, J)
    post = np.exp(log_joint - log_joint.max(axis=-1, keepdims=True))
    return post / post.sum(axis=-1, keepdims=True)


def bayes_predict_structures_positions(tokens: Any, source: Source) -> np.ndarray:
    """:func:`bayes_predict_structures` at every position: ``(n, T)`` → float64 ``(n, T, d)``.

    Row ``l-1`` is the predictive of ``x_{l+1}`` from ``x_1..x_l``; rows ``l < r`` are NaN.
    """
    x = check_source_tokens(tokens, source, "tokens")
    n, T = x.shape
    top = np.full((n, T), -np.inf)  # running max of the log joints
    total = np.zeros((n, T))  # Σ_j exp(log joint_j - top)
    mixed = np.zeros((n, T, source.vocab_size))  # Σ_j exp(log joint_j - top) q_j
    for log_joint, pred in _position_pass(x, source):
        new_top = np.maximum(top, log_joint)  # (n, T)
        scale = np.exp(top - new_top)  # (n, T): rescales the sums so far (0 at the start)
        weight = np.exp(log_joint - new_top)  # (n, T)
        total = total * scale + weight
        mixed = mixed * scale[..., None] + weight[..., None] * pred
        top = new_top
    return mixed / total[..., None]  # rows l < r stay NaN


# ----------------------------------------------------------------------- the oracle structure

def _oracle_structure(x: np.ndarray, source: Source, structures: Any, positions: bool
                      ) -> np.ndarray:
    n, T = x.shape
    labels = check_structures(structures, source, n)  # (n,)
    models = _structures(source)
    d, r = source.vocab_size, source.max_parent
    _require_fits(n, T, d, 1, "the oracle structure", positions=positions)
    out = np.full((n, T, d) if positions else (n, d), np.nan)
    for j, structure in enumerate(models):
        own = np.flatnonzero(labels == j)  # the sequences of structure j
        if own.size == 0:
            continue
        out[own] = (_positions(x[own], structure, r, d) if positions
                    else _query(x[own], structure, r, d, evidence=False)[0])
    return out


def oracle_structure_predict(context: Any, source: Source, structures: Any) -> np.ndarray:
    """The predictor told each sequence's structure: ``q_{j_i}(· | x_1..x_L)`` (module docstring).

    Args:
        context: integer ``(n, L)``, ``L >= r``.
        source: a source with closed-form structure predictives
            (:func:`has_structure_predictives`).
        structures: int ``(n,)``, each sequence's structure
            (:func:`theory.sample_structures`, ``sample_sequences_np(..., return_structures=True)``).

    Returns:
        float64 ``(n, d)``: the Dirichlet-multinomial predictive on the sequence's own ``P_j``,
        or its fixed kernel's row (a finite mixture's chain); rows sum to 1.
    """
    ctx = check_source_tokens(context, source, "context")
    return _oracle_structure(ctx, source, structures, positions=False)


def oracle_structure_predict_positions(tokens: Any, source: Source, structures: Any
                                       ) -> np.ndarray:
    """:func:`oracle_structure_predict` at every position: ``(n, T)`` → float64 ``(n, T, d)``;
    rows ``l < r`` NaN."""
    x = check_source_tokens(tokens, source, "tokens")
    return _oracle_structure(x, source, structures, positions=True)
