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
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from numerics.models.inputs import is_token_tensor, shape_or_type
from numerics.models.reference import check_context
from numerics.models.simplified import InductionHeadModel
from theory.errors import require

__all__ = ["baseline_attention", "baseline_forward", "baseline_loss"]


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
