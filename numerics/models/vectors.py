"""TF(M, H, d, D)'s copier as value vectors: memory O(n·L·H·d) for any window M.

The match tensors of :class:`numerics.models.inputs.CopierInputs` hold ``2·n·L·M²`` entries,
which at M = 16, L = 1000, n = 10⁴ is 20 GB; the window patterns of
:mod:`numerics.models.patterns` need ``d^M`` small. This form keeps only the one-hot context and
builds ``v_h(l) = Σ_i σ_h(l, i) e(x_{l-i})`` for l = 1..L+1 by a convolution over positions (no
(L+1)×(L+1) attention and no per-position M×M products), then ``<v̄_h(L+1), v̄_h(l)>``:
O(n·L·H·M·d) arithmetic on O(n·L·H·d) memory per step.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from numerics.models.copy_norm import copy_cosine

__all__ = ["VectorInputs", "prepare_vectors", "vector_head_similarity"]


class VectorInputs(NamedTuple):
    """A fixed sample for the value-vector form: the one-hot context only.

    Attributes:
        onehot: (n, L, d) ``e(x_l)`` for l = 1..L.
    """

    onehot: torch.Tensor


def prepare_vectors(context: torch.Tensor, vocab_size: int, dtype: torch.dtype) -> VectorInputs:
    """The one-hot context (n, L, d) of a checked context (n, L)."""
    return VectorInputs(F.one_hot(context.long(), vocab_size).to(dtype))


def _windowed(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``Σ_i σ_h(l, i) x[:, c, l-i]`` (n, C, H, L) for l = 1..L (zero where ``l - i < 1``).

    Away from the first M positions the weights do not depend on l, so there the sum is one
    grouped ``conv1d`` over positions (C groups of H kernels); positions ``l <= M``, whose
    weights are renormalised over fewer offsets, are M shifted, weighted copies.

    Args:
        x: (n, C, L) channels over positions.
        sigma: (H, L+1, M) σ_h(l, i) for l = 1..L+1.
    """
    n, C, L = x.shape
    H, M = sigma.shape[0], sigma.shape[2]
    # x_j (1-based) sits at index j - 1 + M of the padded channels.
    padded = F.pad(x, (M, 0))                                              # (n, C, L+M)
    kernel = sigma[:, L, :].flip(-1)                                       # (H, M) tap j: σ(M-j)
    # Positions l = M+1..L: tap j reads x_{l-M+j}.
    interior = F.conv1d(padded[:, :, M:L + M - 1], kernel.repeat(C, 1)[:, None, :], groups=C)
    boundary = None
    for i in range(1, M + 1):
        shifted = padded[:, :, None, M - i:2 * M - i]                      # (n, C, 1, M) x_{l-i}
        term = shifted * sigma[None, None, :, :M, i - 1]                   # (n, C, H, M)
        boundary = term if boundary is None else boundary + term
    return torch.cat([boundary, interior.view(n, C, H, L - M)], dim=-1)   # (n, C, H, L)


def _own_windowed(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``Σ_i σ_h(l, i) x[:, h, l-i]`` (n, H, L): channel h windowed by head h alone."""
    L, M = x.shape[2], sigma.shape[2]
    padded = F.pad(x, (M, 0))                                              # (n, H, L+M)
    out = None
    for i in range(1, M + 1):
        term = padded[:, :, M - i:M - i + L] * sigma[None, :, :L, i - 1]   # (n, H, L)
        out = term if out is None else out + term
    return out


def vector_head_similarity(sigma: torch.Tensor, inputs: VectorInputs,
                           norm_offset: float = 0.0) -> torch.Tensor:
    """``<v̄_h(L+1), v̄_h(l)>`` (L, H, n) from the copier's weights at every position.

    ``v_h(l)`` (n, d, H, L) is the one-hot context windowed by ``σ_h``; the inner product with the
    query's ``v_h(L+1)`` is the window sum of the scalar sequence ``<v_h(L+1), e(x_j)>``, so it
    needs no (n, d, H, L) product with the query.

    Args:
        sigma: (H, L+1, M) σ_h(l, i) for l = 1..L+1 (zero at invalid offsets ``l - i < 1``).
        inputs: the sample's :class:`VectorInputs`.
        norm_offset: ``ε`` of ``v̄ = v / (||v|| + ε)`` (:func:`numerics.models.copy_norm.copy_cosine`).
    """
    onehot = inputs.onehot                                                 # (n, L, d)
    L, M = onehot.shape[1], sigma.shape[2]
    tokens = onehot.transpose(1, 2)                                        # (n, d, L)
    # The query l = L+1 reads x_{L+1-i}, i = 1..M, with the interior weights.
    last = tokens[:, :, L - M:].flip(-1)                                   # (n, d, M)
    query = torch.einsum("ndm,hm->ndh", last, sigma[:, L, :])              # (n, d, H)
    scores = torch.bmm(onehot, query).transpose(1, 2)                      # (n, H, L)
    inner = _own_windowed(scores, sigma)                                   # (n, H, L)
    sq_norm = _windowed(tokens, sigma).square().sum(1)                     # (n, H, L)
    q_norm = query.square().sum(1)                                         # (n, H)
    head_sim = copy_cosine(inner, sq_norm, q_norm[..., None], norm_offset)  # (n, H, L)
    return head_sim.permute(2, 1, 0).contiguous()                          # (L, H, n)
