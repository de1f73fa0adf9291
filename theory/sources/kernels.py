"""Kernels drawn from a source's prior (numpy), and the prior's mean kernel.

A kernel for parents ``P = (p_1 < ... < p_k)`` over ``[d]`` is an array of shape
``(d,)*k + (d,)``: axis ``j`` is the token at offset ``p_{j+1}``, the last axis the next token.
Under a :class:`theory.sources.priors.Switching` or
:class:`theory.sources.priors.FiniteMixture` prior each sequence first draws its *structure*
(:func:`sample_structures`: which parent set, which chain), then its kernel given the structure.
The samplers refuse, before allocating, a batch whose memory estimate
(:func:`theory.sizes.kernel_sampling_bytes`) exceeds the limit of :mod:`theory.sizes`.
"""

from __future__ import annotations

import numpy as np

from theory.errors import require
from theory.sizes import kernel_bytes, kernel_sampling_bytes, require_memory
from theory.sources.priors import (
    Dirichlet,
    FiniteMixture,
    Fixed,
    Switching,
    dirichlet_rows,
    structure_weights,
)
from theory.sources.spec import Source
from theory.validation import as_generator, as_int

__all__ = ["sample_kernels", "sample_structures", "check_structures", "mean_kernel",
           "expand_component", "kernel_atoms"]


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


def sample_structures(source: Source, n: int, *, rng: np.random.Generator | None = None
                      ) -> np.ndarray:
    """Each sequence's structure: the index ``j`` of its parent set or chain, drawn w.p. ``w_j``.

    Args:
        source: the source spec.
        n: number of sequences, >= 1.
        rng: numpy generator (keyword-only); needed only when the prior has two or more
            structures. A prior with one structure draws nothing and gives zeros.

    Returns:
        int64 ``(n,)`` in ``0..J-1``, ``J = len(theory.structure_weights(source.prior))``.
    """
    require(isinstance(source, Source), "source", "a theory.sources.spec.Source",
            type(source).__name__)
    n = as_int(n, "n", minimum=1)
    weights = structure_weights(source.prior)  # (J,)
    if len(weights) == 1:
        return np.zeros(n, dtype=np.int64)
    rng = as_generator(rng, needed_for="each sequence draws its structure at random")
    cdf = np.cumsum(weights)  # (J,)
    cdf[-1] = np.inf  # round-off: the last structure takes the rest
    return np.searchsorted(cdf, rng.random(n), side="right").astype(np.int64)  # (n,)


def check_structures(structures: object, source: Source, n: int | None = None) -> np.ndarray:
    """``structures`` as int64 ``(n,)`` with entries in ``0..J-1`` for ``source``'s prior."""
    count = len(structure_weights(source.prior))
    arr = np.asarray(structures)
    require(arr.ndim == 1 and arr.dtype.kind in "iu", "structures",
            "a 1-D integer array of structure indices", getattr(arr, "shape", structures))
    if n is not None:
        require(arr.shape[0] == n, "structures", f"{n} entries (one per sequence)", arr.shape[0])
    require(arr.size == 0 or (int(arr.min()) >= 0 and int(arr.max()) < count), "structures",
            f"indices in 0..{count - 1}", f"range {int(arr.min())}..{int(arr.max())}")
    return arr.astype(np.int64)


def sample_kernels(source: Source, n: int, *, rng: np.random.Generator | None = None,
                   structures: np.ndarray | None = None) -> np.ndarray:
    """Draw ``n`` kernels i.i.d. from the source's prior.

    Args:
        source: the source spec.
        n: number of kernels, >= 1.
        rng: numpy generator (keyword-only; the only randomness used). A Fixed prior (and a
            finite mixture given its ``structures``) is deterministic and needs none; the other
            priors require one.
        structures: int64 ``(n,)`` structure of each kernel (:func:`sample_structures`), or None
            to draw them first from ``rng``. Ignored by priors with one structure.

    Returns:
        float64 array of shape ``(n,) + (d,)*k + (d,)``; rows sum to 1. A switching kernel on
        ``P_j`` is constant along the axes of the parents outside ``P_j``.

    Raises:
        InductionHeadsError: on a bad ``source``, ``n`` or ``structures``, a missing ``rng`` for
            a random draw, or a batch over the memory limit.
    """
    require(isinstance(source, Source), "source", "a theory.sources.spec.Source", type(source).__name__)
    n = as_int(n, "n", minimum=1)
    d, parents = source.vocab_size, source.parents
    k = len(parents)
    prior = source.prior
    fixed = isinstance(prior, (Fixed, FiniteMixture))
    require_memory(kernel_bytes(n, d, k) if fixed else kernel_sampling_bytes(n, d, k),
                   f"{n} kernel(s) of d={d}, {k} parent(s) ({d ** (k + 1)} entries each)",
                   "draw fewer kernels")
    if isinstance(prior, Fixed):
        return np.broadcast_to(prior.kernel, (n,) + prior.kernel.shape).copy()
    if isinstance(prior, (Switching, FiniteMixture)):
        if structures is None:
            structures = sample_structures(source, n, rng=rng)
        structures = check_structures(structures, source, n)  # (n,)
        if isinstance(prior, FiniteMixture):
            return prior.kernels[structures]  # (n,) + (d,)*k + (d,)
        rng = as_generator(rng, needed_for="a Switching prior draws random kernels")
        return _switching_kernels(prior, structures, parents, d, rng)
    rng = as_generator(rng, needed_for=f"a {type(prior).__name__} prior draws random kernels")
    if isinstance(prior, Dirichlet):
        return dirichlet_rows(rng, prior.alpha, (n,) + (d,) * k, d)
    # A Mixture prior: the weighted sum of its components' kernels, broadcast to all parents.
    out = np.zeros((n,) + (d,) * (k + 1))
    for comp in prior.components:
        rows = dirichlet_rows(rng, comp.alpha, (n,) + (d,) * len(comp.parents), d)
        rows *= comp.weight  # on the component's own axes: no batch-sized temporary
        out += expand_component(rows, comp.parents, parents)
    return out


