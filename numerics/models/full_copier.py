"""The full model's copier layer as a function of its effective parameters (docs/theory.md §7).

:class:`FullCopier` holds the tensors the copier computes with, whatever parametrisation produced
them (a factorised content term ``Q_h K_hᵀ``, a LayerNorm shared by the heads, a fixed self
logit): :meth:`numerics.FullInductionHeadModel.copier` builds it, differentiably, and the forms
here compute the head similarities from it.

Per head h, position l = 1..L+1 (the query L+1 holds the zero vector) and offset
``i = offsets[k]`` with ``mask[h, k]`` and ``l - i >= 1``:

    logit_h(l, i) = logits[h, k] + e(x_l)ᵀ A_h e(x_{l-i})           (0 content at l = L+1)
    σ_h(l, ·)     = softmax over the head's valid offsets
    v_h(l)        = V_h Σ_i σ_h(l, i) e(x_{l-i})
    v̄_h(l)        = LN(v_h(l)) · γ_h + β_h   or   v_h(l) / (||v_h(l)|| + norm_offset)
    k_h(l)        = <v̄_h(L+1), v̄_h(l)>  (through a ReLU with ``relu``),   l = 1..L

and ``v̄_h(l) = 0`` where the head has no valid offset.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

__all__ = ["FullCopier", "gather_head_similarity", "lookup_head_similarity", "normalise",
           "head_similarity_from_values", "max_offset"]


class FullCopier(NamedTuple):
    """The effective parameters of the full model's copier (module docstring).

    Attributes:
        offsets: the K offsets, strictly increasing (0, the position itself, first when present).
        logits: (H, K) position logits, the fixed self logit included where there is one.
        mask: (H, K) bool, whether head h attends to ``offsets[k]`` (its window).
        content: (H, d, d) ``A_h``, the content term's bilinear form.
        values: (H, d, d) ``V_h``, applied to the copied one-hot mixture.
        ln_weight: (H, d) LayerNorm gain per head (rows equal when shared), None for l2.
        ln_bias: (H, d) LayerNorm bias per head, None for l2.
        ln_eps: LayerNorm variance offset.
        norm_offset: added to the norm of the l2 normalisation, ``v / (||v|| + norm_offset)``.
        relu: whether ``k_h(l)`` passes through a ReLU.
    """

    offsets: tuple[int, ...]
    logits: torch.Tensor
    mask: torch.Tensor
    content: torch.Tensor
    values: torch.Tensor
    ln_weight: torch.Tensor | None
    ln_bias: torch.Tensor | None
    ln_eps: float
    norm_offset: float
    relu: bool

    @property
    def normalization(self) -> str:
        """``"layernorm"`` or ``"l2"``."""
        return "l2" if self.ln_weight is None else "layernorm"


def max_offset(copier: FullCopier) -> int:
    """The largest offset of the copier's window, the context length L must exceed."""
    return max(copier.offsets)


def normalise(copier: FullCopier, v: torch.Tensor) -> torch.Tensor:
    """v̄ (..., H, P, d) from v (..., H, P, d): LayerNorm with per-head affine, or the l2 form."""
    if copier.ln_weight is None:
        # the dtype's smallest normal number: a constant below it would be 0 in float32, and the
        # square root's gradient at 0 is infinite (NaN gradients at a zero copy)
        tiny = torch.finfo(v.dtype).tiny
        norm = (v * v).sum(-1, keepdim=True).clamp_min(tiny).sqrt()
        return v / (norm + copier.norm_offset).clamp_min(tiny)
    normed = F.layer_norm(v, (v.shape[-1],), eps=copier.ln_eps)
    return normed * copier.ln_weight[:, None, :] + copier.ln_bias[:, None, :]


def gather_head_similarity(context: torch.Tensor, copier: FullCopier, *,
                           return_attention: bool = False):
    """``k_h(l)`` (n, H, L) of the module docstring, gathering each position's K keys.

    Args:
        context: (n, L) int64 tokens ``x_1..x_L`` on the copier's device, L > max offset.
        copier: the effective parameters.
        return_attention: also return σ (n, H, L+1, K), 0 at masked or invalid offsets.

    Returns:
        ``head_sim`` (n, H, L), or ``(head_sim, sigma)``.
    """
    n, L = context.shape
    logits, d = copier.logits, copier.content.shape[-1]
    dev, dtype = logits.device, logits.dtype
    top = max(copier.offsets)
    onehot = F.one_hot(context.to(dev), d).to(dtype)                        # (n, L, d)
    emb = F.pad(onehot, (0, 0, 0, 1))                                       # (n, L+1, d)
    padded = F.pad(emb, (0, 0, top, 0))                                     # (n, top+L+1, d)
    keys = torch.stack([padded[:, top - i:top - i + L + 1] for i in copier.offsets],
                       dim=2)                                               # (n, L+1, K, d)
    pos = torch.arange(1, L + 2, device=dev)
    offsets = torch.tensor(copier.offsets, device=dev)
    valid = (pos[:, None] - offsets[None, :] >= 1)[None] & copier.mask[:, None, :]  # (H, L+1, K)
    query = torch.einsum("nld,hde->nhle", emb, copier.content)              # (n, H, L+1, d)
    content = torch.einsum("nhle,nlke->nhlk", query, keys)                  # (n, H, L+1, K)
    scores = (logits[None, :, None, :] + content).masked_fill(
        ~valid[None], torch.finfo(dtype).min)
    sigma = torch.softmax(scores, dim=-1) * valid[None]                     # (n, H, L+1, K)
    copied = torch.einsum("nhlk,nlkd->nhld", sigma, keys)                   # (n, H, L+1, d)
    head_sim = head_similarity_from_values(copier, copied, valid.any(-1))   # (n, H, L)
    return (head_sim, sigma) if return_attention else head_sim


