"""Kernels drawn from a source's prior (numpy), and the prior's mean kernel.

A kernel for parents ``P = (p_1 < ... < p_k)`` over ``[d]`` is an array of shape
``(d,)*k + (d,)``: axis ``j`` is the token at offset ``p_{j+1}``, the last axis the next token.
Both functions refuse, before allocating, a batch whose memory estimate
(:func:`theory.sizes.kernel_sampling_bytes`) exceeds the limit of :mod:`theory.sizes`.
"""

from __future__ import annotations

import numpy as np

from theory.errors import require
from theory.sizes import kernel_bytes, kernel_sampling_bytes, require_memory
from theory.sources.priors import Dirichlet, Fixed
from theory.sources.spec import Source
from theory.validation import as_generator, as_int

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
    # In-place ufuncs (same values as the plain expressions): two batch-sized arrays at a time.
    log_g = rng.standard_gamma(alpha + 1.0, size=shape + (d,))  # shape + (d,)
    np.log(log_g, out=log_g)
    u = rng.random(size=shape + (d,))  # shape + (d,)
    np.negative(u, out=u)
    np.log1p(u, out=u)  # log(U), U = 1 - uniform in (0, 1]
    u /= alpha
    log_g += u
    del u
    log_g -= log_g.max(axis=-1, keepdims=True)
    np.exp(log_g, out=log_g)
    log_g /= log_g.sum(axis=-1, keepdims=True)
    return log_g


def sample_kernels(source: Source, n: int, *, rng: np.random.Generator | None = None
                   ) -> np.ndarray:
    """Draw ``n`` kernels i.i.d. from the source's prior.

    Args:
        source: the source spec.
        n: number of kernels, >= 1.
        rng: numpy generator (keyword-only; the only randomness used). A Fixed prior is
            deterministic and needs none; Dirichlet and mixture priors require one.

    Returns:
        float64 array of shape ``(n,) + (d,)*k + (d,)``; rows sum to 1.

    Raises:
        InductionHeadsError: on a bad ``source`` or ``n``, a missing ``rng`` for a random prior,
            or a batch over the memory limit.
    """
    require(isinstance(source, Source), "source", "a theory.sources.spec.Source", type(source).__name__)
    n = as_int(n, "n", minimum=1)
    d, parents = source.vocab_size, source.parents
    k = len(parents)
    prior = source.prior
    fixed = isinstance(prior, Fixed)
    require_memory(kernel_bytes(n, d, k) if fixed else kernel_sampling_bytes(n, d, k),
                   f"{n} kernel(s) of d={d}, {k} parent(s) ({d ** (k + 1)} entries each)",
                   "draw fewer kernels")
    if fixed:
        return np.broadcast_to(prior.kernel, (n,) + prior.kernel.shape).copy()
    rng = as_generator(rng, needed_for=f"a {type(prior).__name__} prior draws random kernels")
    if isinstance(prior, Dirichlet):
        return _dirichlet_rows(rng, prior.alpha, (n,) + (d,) * k, d)
    # A Mixture prior: the weighted sum of its components' kernels, broadcast to all parents.
    out = np.zeros((n,) + (d,) * (k + 1))
    for comp in prior.components:
        rows = _dirichlet_rows(rng, comp.alpha, (n,) + (d,) * len(comp.parents), d)
        rows *= comp.weight  # on the component's own axes: no batch-sized temporary
        out += expand_component(rows, comp.parents, parents)
    return out


def mean_kernel(source: Source) -> np.ndarray:
    """The prior mean of the kernel, shape ``(d,)*k + (d,)``.

    Uniform rows for a Dirichlet prior (and for a mixture of Dirichlet components); the kernel
    itself for a Fixed prior.
    """
    require(isinstance(source, Source), "source", "a theory.sources.spec.Source", type(source).__name__)
    d, k = source.vocab_size, source.order
    if isinstance(source.prior, Fixed):
        return np.array(source.prior.kernel)
    require_memory(kernel_bytes(1, d, k), f"the mean kernel of d={d}, {k} parent(s)",
                   "use a smaller d or fewer parents")
    return np.full((d,) * (k + 1), 1.0 / d)