def _switching_kernels(prior: Switching, structures: np.ndarray, parents: tuple[int, ...],
                       d: int, rng: np.random.Generator) -> np.ndarray:
    """Kernels of the sequences whose structures are given, component by component, in order."""
    n, k = structures.shape[0], len(parents)
    out = np.empty((n,) + (d,) * (k + 1))  # (n,) + (d,)*k + (d,)
    for j, comp in enumerate(prior.components):
        rows_of = np.flatnonzero(structures == j)  # the sequences on P_j
        if rows_of.size == 0:
            continue
        if comp.kernel is not None:
            own = np.broadcast_to(comp.kernel, (rows_of.size,) + comp.kernel.shape)
        else:
            own = dirichlet_rows(rng, comp.alpha, (rows_of.size,) + (d,) * len(comp.parents), d)
        out[rows_of] = expand_component(own, comp.parents, parents)
    return out


def mean_kernel(source: Source) -> np.ndarray:
    """The prior mean of the kernel, shape ``(d,)*k + (d,)``.

    Uniform rows for a Dirichlet prior (and for a mixture of Dirichlet components); the kernel
    itself for a Fixed prior; the weighted mean of the structures' mean kernels for Switching and
    FiniteMixture priors.
    """
    require(isinstance(source, Source), "source", "a theory.sources.spec.Source", type(source).__name__)
    d, k = source.vocab_size, source.order
    prior = source.prior
    if isinstance(prior, Fixed):
        return np.array(prior.kernel)
    if isinstance(prior, FiniteMixture):
        return np.tensordot(np.array(prior.weights), prior.kernels, axes=1)
    if isinstance(prior, Switching):
        require_memory(kernel_bytes(1, d, k), f"the mean kernel of d={d}, {k} parent(s)",
                       "use a smaller d or fewer parents")
        out = np.zeros((d,) * (k + 1))
        for comp in prior.components:
            own = (np.full((d,) * (len(comp.parents) + 1), 1.0 / d) if comp.kernel is None
                   else comp.kernel)
            out += comp.weight * expand_component(own, comp.parents, source.parents)
        return out
    require_memory(kernel_bytes(1, d, k), f"the mean kernel of d={d}, {k} parent(s)",
                   "use a smaller d or fewer parents")
    return np.full((d,) * (k + 1), 1.0 / d)




def kernel_atoms(source: Source) -> tuple[np.ndarray, np.ndarray] | None:
    """The finitely many kernels a prior draws and the probability of each, or None.

    A prior with finitely many kernels turns every expectation over the prior into a weighted
    sum, with no Monte Carlo: a Fixed prior has one kernel; a FiniteMixture its ``N`` chains; a
    Switching prior whose every component has a fixed kernel has ``J`` kernels (each expanded to
    the source's parents, constant along the axes outside its ``P_j``). Dirichlet rows (a
    Dirichlet or Mixture prior, a Switching component with ``alpha``) give a continuum: None.

    Returns:
        ``(kernels, weights)``: float64 ``(N,) + (d,)*k + (d,)`` (a fresh, writable array) and
        float64 ``(N,)`` summing to 1; or None.
    """
    require(isinstance(source, Source), "source", "a theory.sources.spec.Source",
            type(source).__name__)
    prior = source.prior
    if isinstance(prior, Fixed):
        return np.array(prior.kernel)[None], np.ones(1)  # (1,) + (d,)*k + (d,), (1,)
    if isinstance(prior, FiniteMixture):
        return np.array(prior.kernels), structure_weights(prior)  # (N,) + (d,)*k + (d,), (N,)
    if isinstance(prior, Switching) and all(c.kernel is not None for c in prior.components):
        require_memory(kernel_bytes(len(prior.components), source.vocab_size, source.order),
                       f"the {len(prior.components)} component kernels of d="
                       f"{source.vocab_size}, {source.order} parent(s)",
                       "use a smaller d or fewer parents")
        kernels = np.stack([expand_component(c.kernel, c.parents, source.parents)
                            for c in prior.components])  # (J,) + (d,)*k + (d,)
        return kernels, structure_weights(prior)
    return None
