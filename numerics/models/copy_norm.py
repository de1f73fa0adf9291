"""The copier's normalisation, ``v̄ = v / (||v|| + ε)``, as the input forms of TF apply it.

No input form builds ``v̄_h``: each computes ``<v_h(L+1), v_h(l)>`` and the squared norms
``||v_h(l)||²`` (quadratic forms, window sums or pattern tables), so the normalised inner product
is ``<v̄_a, v̄_b> = <v_a, v_b> / ((||v_a|| + ε)(||v_b|| + ε))``. With ``ε = 0`` (docs/theory.md §2)
that is ``<v_a, v_b> / sqrt(||v_a||² ||v_b||²)``; the authors' code adds ``ε = 1e-7`` to the norm
(docs/theory.md §4). A copy that is 0 (a head with no valid offset) gives 0 either way.
"""

from __future__ import annotations

import torch

__all__ = ["COSINE_FLOOR", "copy_cosine"]

COSINE_FLOOR = 1e-30
"""Floor on ``||v_a||² ||v_b||²`` at ``ε = 0``: a product of two copies that are not 0 is at
least ``1/d²`` (a copy's entries sum to 1), so the floor only turns a 0/0 into 0."""


def copy_cosine(inner: torch.Tensor, sq_a: torch.Tensor, sq_b: torch.Tensor,
                norm_offset: float = 0.0) -> torch.Tensor:
    """``<v̄_a, v̄_b>`` from ``<v_a, v_b>`` and ``||v_a||²``, ``||v_b||²`` (broadcast together).

    Args:
        inner: ``<v_a, v_b>``.
        sq_a: ``||v_a||²``.
        sq_b: ``||v_b||²``.
        norm_offset: ``ε >= 0``. At ``ε > 0`` each norm is the square root of
            ``max(||v||², tiny)`` (the dtype's smallest normal number): a copy that is not 0 has
            ``||v||² >= 1/d``, so only a zero copy changes, and its gradient stays 0, not NaN.

    Returns:
        The normalised inner products, the broadcast shape.
    """
    if norm_offset == 0.0:
        return inner * torch.rsqrt((sq_a * sq_b).clamp_min(COSINE_FLOOR))
    tiny = torch.finfo(inner.dtype).tiny
    norm_a = sq_a.clamp_min(tiny).sqrt() + norm_offset
    norm_b = sq_b.clamp_min(tiny).sqrt() + norm_offset
    return inner / (norm_a * norm_b)
