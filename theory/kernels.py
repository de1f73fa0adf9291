"""Kernels drawn from a source's prior (numpy), and the prior's mean kernel.

A kernel for parents ``P = (p_1 < ... < p_k)`` over ``[d]`` is an array of shape
``(d,)*k + (d,)``: axis ``j`` is the token at offset ``p_{j+1}``, the last axis the next token.
"""

from __future__ import annotations

import numpy as np

from theory.errors import require
from theory.priors import Dirichlet, Fixed, Mixture
from theory.spec import Source

__all__ = ["sample_kernels", "mean_kernel", "expand_component"]


def expand_component(component_kernel: np.ndarray, component_parents: tuple[int, ...],
                     parents: tuple[int, ...]) -> np.ndarray:
    """Broadcast a component kernel over ``P_j ⊆ P`` to the full parent axes of ``P``.

    Args:
        component_kernel: shape ``(..., d,)*k_j + (d,)`` (leading batch axes allowed).
        component_parents: ``P_j``, sorted, a subset of ``parents``.
        parents: ``P``.

    Returns:
        Shape ``(..., d,)*k + (d,)``: constant along the axes of parents outside ``P_j``.
    """
    k, kj = len(parents), len(component_parents)
    d = component_kernel.shape[-1]
    batch = component_kernel.shape[: component_kernel.ndim - kj - 1]
    shape = list(batch) + [1] * k + [d]
    nb = len(batch)
    for p in component_parents:
        shape[nb + parents.index(p)] = d
    # Component axes are in increasing-offset order, as are the full axes: a reshape suffices.
    out = component_kernel.reshape(shape)
    return np.broadcast_to(out, tuple(batch) + (d,) * (k + 1))


def _dirichlet_rows(rng: np.random.Generator, alpha: float, shape: tuple[int, ...], d: int
                    ) -> np.ndarray:
    """Rows i.i.d. Dirichlet(alpha·1_d), shape ``shape + (d,)``; log-space for tiny alpha."""
    # Gamma(alpha) = Gamma(alpha + 1) * U^(1/alpha): stays representable for alpha << 1.
    log_g = np.log(rng.standard_gamma(alpha + 1.0, size=shape + (d,)))
    log_g += np.log1p(-rng.random(size=shape + (d,))) / alpha  # U in (0, 1]
    log_g -= log_g.max(axis=-1, keepdims=True)
    g = np.exp(log_g)
    return g / g.sum(axis=-1, keepdims=True)


def sample_kernels(source: Source, n: int, *, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` kernels i.i.d. from the source's prior.

    Args:
        source: the source spec.
        n: number of kernels, >= 1.
        rng: numpy generator (keyword-only; the only randomness used).

    Returns:
        float64 array of shape ``(n,) + (d,)*k + (d,)``; rows sum to 1.
    """
    require(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 1, "n",
            "an integer >= 1", n)
    d, parents = source.vocab_size, source.parents
    k = len(parents)
    prior = source.prior
    if isinstance(prior, Fixed):
        return np.broadcast_to(prior.kernel, (n,) + prior.kernel.shape).copy()
    if isinstance(prior, Dirichlet):
        return _dirichlet_rows(rng, prior.alpha, (n,) + (d,) * k, d)
    assert isinstance(prior, Mixture)
    out = np.zeros((n,) + (d,) * (k + 1))
    for comp in prior.components:
        rows = _dirichlet_rows(rng, comp.alpha, (n,) + (d,) * len(comp.parents), d)
        out += comp.weight * expand_component(rows, comp.parents, parents)
    return out


def mean_kernel(source: Source) -> np.ndarray:
    """The prior mean of the kernel, shape ``(d,)*k + (d,)``.

    Uniform rows for a Dirichlet prior (and for a mixture of Dirichlet components); the kernel
    itself for a Fixed prior.
    """
    d, k = source.vocab_size, source.order
    if isinstance(source.prior, Fixed):
        return np.array(source.prior.kernel)
    return np.full((d,) * (k + 1), 1.0 / d)


