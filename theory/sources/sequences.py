"""In-context n-gram Markov sequences in numpy (docs/theory.md §1): one kernel per sequence.

Sequence ``i`` draws its structure (:func:`theory.sources.kernels.sample_structures`: the parent
set or chain of a Switching or FiniteMixture prior), its kernel ``π_i`` from the source's prior
given that structure (:func:`theory.sources.kernels.sample_kernels`),
then its first ``r = max(P)`` tokens, then ``x_l ~ π_i(· | x_{l-p_1}, ..., x_{l-p_k})``. Tokens are
stored 0-based in time: ``tokens[:, t-1]`` is ``x_t``. A request whose memory estimate
(:func:`theory.sizes.sequence_bytes`: kernels, tokens, uniforms) exceeds the limit of
:mod:`theory.sizes` is refused before anything is drawn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from theory.errors import require
from theory.sizes import require_memory, sequence_bytes
from theory.sources.kernels import sample_kernels, sample_structures
from theory.sources.spec import Source
from theory.sources.stationary import window_law
from theory.validation import as_generator, as_int

__all__ = ["START_MODES", "sample_sequences_np"]

START_MODES = ("uniform", "stationary")
"""How ``x_1..x_r`` are drawn: i.i.d. uniform on ``[d]``, or from the kernel's stationary r-window
law (which requires every drawn kernel to give a primitive chain)."""


def _start_tokens(kernels: np.ndarray, parents: tuple[int, ...], start: str,
                  rng: np.random.Generator) -> np.ndarray:
    """The first ``r`` tokens of every sequence, int64 ``(n, r)``."""
    n, d, r = kernels.shape[0], kernels.shape[-1], parents[-1]
    if start == "uniform":
        return rng.integers(0, d, size=(n, r), dtype=np.int64)  # (n, r)
    law = window_law(kernels, parents, r + 1).sum(axis=1).reshape(n, d**r)  # (n, d^r)
    cdf = np.cumsum(law, axis=1)  # (n, d^r)
    cdf[:, -1] = np.inf
    u = rng.random(n)  # (n,)
    flat = np.sum(cdf <= u[:, None], axis=1)  # (n,): inverse CDF over r-tuples
    return np.stack(np.unravel_index(flat, (d,) * r), axis=1).astype(np.int64)  # (n, r)


def sample_sequences_np(source: Source, n: int, length: int, *, rng: np.random.Generator,
                        start: str = "uniform", burn_in: int = 0,
                        return_kernels: bool = False, return_structures: bool = False) -> Any:
    """Sample ``n`` sequences ``x_1..x_T`` (``T = length``), each from its own kernel.

    Inverse-CDF sampling, vectorised over sequences; the loop runs over positions (the chain is
    sequential). All uniforms are drawn up front, so the result depends only on ``rng``'s state.
    Draw order: structures (priors with two or more only), kernels, start tokens, then a
    ``(n, burn_in + length - r)`` block of uniforms.

    Args:
        source: the source (d, P, prior).
        n: number of sequences, >= 1.
        length: ``T > r = max(P)`` tokens per sequence (kept after the burn-in).
        rng: numpy generator, the only randomness used.
        start: ``"uniform"`` (the default: ``x_1..x_r`` i.i.d. uniform) or ``"stationary"``.
        burn_in: ``B >= 0`` extra steps run first and dropped: with ``B > 0`` the returned
            ``x_1`` is the chain's token number ``B + 1``.
        return_kernels: also return the kernels.
        return_structures: also return each sequence's structure.

    Returns:
        int64 ``(n, length)``; with ``return_kernels`` and/or ``return_structures`` a tuple
        ``(tokens, kernels, structures)`` holding the requested ones in that order: kernels
        float64 ``(n,) + (d,)*k + (d,)``, structures int64 ``(n,)``.

    Raises:
        InductionHeadsError: on a bad n, length, burn_in, start or rng, or a request over the
            memory limit.
    """
    require(isinstance(source, Source), "source", "a theory.sources.spec.Source", type(source).__name__)
    rng = as_generator(rng, needed_for="start tokens and transitions are drawn at random")
    parents, d = source.parents, source.vocab_size
    r, k = parents[-1], len(parents)
    n = as_int(n, "n", minimum=1)
    length = as_int(length, "length", minimum=r + 1)
    burn_in = as_int(burn_in, "burn_in", minimum=0)
    require(isinstance(start, str) and start in START_MODES, "start", f"one of {START_MODES}",
            start)
    total = burn_in + length
    require_memory(sequence_bytes(n, d, k, r, total, length, stationary_start=start != "uniform"),
                   f"{n} sequence(s) of {total} tokens (d={d}, {k} parent(s), start {start!r})",
                   "draw fewer or shorter sequences")
    structures = sample_structures(source, n, rng=rng)  # (n,)
    kernels = sample_kernels(source, n, rng=rng, structures=structures)  # (n,) + (d,)*k + (d,)
    tokens = np.empty((n, total), dtype=np.int64)  # (n, B + T)
    tokens[:, :r] = _start_tokens(kernels, parents, start, rng)
    u = rng.random((n, total - r))  # (n, B + T - r): one uniform per transition
    cdf = np.cumsum(kernels.reshape(n, d**k, d), axis=-1)  # (n, d^k, d): rows by parent tuple
    cdf[..., -1] = np.inf  # round-off: a row may sum to 1 - 1e-16; the last token takes the rest
    weights = d ** np.arange(k - 1, -1, -1)  # (k,): C-order flat index of (z_1, ..., z_k)
    offsets = np.asarray(parents)  # (k,)
    rows = np.arange(n)
    for t in range(r, total):
        z = tokens[:, t - offsets] @ weights  # (n,): flat parent tuple of x_{t+1}
        tokens[:, t] = np.sum(cdf[rows, z] <= u[:, t - r, None], axis=1)  # (n,)
    out = tokens[:, burn_in:]  # (n, T)
    out = np.ascontiguousarray(out)
    extra = (kernels,) * return_kernels + (structures,) * return_structures
    return (out, *extra) if extra else out