def head_similarity_from_values(copier: FullCopier, copied: torch.Tensor,
                                has_key: torch.Tensor) -> torch.Tensor:
    """``k_h(l)`` (n, H, L) from the copied mixtures ``Σ_i σ_h(l, i) e(x_{l-i})`` (n, H, L+1, d).

    ``has_key`` (H, L+1) or (n, H, L+1): whether position l has a valid offset (else v̄ = 0).
    """
    L = copied.shape[2] - 1
    v = torch.einsum("hed,nhld->nhle", copier.values, copied)               # (n, H, L+1, d)
    keep = has_key if has_key.dim() == 3 else has_key[None]                 # (·, H, L+1)
    v_bar = normalise(copier, v) * keep[..., None]                          # (n, H, L+1, d)
    head_sim = (v_bar[:, :, :L] * v_bar[:, :, L:]).sum(-1)                  # (n, H, L)
    return head_sim.clamp_min(0.0) if copier.relu else head_sim


def _normalise_features_first(copier: FullCopier, v: torch.Tensor) -> torch.Tensor:
    """:func:`normalise` with the features on dim 1: v̄ (H, d, N) from v (H, d, N)."""
    if copier.ln_weight is None:
        tiny = torch.finfo(v.dtype).tiny
        norm = (v * v).sum(1, keepdim=True).clamp_min(tiny).sqrt()
        return v / (norm + copier.norm_offset).clamp_min(tiny)
    centred = v - v.mean(1, keepdim=True)                                   # (H, d, N)
    variance = (centred * centred).mean(1, keepdim=True)                    # (H, 1, N)
    normed = centred * torch.rsqrt(variance + copier.ln_eps)
    return normed * copier.ln_weight[:, :, None] + copier.ln_bias[:, :, None]


def lookup_head_similarity(context: torch.Tensor, copier: FullCopier, *,
                           return_attention: bool = False):
    """``k_h(l)`` (n, H, L) as :func:`gather_head_similarity`, by table look-ups on token ids.

    On one-hot tokens the content logit is the entry ``A_h[x_l, x_{l-i}]`` and the copy
    ``Σ_i σ_h(l, i) e(x_{l-i})`` puts each weight into the bin of its key's token: one look-up
    per (head, offset, position) and one scatter into d bins, O(n·L·H·K) plus O(n·L·H·d²) for
    the values, with no one-hot keys (n, L+1, K, d). Token d stands for the zero vector (the
    query's embedding and keys before position 1): its row and column of ``A_h`` are 0 and its
    bin is dropped. The work runs with the offsets and features ahead of the positions,
    (H, K, n, L+1) and (H, d, n·(L+1)), so the softmax over K and the normalisation over d
    are operations across long contiguous rows rather than reductions over a few entries.

    Args and returns as :func:`gather_head_similarity`.
    """
    n, L = context.shape
    logits, d = copier.logits, copier.content.shape[-1]
    H, K = logits.shape
    dev, dtype = logits.device, logits.dtype
    top, N = max_offset(copier), n * (L + 1)
    tokens = F.pad(context.to(dev).long(), (top, 1), value=d)              # (n, top+L+1)
    queries = tokens[:, top:]                                               # (n, L+1)
    keys = torch.stack([tokens[:, top - i:top - i + L + 1] for i in copier.offsets])  # (K, n, L+1)
    pairs = (queries[None] * (d + 1) + keys).reshape(K * N)                 # (K·N,)
    table = F.pad(copier.content, (0, 1, 0, 1)).reshape(H, (d + 1) ** 2)    # (H, (d+1)²)
    content = table.index_select(1, pairs).view(H, K, n, L + 1)             # (H, K, n, L+1)
    pos = torch.arange(1, L + 2, device=dev)
    offsets = torch.tensor(copier.offsets, device=dev)
    valid = ((pos[None, :] - offsets[:, None] >= 1)[None, :, None, :]
             & copier.mask[:, :, None, None])                               # (H, K, 1, L+1)
    scores = (logits[:, :, None, None] + content).masked_fill(~valid, torch.finfo(dtype).min)
    sigma = torch.softmax(scores, dim=1) * valid                            # (H, K, n, L+1)
    index = keys.view(1, K, N).expand(H, K, N)                              # (H, K, N)
    bins = sigma.new_zeros(H, d + 1, N)
    copied = bins.scatter_add(1, index, sigma.view(H, K, N))[:, :d]         # (H, d, N)
    v = torch.bmm(copier.values, copied)                                    # (H, d, N)
    has_key = valid.any(1)[:, None]                                         # (H, 1, 1, L+1)
    v_bar = _normalise_features_first(copier, v).view(H, d, n, L + 1) * has_key
    head_sim = (v_bar[..., :L] * v_bar[..., L:]).sum(1).transpose(0, 1)     # (n, H, L)
    if copier.relu:
        head_sim = head_sim.clamp_min(0.0)
    return (head_sim, sigma.permute(2, 0, 3, 1)) if return_attention else head_sim
