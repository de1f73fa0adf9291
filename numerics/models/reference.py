"""A small, obviously-correct dense implementation of TF(M, H, d, D), for tests and the benchmark.

It builds the copier as a generic transformer layer would: per sequence and head, an
(L+1)×(L+1) causal attention matrix whose logit for query position l and key position j is the
relative-position logit ``w_{h, l-j}`` when ``l-j`` is an offset of the head's window
(``spec.windows``, within ``1..M``) and ``-inf`` otherwise, then ``v_h = softmax(A_h) @ E`` with
``E`` the (L+1)×d embedding (the query position L+1 holds the zero vector), normalised as
``v_h / (||v_h|| + norm_offset)``. Cost O(n·H·L²·d) per step, against O(n·L·H·M·d) for
:class:`numerics.InductionHeadModel`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from numerics.models.inputs import check_tokens, is_token_tensor, shape_or_type
from numerics.models.simplified import InductionHeadModel
from theory.errors import require

__all__ = ["check_context", "dense_forward", "dense_loss"]


def check_context(model: InductionHeadModel, context: torch.Tensor) -> None:
    """Refuse a context the dense constructions cannot read (see their Raises sections)."""
    require(isinstance(model, InductionHeadModel), "model", "a numerics.InductionHeadModel",
            type(model).__name__)
    require(is_token_tensor(context, 2) and min(context.shape) >= 1, "context",
            "an integer tensor of shape (n, L) with n, L >= 1", shape_or_type(context))
    require(context.device == model.w.device, "context device",
            f"the model's device {model.w.device}", context.device)
    check_tokens(context, "context tokens", model.vocab_size)


def dense_forward(model: InductionHeadModel, context: torch.Tensor) -> torch.Tensor:
    """ŷ (n, d) of ``model`` on ``context`` (n, L), computed with dense per-sequence attention.

    Uses the model's parameters ``w``, ``C``, ``a`` (and its fixed one-hot heads, if any), its
    windows and its norm offset, so gradients flow to them exactly as through the vectorised
    forward.

    Raises:
        InductionHeadsError: unless ``context`` is an integer (n, L) tensor on the model's
            device with n, L >= 1 and tokens in ``0..d-1``.
    """
    check_context(model, context)
    context = context.long()
    n, L = context.shape
    H, M = model.w.shape
    dtype, device = model.w.dtype, model.w.device
    emb = F.one_hot(context, model.vocab_size).to(dtype)                 # (n, L, d)
    emb = torch.cat([emb, emb.new_zeros(n, 1, model.vocab_size)], dim=1)  # (n, L+1, d)
    pos = torch.arange(L + 1, device=device)
    offset = pos[:, None] - pos[None, :]                                  # (L+1, L+1) = l - j
    in_range = (offset >= 1) & (offset <= M)                              # (L+1, L+1)
    heads = []
    for h in range(H):
        # The head's window, read at each (l, j) through the offset l - j.
        allowed = in_range & model.window_mask[h][(offset - 1).clamp(0, M - 1)]  # (L+1, L+1)
        if int(model.fixed_offsets[h]) >= 0:
            logits_h = torch.where(offset == int(model.fixed_offsets[h]) + 1, 0.0, -1e4)
            logits_h = logits_h.to(dtype)
        else:
            logits_h = model.w[h][(offset - 1).clamp(0, M - 1)]           # (L+1, L+1)
        scores = logits_h.expand(n, L + 1, L + 1).masked_fill(~allowed, float("-inf"))
        has_key = allowed.any(dim=1)                                      # (L+1,)
        if int(model.fixed_offsets[h]) >= 0:
            has_key = ((offset == int(model.fixed_offsets[h]) + 1) & allowed).any(dim=1)
            scores = scores.masked_fill(~(offset == int(model.fixed_offsets[h]) + 1),
                                        float("-inf"))
        scores = scores.masked_fill(~has_key[:, None], 0.0)               # rows with no key
        att = torch.softmax(scores, dim=-1) * has_key[:, None]            # (n, L+1, L+1)
        v = att @ emb                                                     # (n, L+1, d)
        norm = v.norm(dim=-1, keepdim=True)
        scale = norm.clamp_min(1e-30) if model.norm_offset == 0.0 else norm + model.norm_offset
        heads.append(torch.where(norm > 0, v / scale, torch.zeros_like(v)))
    c_tilde = model.selector_weights()
    sim = torch.zeros(n, L, dtype=dtype, device=device)                   # (n, L)
    for k, s in enumerate(model.sets):
        prod = torch.ones(n, L, dtype=dtype, device=device)
        for h in s:
            vh = heads[h - 1]
            prod = prod * (vh[:, :L] * vh[:, L:]).sum(-1)                 # <v̄_h(L+1), v̄_h(l)>
        sim = sim + c_tilde[k] * prod
    attn = torch.softmax(model.a * sim, dim=-1)                           # (n, L)
    return (attn[:, :, None] * emb[:, :L]).sum(1)                         # (n, d)


def dense_loss(model: InductionHeadModel, tokens: torch.Tensor) -> torch.Tensor:
    """Mean loss of :func:`dense_forward` on sequences (n, L+1), under the model's loss kind."""
    require(is_token_tensor(tokens, 2) and tokens.shape[1] >= 2, "tokens",
            "an integer tensor of shape (n, L+1)", shape_or_type(tokens))
    return model.loss_from_probs(dense_forward(model, tokens[:, :-1]), tokens[:, -1])
