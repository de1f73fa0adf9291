"""The full variant's options (numerics/models/full_options.py): each one's effect, the effective
copier they build, and the option dicts checkpoints carry."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from numerics import OFFICIAL_FULL_OPTIONS, FullInductionHeadModel
from numerics.experiments import official_full_spec
from numerics.models.full_options import FULL_OPTION_DEFAULTS, first_move_ingredients
from theory import (
    LIBRARY_FULL_INGREDIENTS,
    OFFICIAL_FULL_INGREDIENTS,
    PAPER_MODEL,
    InductionHeadsError,
    ModelSpec,
)

EXACT_ATOL = 1e-12
"""Identities compared in float64: only round-off remains."""

BAND = ModelSpec.band(3, 2, w_plus=2.0, w_minus=-0.3)
"""The authors' windows: head h attends to h..h+2, M = 5."""


def _tokens(n: int = 4, length: int = 11, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 3, (n, length), generator=torch.Generator().manual_seed(seed))


def _perturb(model: FullInductionHeadModel, seed: int) -> None:
    """Every parameter and buffer of the copier moved at random (the mask stays)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.is_floating_point():
                t.add_(torch.randn(t.shape, generator=gen, dtype=t.dtype) * 0.5)


def _loop_similarity(model: FullInductionHeadModel, context: torch.Tensor) -> torch.Tensor:
    """k_h(l) (n, H, L) by loops over the copier's effective tensors (the head's window only)."""
    cop = model.copier()
    n, L = context.shape
    d, H = model.vocab_size, model.spec.heads
    out = torch.zeros(n, H, L, dtype=torch.float64)
    for b in range(n):
        emb = [F.one_hot(context[b, p], d).double() for p in range(L)] + [torch.zeros(d).double()]
        for h in range(H):
            bars = []
            for pos in range(L + 1):                                  # 0-based position
                ks = [k for k, i in enumerate(cop.offsets) if cop.mask[h, k] and pos - i >= 0]
                if not ks:                                            # no valid offset: v̄ = 0
                    bars.append(torch.zeros(d, dtype=torch.float64))
                    continue
                logits = torch.stack([cop.logits[h, k] + emb[pos] @ cop.content[h]
                                      @ emb[pos - cop.offsets[k]] for k in ks])
                sigma = torch.softmax(logits, 0)
                v = cop.values[h] @ sum(s * emb[pos - cop.offsets[k]] for s, k in zip(sigma, ks))
                if cop.ln_weight is None:
                    bars.append(v / (v.norm() + cop.norm_offset))
                else:
                    z = (v - v.mean()) / torch.sqrt(v.var(unbiased=False) + cop.ln_eps)
                    bars.append(cop.ln_weight[h] * z + cop.ln_bias[h])
            for pos in range(L):
                k = bars[L] @ bars[pos]
                out[b, h, pos] = k.clamp_min(0.0) if cop.relu else k
    return out


# ------------------------------------------------------------------------- the effective copier
@pytest.mark.parametrize("options", [
    OFFICIAL_FULL_OPTIONS,
    {"self_logit": -0.7, "content": "factorised", "content_init": 0.3},
    {"normalization": "l2", "norm_offset": 0.25, "value_init": 2.0, "self_attention": False},
    {"shared_layernorm": True, "train_content": False, "train_values": False,
     "relu_similarity": True},
])
def test_forward_similarity_equals_loops_over_the_heads_windows(options):
    model = FullInductionHeadModel(BAND, 3, dtype=torch.float64, **options)
    _perturb(model, 3)
    context = _tokens()
    _, taps = model(context, return_taps=True)
    slow = _loop_similarity(model, context)
    err = (taps["copier.head_similarity"] - slow).abs().max().item()
    assert err < EXACT_ATOL, f"k_h: vectorised vs loops differ by {err:.2e} ({options})"
    sigma = taps["copier.position_attention"]                           # (n, H, L+1, K)
    outside = ~model.window_mask                                        # (H, K)
    assert torch.all(sigma[:, outside[:, None, :].expand(-1, sigma.shape[2], -1)] == 0), (
        "attention outside a head's window")


def test_windows_self_logit_and_shapes():
    model = FullInductionHeadModel(BAND, 3, self_logit=1e-6, dtype=torch.float64)
    assert model.offsets == (0, 1, 2, 3, 4, 5) and model.logit_offsets == (1, 2, 3, 4, 5)
    assert model.w.shape == (3, 5) and "self_logit" not in dict(model.named_parameters())
    expected_mask = [[True, True, True, True, False, False], [True, False, True, True, True, False],
                     [True, False, False, True, True, True]]
    assert model.window_mask.tolist() == expected_mask
    cop = model.copier()
    assert torch.all(cop.logits[:, 0] == 1e-6) and torch.equal(cop.logits[:, 1:], model.w)
    sigma = model.copier_attention(include_self=True)                   # (H, K)
    for h in range(3):
        row = torch.tensor([1e-6] + [2.0 if i == h + 1 else -0.3
                                     for i in range(h + 1, h + 4)], dtype=torch.float64)
        wanted = torch.softmax(row, 0)
        got = sigma[h, [0] + list(range(h + 1, h + 4))]
        assert (got - wanted).abs().max() < EXACT_ATOL, f"head {h + 1}: {got} vs {wanted}"
    assert model.copier_attention().shape == (3, 5)
    assert "window_mask" not in model.state_dict(), "the mask is structure, not state"


def test_factorised_content_is_q_times_k_transposed():
    factorised = FullInductionHeadModel(BAND, 3, content="factorised", dtype=torch.float64)
    _perturb(factorised, 1)
    direct = FullInductionHeadModel(BAND, 3, dtype=torch.float64)
    state = {k: v for k, v in factorised.state_dict().items() if k not in ("Q", "K")}
    state["A"] = torch.einsum("hij,hkj->hik", factorised.Q, factorised.K).detach()
    direct.load_state_dict(state)
    for h in range(3):
        product = factorised.Q[h] @ factorised.K[h].T
        assert torch.allclose(factorised.copier().content[h], product, rtol=0, atol=EXACT_ATOL)
    context = _tokens(seed=2)
    err = (factorised(context) - direct(context)).abs().max().item()
    assert err < EXACT_ATOL, f"Q Kᵀ vs the same A given directly: ŷ differs by {err:.2e}"


def test_initial_values_content_and_shared_layernorm():
    model = FullInductionHeadModel(BAND, 3, dtype=torch.float64, **OFFICIAL_FULL_OPTIONS)
    eye = torch.eye(3, dtype=torch.float64).expand(3, 3, 3)
    assert torch.equal(model.Q.detach(), 0.01 * eye) and torch.equal(model.K.detach(), 0.01 * eye)
    assert torch.equal(model.V.detach(), 0.01 * eye)
    assert model.ln_weight.shape == (3,) and model.ln_bias.shape == (3,)
    cop = model.copier()
    assert cop.ln_weight.shape == (3, 3) and torch.equal(cop.ln_weight[0], cop.ln_weight[2])
    # one shared LayerNorm is a per-head LayerNorm with equal rows: same ŷ and summed gradients
    per_head = FullInductionHeadModel(BAND, 3, dtype=torch.float64,
                                      **{**OFFICIAL_FULL_OPTIONS, "shared_layernorm": False})
    _perturb(model, 4)
    state = dict(model.state_dict())
    state["ln_weight"] = state["ln_weight"].expand(3, 3).clone()
    state["ln_bias"] = state["ln_bias"].expand(3, 3).clone()
    per_head.load_state_dict(state)
    tokens = _tokens(length=12, seed=5)
    err = (model(tokens[:, :-1]) - per_head(tokens[:, :-1])).abs().max().item()
    assert err < EXACT_ATOL, f"shared vs equal per-head LayerNorm: ŷ differs by {err:.2e}"
    g_shared = torch.autograd.grad(model.loss(tokens), model.ln_weight)[0]
    g_rows = torch.autograd.grad(per_head.loss(tokens), per_head.ln_weight)[0].sum(0)
    assert (g_shared - g_rows).abs().max() < EXACT_ATOL, f"{g_shared} vs {g_rows}"


def test_frozen_parts_are_buffers():
    model = FullInductionHeadModel(BAND, 3, content="factorised", train_content=False,
                                   train_values=False)
    params = dict(model.named_parameters())
    assert set(params) == {"w", "ln_weight", "ln_bias", "C", "a"}
    assert {"Q", "K", "V"} <= set(model.state_dict())
    assert [t.shape for t in model.parameter_groups()["w"]] == [(3, 6), (3, 3), (3, 3)]
    tokens = _tokens(length=12)
    model.loss(tokens).backward()
    assert all(p.grad is not None for p in params.values())
    assert not (model.Q.requires_grad or model.V.requires_grad)


def test_at_limit_refuses_offsets_outside_the_window_and_copies_exactly():
    with pytest.raises(InductionHeadsError, match="offsets offset: expected an offset in head "
                                                  r"3's window \(3, 4, 5\), received 2"):
        FullInductionHeadModel.at_limit(BAND, 3, selected_set=(1, 3), a=1.0, offsets={3: 2})
    model = FullInductionHeadModel.at_limit(official_full_spec(), 3, selected_set=(1, 2), a=1.0,
                                            offsets={1: 1, 2: 3}, dtype=torch.float64,
                                            **OFFICIAL_FULL_OPTIONS)
    _, taps = model(_tokens(length=14), return_taps=True)
    sigma = taps["copier.position_attention"][:, :, 5:]                 # positions l > M
    assert torch.all(sigma[:, 0, :, 1] == 1.0) and torch.all(sigma[:, 1, :, 3] == 1.0), (
        "heads 1 and 2 must copy offsets 1 and 3 exactly, the fixed self logit included")


# ------------------------------------------------------------------------------ option dicts
def test_old_option_dicts_fill_in_the_defaults():
    old = {"normalization": "l2", "self_attention": False, "relu_similarity": True,
           "ln_eps": 1e-5}
    assert FullInductionHeadModel.check_options(old) == {**FULL_OPTION_DEFAULTS, **old}
    full = FullInductionHeadModel(PAPER_MODEL, 3, **OFFICIAL_FULL_OPTIONS).constructor_options()
    assert full == OFFICIAL_FULL_OPTIONS and list(full) == list(FULL_OPTION_DEFAULTS)
    assert FullInductionHeadModel.check_options(full) == full


@pytest.mark.parametrize(("options", "fragment"), [
    ({"normalization": "layernorm"}, "model_options: expected a dict with keys"),
    ({**FULL_OPTION_DEFAULTS, "window": 3}, "model_options: expected a dict with keys"),
    ({**FULL_OPTION_DEFAULTS, "content": "low_rank"}, "model_options['content']: expected one of"),
    ({**FULL_OPTION_DEFAULTS, "self_logit": 1}, "model_options['self_logit']: expected None or a "
     "finite float, received 1"),
    ({**FULL_OPTION_DEFAULTS, "value_init": float("nan")}, "model_options['value_init']"),
    ({**FULL_OPTION_DEFAULTS, "train_values": 0}, "model_options['train_values']: expected a bool"),
    ({**FULL_OPTION_DEFAULTS, "self_attention": False, "self_logit": 0.0},
     "model_options['self_logit']: expected None without self_attention"),
    ({**FULL_OPTION_DEFAULTS, "shared_layernorm": True, "normalization": "l2"},
     "model_options['shared_layernorm']: expected False with normalization 'l2'"),
    ({**FULL_OPTION_DEFAULTS, "norm_offset": 0.1}, "model_options['norm_offset']: expected 0.0 "
     "with normalization 'layernorm'"),
])
def test_bad_option_dicts_are_refused(options, fragment):
    with pytest.raises(InductionHeadsError) as info:
        FullInductionHeadModel.check_options(options)
    assert fragment in str(info.value), str(info.value)


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"content": "rank1"}, "content: expected one of ('direct', 'factorised')"),
    ({"self_logit": float("inf")}, "self_logit: expected None or a finite float"),
    ({"norm_offset": -1.0, "normalization": "l2"}, "norm_offset: expected a float >= 0"),
    ({"self_attention": False, "self_logit": 1e-6}, "self_logit: expected None without"),
    ({"train_content": "yes"}, "train_content: expected a bool"),
])
def test_bad_constructor_options_are_refused(kwargs, fragment):
    with pytest.raises(InductionHeadsError) as info:
        FullInductionHeadModel(PAPER_MODEL, 3, **kwargs)
    assert fragment in str(info.value), str(info.value)


def test_first_move_ingredients_name_theory_presets() -> None:
    """The authors' options and the defaults map onto theory's two presets; the factorised
    content term enters as ``content_init²``."""
    official = first_move_ingredients(OFFICIAL_FULL_OPTIONS, "official_ce")
    assert official == OFFICIAL_FULL_INGREDIENTS, (official, OFFICIAL_FULL_INGREDIENTS)
    library = first_move_ingredients({}, "nll")
    assert library == LIBRARY_FULL_INGREDIENTS, (library, LIBRARY_FULL_INGREDIENTS)
    direct = first_move_ingredients({"content_init": 0.5}, "nll")
    assert direct.content_scale == 0.5
