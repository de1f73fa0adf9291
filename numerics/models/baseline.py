"""The benchmark's fair baseline: TF(M, H, d, D) built the way the paper's original code builds it.

The original simplified model forms, per head h, one masked (L+1)×(L+1) attention matrix ``A_h``
shared by every sequence (relative-position logit ``w_{h,i}`` on the i-th sub-diagonal for
``i = 1..M``, ``-inf`` elsewhere, softmax over each row), applies it to the whole batch of one-hot
sequences by a single batched matmul ``v_h = A_h @ X̃`` (X̃ the (n, L+1, d) embedding with a zero
query row), normalises ``v_h``, and lets the query's per-head inner products with every key pass
through the selector's head-set products and the classifier's softmax over positions.

That is the fair baseline for :class:`numerics.InductionHeadModel`: it is the same model (same
parameters ``w``, ``C``, ``a`` and fixed heads, same ŷ and loss) in the construction the paper
times, at cost O(H·L²·n·d) per step in a few large batched kernels, with no per-sequence
attention matrices. :func:`numerics.models.reference.dense_forward` instead expands the masked
logits to (n, L+1, L+1) per head and takes n·(L+1) softmaxes, which is slower than the original
code and so overstates the vectorised model's speed-up.

The full model's copier (docs/theory.md §7) has its fair baseline here too,
:func:`dense_head_similarity`: per head one masked (L+1)×(L+1) logit matrix (the position logit of
offset i on the i-th sub-diagonal inside the head's window, ``-inf`` elsewhere) plus the content
term ``X̃ A_h X̃ᵀ``, a softmax over each row, the product with X̃ and the values, as the original
full model builds it, batched over sequences and heads in one (n, H, L+1, L+1) tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from numerics.models.full_copier import FullCopier, head_similarity_from_values
from numerics.models.inputs import is_token_tensor, shape_or_type
from numerics.models.reference import check_context
from numerics.models.simplified import InductionHeadModel
from theory.errors import require

__all__ = ["baseline_attention", "baseline_forward", "baseline_loss", "dense_head_similarity"]


def baseline_attention(model: InductionHeadModel, length: int) -> torch.Tensor:
    """The copier's attention matrices A (H, L+1, L+1) for sequences of ``length`` = L + 1.

    Row l (query position l = 1..L+1) of ``A_h`` holds σ_h(l, i) at column ``l - i`` for the valid
    offsets ``i`` of the head's window (``model.window_mask``), ``l - i >= 1``; a row with no
    valid offset is zero. Fixed one-hot heads (``model.fixed_offsets``) put weight 1 on their
    offset's sub-diagonal.
    """
    H, M = model.w.shape
    device, dtype = model.w.device, model.w.dtype
    pos = torch.arange(length, device=device)
    offset = pos[:, None] - pos[None, :]                                  # (L+1, L+1) = l - j
    index = torch.where((offset >= 1) & (offset <= M), offset - 1, M)     # (L+1, L+1), M: masked
    mats = []
    for h in range(H):
        fixed = int(model.fixed_offsets[h])
        logits = model.w[h] if fixed < 0 else torch.where(
            torch.arange(M, device=device) == fixed, 0.0, float("-inf")).to(dtype)  # (M,)
        logits = logits.masked_fill(~model.window_mask[h], float("-inf"))  # (M,)
        padded = torch.cat([logits, logits.new_full((1,), float("-inf"))])  # (M+1,)
        scores = padded[index]                                            # (L+1, L+1)
        has_key = torch.isfinite(scores).any(dim=1, keepdim=True)         # (L+1, 1)
        scores = scores.masked_fill(~has_key, 0.0)                        # rows with no key
        mats.append(torch.softmax(scores, dim=-1) * has_key)              # (L+1, L+1)
    return torch.stack(mats)                                              # (H, L+1, L+1)


def _normalised(v: torch.Tensor, norm_offset: float) -> torch.Tensor:
    """``v / (||v|| + ε)`` (0 where ``v = 0``) over the last axis."""
    sq = v.square().sum(-1, keepdim=True)
    if norm_offset == 0.0:
        return v * sq.clamp_min(1e-30).rsqrt()
    return v / (sq.clamp_min(torch.finfo(v.dtype).tiny).sqrt() + norm_offset)


def baseline_forward(model: InductionHeadModel, context: torch.Tensor) -> torch.Tensor:
    """ŷ (n, d) of ``model`` on ``context`` (n, L), by per-head batched matmuls (module docstring).

    Gradients flow to ``model.w``, ``model.C`` and ``model.a`` as through the model's forward.

    Raises:
        InductionHeadsError: unless ``context`` is an integer (n, L) tensor on the model's
            device with n, L >= 1 and tokens in ``0..d-1``.
    """
    check_context(model, context)
    n, L = context.shape
    onehot = F.one_hot(context.long(), model.vocab_size).to(model.w.dtype)  # (n, L, d)
    x_tilde = F.pad(onehot, (0, 0, 0, 1))                                 # (n, L+1, d)
    attention = baseline_attention(model, L + 1)                          # (H, L+1, L+1)
    sims = []
    for h in range(attention.shape[0]):
        v = torch.matmul(attention[h], x_tilde)                           # (n, L+1, d)
        v_bar = _normalised(v, model.norm_offset)                         # (n, L+1, d)
        sims.append((v_bar[:, :L] * v_bar[:, L:]).sum(-1))               # (n, L)
    # s_l = Σ_S c̃_S Π_{h∈S} <v̄_h(L+1), v̄_h(l)>, a short loop over the |𝒮| sets.
    c_tilde = model.selector_weights()                                    # (|𝒮|,)
    sim = onehot.new_zeros(n, L)                                          # (n, L)
    for k, s in enumerate(model.sets):
        term = c_tilde[k]
        for h in s:
            term = term * sims[h - 1]                                     # (n, L)
        sim = sim + term
    attn = torch.softmax(model.a * sim, dim=-1)                           # (n, L)
    return torch.bmm(attn[:, None, :], onehot).squeeze(1)                 # (n, d)


def baseline_loss(model: InductionHeadModel, tokens: torch.Tensor) -> torch.Tensor:
    """Mean loss of :func:`baseline_forward` on sequences (n, L+1), under the model's loss kind."""
    require(is_token_tensor(tokens, 2) and tokens.shape[1] >= 2, "tokens",
            "an integer tensor of shape (n, L+1)", shape_or_type(tokens))
    return model.loss_from_probs(baseline_forward(model, tokens[:, :-1]), tokens[:, -1])


def dense_head_similarity(context: torch.Tensor, copier: FullCopier) -> torch.Tensor:
    """``k_h(l)`` (n, H, L) of the full copier by dense masked attention (module docstring).

    The same function of ``copier`` as :func:`numerics.models.full_copier.gather_head_similarity`
    (a row with no valid offset copies nothing, so its ``v̄`` is 0), at cost O(n·H·L²·d).

    Args:
        context: (n, L) int64 tokens ``x_1..x_L`` on the copier's device, L > max offset.
        copier: the effective parameters.
    """
    n, L = context.shape
    logits, d = copier.logits, copier.content.shape[-1]
    H, K = logits.shape
    dev, dtype = logits.device, logits.dtype
    onehot = F.one_hot(context.to(dev).long(), d).to(dtype)                 # (n, L, d)
    x_tilde = F.pad(onehot, (0, 0, 0, 1))                                   # (n, L+1, d)
    pos = torch.arange(L + 1, device=dev)
    offset = pos[:, None] - pos[None, :]                                    # (L+1, L+1) = l - j
    index = torch.full_like(offset, K)                                      # K: masked
    for k, i in enumerate(copier.offsets):
        index = torch.where(offset == i, k, index)
    windowed = logits.masked_fill(~copier.mask, float("-inf"))              # (H, K)
    padded = F.pad(windowed, (0, 1), value=float("-inf"))                   # (H, K+1)
    bias = padded[:, index]                                                 # (H, L+1, L+1)
    has_key = torch.isfinite(bias).any(-1)                                  # (H, L+1)
    query = torch.einsum("nld,hde->nhle", x_tilde, copier.content)          # (n, H, L+1, d)
    content = torch.matmul(query, x_tilde.transpose(1, 2)[:, None])         # (n, H, L+1, L+1)
    scores = content + bias                                                 # (n, H, L+1, L+1)
    if bool(has_key.all()):   # the original model's case: offset 0 in every head's window
        attention = torch.softmax(scores, dim=-1)                           # (n, H, L+1, L+1)
    else:                     # rows without a key copy nothing (softmax of -inf only is nan)
        keep = has_key[None, :, :, None]
        attention = torch.softmax(scores.masked_fill(~keep, 0.0), dim=-1) * keep
    copied = torch.matmul(attention, x_tilde[:, None])                      # (n, H, L+1, d)
    return head_similarity_from_values(copier, copied, has_key)             # (n, H, L)
