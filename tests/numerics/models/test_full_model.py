"""The full variant of TF (docs/theory.md §7): exact reductions, a loop reference, the interface."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics.data import sample_sequences
from numerics.models.full import FullInductionHeadModel, TrainableModel
from numerics.models.inputs import prepare_inputs
from numerics.models.simplified import InductionHeadModel
from theory import PAPER_MODEL, PAPER_SOURCE, InductionHeadsError, ModelSpec
from theory.predictors.reference import LOSS_FLOOR

EXACT_ATOL = 1e-10
"""Reductions that hold as identities, compared in float64: only round-off remains (seen ~1e-15)."""
SUM_ATOL = 1e-10
"""Softmax rows and ŷ are convex combinations: float64 round-off only."""


@st.composite
def model_cases(draw):
    """A random model size, vocabulary, context length and seed."""
    heads = draw(st.integers(1, 3))
    window = draw(st.integers(heads, 4))
    degree = draw(st.integers(1, heads))
    vocab = draw(st.integers(2, 4))
    seq_len = draw(st.integers(window + 1, 16))
    return ModelSpec(heads, window, degree), vocab, seq_len, draw(st.integers(0, 2**31 - 1))


def _randomise(model, gen: torch.Generator, *, copier: bool = True) -> None:
    """Random w, C, a and (``copier``) random A, V and LayerNorm affine."""
    with torch.no_grad():
        for p in (model.w, model.C):
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 1.5)
        model.a.fill_(float(torch.rand((), generator=gen)) * 5)
        if copier:
            model.A.copy_(torch.randn(model.A.shape, generator=gen, dtype=model.A.dtype))
            model.V.add_(torch.randn(model.V.shape, generator=gen, dtype=model.V.dtype) * 0.5)
            if model.normalization == "layernorm":
                model.ln_weight.add_(torch.randn(model.ln_weight.shape, generator=gen,
                                                 dtype=model.ln_weight.dtype) * 0.3)
                model.ln_bias.copy_(torch.randn(model.ln_bias.shape, generator=gen,
                                                dtype=model.ln_bias.dtype) * 0.3)


def _max_err(x: torch.Tensor, y: torch.Tensor) -> float:
    return (x - y).abs().max().item()


# ------------------------------------------------------------------------- exact reductions
@settings(max_examples=25)
@given(model_cases())
def test_reduces_to_the_simplified_model(case):
    spec, vocab, seq_len, seed = case
    gen = torch.Generator().manual_seed(seed)
    full = FullInductionHeadModel(spec, vocab, normalization="l2", self_attention=False,
                                  dtype=torch.float64)
    _randomise(full, gen, copier=False)
    simple = InductionHeadModel(spec, vocab, dtype=torch.float64)
    with torch.no_grad():
        for name in ("w", "C", "a"):
            getattr(simple, name).copy_(getattr(full, name))
    tokens = torch.randint(0, vocab, (6, seq_len + 1), generator=gen)
    p_full, t_full = full(tokens[:, :-1], return_taps=True)
    p_simple, t_simple = simple(tokens[:, :-1], return_taps=True)
    assert _max_err(p_full, p_simple) < EXACT_ATOL, f"ŷ: full {p_full} vs simplified {p_simple}"
    for name in ("copier.head_similarity", "classifier.similarity", "classifier.attention"):
        err = _max_err(t_full[name], t_simple[name])
        assert err < EXACT_ATOL, f"tap {name}: full and simplified differ by {err:.2e}"
    interior = t_full["copier.position_attention"][:, :, spec.window:]            # (n, H, ·, M)
    err = _max_err(interior, t_simple["copier.attention"][None, :, None, :].expand_as(interior))
    assert err < EXACT_ATOL, f"interior copier attention differs by {err:.2e}"
    g_full = torch.autograd.grad(full.loss(tokens), [full.w, full.C, full.a])
    g_simple = torch.autograd.grad(simple.loss(tokens), [simple.w, simple.C, simple.a])
    for name, a, b in zip(("w", "C", "a"), g_full, g_simple):
        assert _max_err(a, b) < EXACT_ATOL, f"grad {name}: full {a} vs simplified {b}"


def test_l2_ignores_orthogonal_values_and_row_constant_content():
    # <c Q u, c Q u'> / (c² |u| |u'|) = cos(u, u'), and a logit shift that depends only on x_l
    # (A_h = b_h 1ᵀ) cancels in each row's softmax; the query row has no content term at all.
    spec, vocab = ModelSpec(3, 4, 2), 4
    gen = torch.Generator().manual_seed(11)
    base = FullInductionHeadModel(spec, vocab, normalization="l2", self_attention=False,
                                  dtype=torch.float64)
    _randomise(base, gen, copier=False)
    twin = FullInductionHeadModel(spec, vocab, normalization="l2", self_attention=False,
                                  dtype=torch.float64)
    twin.load_state_dict(base.state_dict())
    with torch.no_grad():
        for h in range(spec.heads):
            q, _ = torch.linalg.qr(torch.randn(vocab, vocab, generator=gen, dtype=torch.float64))
            twin.V[h] = (0.5 + h) * q
            twin.A[h] = torch.randn(vocab, 1, generator=gen, dtype=torch.float64).expand(-1, vocab)
    tokens = torch.randint(0, vocab, (8, 15), generator=gen)
    err = _max_err(base(tokens), twin(tokens))
    assert err < EXACT_ATOL, f"ŷ changed by {err:.2e} under an invariance of the l2 copier"


def test_layernorm_is_sqrt_d_times_l2_of_the_centred_value():
    # LN(v) = sqrt(d) (v - mean v) / ||v - mean v|| at eps = 0, weight 1, bias 0; the centring is
    # the value matrix (I - 11ᵀ/d) V. So k_h(LN) = d k_h(l2 with centred V), and for D = 1 the
    # model equals the l2 one at temperature d·a (the empty set is the same constant in both).
    vocab = 3
    for spec in (ModelSpec(3, 3, 2), ModelSpec(2, 3, 1)):
        gen = torch.Generator().manual_seed(5)
        ln = FullInductionHeadModel(spec, vocab, ln_eps=0.0, dtype=torch.float64)
        _randomise(ln, gen)
        with torch.no_grad():
            ln.ln_weight.fill_(1.0)
            ln.ln_bias.zero_()
        l2 = FullInductionHeadModel(spec, vocab, normalization="l2", dtype=torch.float64)
        centre = torch.eye(vocab, dtype=torch.float64) - 1.0 / vocab
        with torch.no_grad():
            for name in ("w", "A", "C", "a"):
                getattr(l2, name).copy_(getattr(ln, name))
            l2.V.copy_(centre @ ln.V)
        tokens = torch.randint(0, vocab, (10, 14), generator=gen)
        _, t_ln = ln(tokens, return_taps=True)
        _, t_l2 = l2(tokens, return_taps=True)
        ratio_err = _max_err(t_ln["copier.head_similarity"],
                             vocab * t_l2["copier.head_similarity"])
        assert ratio_err < EXACT_ATOL, f"k_h(LN) - d·k_h(l2 centred) = {ratio_err:.2e}"
        if spec.degree == 1:
            with torch.no_grad():
                l2.a.mul_(vocab)
            err = _max_err(ln(tokens), l2(tokens))
            assert err < EXACT_ATOL, f"D = 1: ŷ(LN, a) vs ŷ(l2 centred, d·a) differ by {err:.2e}"


@pytest.mark.parametrize("relu", [False, True])
def test_layernorm_similarity_at_the_exact_copier_is_affine_in_the_match(relu):
    # One-hot v: LN(e_x) = sqrt(d/(d-1)) (d e_x - 1)/sqrt(d), so <LN(e_x), LN(e_y)> =
    # d (d·1{x=y} - 1)/(d-1): 3 on a match and -1.5 otherwise at d = 3; the ReLU keeps d·1{x=y}.
    spec, vocab, selected = PAPER_MODEL, 3, (1, 2)
    model = FullInductionHeadModel.at_limit(spec, vocab, selected_set=selected, a=1.0,
                                            ln_eps=0.0, relu_similarity=relu,
                                            dtype=torch.float64)
    tokens = torch.randint(0, vocab, (12, 20), generator=torch.Generator().manual_seed(2))
    _, taps = model(tokens, return_taps=True)
    L, M = tokens.shape[1], spec.window
    for h in selected:
        match = (tokens[:, M - h:L - h] == tokens[:, L - h:L - h + 1]).double()  # l = M+1..L
        expected = vocab * match if relu else vocab * (vocab * match - 1) / (vocab - 1)
        measured = taps["copier.head_similarity"][:, h - 1, M:]
        assert _max_err(measured, expected) < EXACT_ATOL, (
            f"head {h}: k_h {measured[0]} vs hand count {expected[0]}")


# --------------------------------------------------------------------- a loop reference
def _loop_forward(model: FullInductionHeadModel, context: torch.Tensor) -> torch.Tensor:
    """ŷ (n, d) by explicit loops over sequences, positions, heads and offsets."""
    n, L = context.shape
    d, H = model.vocab_size, model.spec.heads

    def emb(seq, pos):  # e(x_pos), the zero vector at the query position L+1
        return (F.one_hot(seq[pos - 1], d).double() if pos <= L
                else torch.zeros(d, dtype=torch.float64))

    out = torch.zeros(n, d, dtype=torch.float64)
    for b in range(n):
        v_bar = torch.zeros(H, L + 2, d, dtype=torch.float64)
        for h in range(H):
            for pos in range(1, L + 2):
                valid = [(k, i) for k, i in enumerate(model.offsets) if pos - i >= 1]
                if not valid:
                    continue
                logits = torch.stack([model.w[h, k] + emb(context[b], pos) @ model.A[h]
                                      @ emb(context[b], pos - i) for k, i in valid])
                sigma = torch.softmax(logits, 0)
                v = sum(s * model.V[h] @ emb(context[b], pos - i)
                        for s, (_, i) in zip(sigma, valid))
                if model.normalization == "l2":
                    v_bar[h, pos] = v / v.norm()
                else:
                    z = (v - v.mean()) / torch.sqrt(v.var(unbiased=False) + model.ln_eps)
                    v_bar[h, pos] = model.ln_weight[h] * z + model.ln_bias[h]
        c_tilde = model.C.square() / model.C.square().sum()
        sims = []
        for pos in range(1, L + 1):
            k = [v_bar[h, L + 1] @ v_bar[h, pos] for h in range(H)]
            k = [kh.clamp_min(0.0) if model.relu_similarity else kh for kh in k]
            sims.append(sum(c * math.prod([k[h - 1] for h in s]) if s else c
                            for c, s in zip(c_tilde, model.sets)))
        attn = torch.softmax(model.a * torch.stack(sims), 0)
        out[b] = sum(attn[pos - 1] * emb(context[b], pos) for pos in range(1, L + 1))
    return out


@pytest.mark.parametrize("kwargs", [
    {}, {"relu_similarity": True}, {"self_attention": False}, {"normalization": "l2"},
])
def test_vectorised_forward_equals_the_loop_reference(kwargs):
    gen = torch.Generator().manual_seed(7)
    model = FullInductionHeadModel(ModelSpec(2, 3, 2), 3, dtype=torch.float64, **kwargs)
    _randomise(model, gen)
    context = torch.randint(0, 3, (3, 7), generator=gen)
    with torch.no_grad():
        fast, slow = model(context), _loop_forward(model, context)
    assert _max_err(fast, slow) < EXACT_ATOL, f"vectorised {fast} vs loops {slow}"


# ------------------------------------------------------------------ taps and initialisation
def test_initial_attention_is_the_simplified_one_plus_offset_zero():
    spec = ModelSpec(3, 4, 2, w_plus=2.0, w_minus=-0.5)
    full = FullInductionHeadModel(spec, 3, dtype=torch.float64)
    simple = InductionHeadModel(spec, 3, dtype=torch.float64)
    sigma = full.copier_attention(include_self=True)                   # (H, M+1)
    renormalised = sigma[:, 1:] / (1 - sigma[:, :1])
    assert _max_err(renormalised, simple.copier_attention()) < EXACT_ATOL
    self_mass = math.exp(-0.5) / (math.exp(2.0) + 4 * math.exp(-0.5))
    assert _max_err(sigma[:, 0], torch.full((3,), self_mass, dtype=torch.float64)) < EXACT_ATOL
    tokens = torch.randint(0, 3, (5, 12), generator=torch.Generator().manual_seed(0))
    _, taps = full(tokens, return_taps=True)
    query_row = taps["copier.position_attention"][:, :, -1]                      # (n, H, M+1)
    assert _max_err(query_row, sigma[None].expand_as(query_row)) < EXACT_ATOL
    # with A = 0 the batch average at interior positions is the content-free attention
    assert _max_err(full.copier_attention(tokens), full.copier_attention()) < EXACT_ATOL
    assert torch.equal(full.A.detach(), torch.zeros(3, 3, 3, dtype=torch.float64))
    assert torch.equal(full.V.detach(), torch.eye(3, dtype=torch.float64).expand(3, 3, 3))
    assert torch.equal(full.ln_weight.detach(), torch.ones(3, 3, dtype=torch.float64))
    assert torch.equal(full.ln_bias.detach(), torch.zeros(3, 3, dtype=torch.float64))
    assert full.w[0, 1] == 2.0 and full.w[0, 0] == -0.5 and full.w[2, 3] == 2.0


@pytest.mark.parametrize("self_attention", [True, False])
def test_taps_have_the_documented_shapes_and_are_distributions(self_attention):
    spec, vocab, n, L = PAPER_MODEL, 3, 4, 11
    gen = torch.Generator().manual_seed(3)
    model = FullInductionHeadModel(spec, vocab, self_attention=self_attention, dtype=torch.float64)
    _randomise(model, gen)
    probs, taps = model(torch.randint(0, vocab, (n, L), generator=gen), return_taps=True)
    K, H = spec.window + int(self_attention), spec.heads
    shapes = {"copier.position_attention": (n, H, L + 1, K), "copier.head_similarity": (n, H, L),
              "selector.weights": (len(spec.sets),), "classifier.similarity": (n, L),
              "classifier.attention": (n, L), "output": (n, vocab)}
    assert {k: tuple(v.shape) for k, v in taps.items()} == shapes
    assert model.w.shape == (H, K) and model.copier_attention().shape == (H, spec.window)
    ones = torch.ones(n, dtype=torch.float64)
    assert torch.all(probs >= 0) and _max_err(probs.sum(-1), ones) < SUM_ATOL
    assert _max_err(taps["classifier.attention"].sum(-1), ones) < SUM_ATOL
    rows = taps["copier.position_attention"].sum(-1)                    # (n, H, L+1)
    expected = torch.ones_like(rows)
    if not self_attention:
        expected[:, :, 0] = 0.0                                         # l = 1 has no offset
    assert _max_err(rows, expected) < SUM_ATOL
    assert torch.all(taps["copier.position_attention"][:, :, 0, 1:] == 0)  # l-i < 1: no weight


def test_gradients_reach_every_parameter_group():
    model = FullInductionHeadModel(PAPER_MODEL, 3, dtype=torch.float64)
    groups = model.parameter_groups()
    assert set(groups) == {"C", "w", "a"}
    grouped = [id(p) for ps in groups.values() for p in ps]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters()), "groups != parameters"
    tokens = sample_sequences(PAPER_SOURCE, 64, 31, generator=torch.Generator().manual_seed(4))
    model.loss(tokens).backward()
    named = {id(p): name for name, p in model.named_parameters()}
    for group, params in groups.items():
        for p in params:
            assert p.grad is not None and torch.isfinite(p.grad).all(), named[id(p)]
            assert p.grad.abs().max() > 0, f"group {group}: no gradient on {named[id(p)]}"
    l2 = FullInductionHeadModel(PAPER_MODEL, 3, normalization="l2")
    assert [tuple(p.shape) for p in l2.parameter_groups()["w"]] == [(3, 4), (3, 3, 3), (3, 3, 3)]


FORMS_RTOL = 1e-12
"""A prepared sample and the raw tokens may take different copier forms (float64): round-off."""


def test_trainer_interface_and_losses():
    model = FullInductionHeadModel(PAPER_MODEL, 3, dtype=torch.float64)
    assert isinstance(model, TrainableModel)
    assert (model.spec, model.vocab_size, model.loss_kind, model.sets) == (
        PAPER_MODEL, 3, "nll", PAPER_MODEL.sets)
    tokens = torch.randint(0, 3, (6, 15), generator=torch.Generator().manual_seed(1))
    inputs = model.prepare_inputs(tokens[:, :-1])
    assert math.isclose(model.loss(tokens, inputs).item(), model.loss(tokens).item(),
                        rel_tol=FORMS_RTOL)
    assert model.selector_weights().shape == (len(PAPER_MODEL.sets),)
    absent = torch.tensor([[0, 1, 0, 1, 0, 1, 2]])                      # target 2 never occurs
    assert math.isclose(model.loss(absent).item(), -math.log(LOSS_FLOOR), rel_tol=1e-12)
    official = FullInductionHeadModel(PAPER_MODEL, 3, loss="official_ce", dtype=torch.float64)
    assert torch.allclose(official.loss(tokens), F.cross_entropy(official(tokens[:, :-1]),
                                                                 tokens[:, -1]))


def test_loss_and_copier_is_one_forward_of_loss_and_the_sample_attention():
    model = FullInductionHeadModel(PAPER_MODEL, 3, dtype=torch.float64)
    _randomise(model, torch.Generator().manual_seed(6))
    tokens = torch.randint(0, 3, (7, 16), generator=torch.Generator().manual_seed(2))
    inputs = model.prepare_inputs(tokens[:, :-1])
    loss, attention = model.loss_and_copier(tokens, inputs)
    assert math.isclose(loss.item(), model.loss(tokens).item(), rel_tol=FORMS_RTOL)
    assert torch.allclose(attention, model.copier_attention(tokens[:, :-1]), rtol=FORMS_RTOL,
                          atol=0.0)
    assert attention.shape == (PAPER_MODEL.heads, PAPER_MODEL.window)
    picked = model.select_inputs(inputs, torch.arange(3))
    assert math.isclose(model.loss(tokens[:3], picked).item(), model.loss(tokens[:3]).item(),
                        rel_tol=FORMS_RTOL)
    assert model.constructor_options() == {
        "normalization": "layernorm", "self_attention": True, "relu_similarity": False,
        "ln_eps": 1e-5, "self_logit": None, "content": "direct", "content_init": 0.0,
        "value_init": 1.0, "shared_layernorm": False, "train_content": True,
        "train_values": True, "norm_offset": 0.0}


def test_the_simplified_model_is_a_trainable_model():
    model = InductionHeadModel(PAPER_MODEL, 3, dtype=torch.float64)
    assert isinstance(model, TrainableModel)
    groups = model.parameter_groups()
    assert {k: [id(p) for p in v] for k, v in groups.items()} == {
        "C": [id(model.C)], "w": [id(model.w)], "a": [id(model.a)]}
    tokens = torch.randint(0, 3, (9, 13), generator=torch.Generator().manual_seed(8))
    inputs = model.prepare_inputs(tokens[:, :-1])
    form = model.cheapest_form(9, 12)
    direct = prepare_inputs(tokens[:, :-1], PAPER_MODEL.window, 3, torch.float64, form=form)
    assert type(inputs) is type(direct)
    assert all(a is b is None or torch.equal(a, b) for a, b in zip(inputs, direct))
    idx = torch.tensor([4, 0, 7])
    picked = model.select_inputs(inputs, idx)
    assert torch.allclose(model(picked), model(model.prepare_inputs(tokens[idx, :-1], form=form)),
                          rtol=0, atol=1e-14)
    loss, attention = model.loss_and_copier(tokens[idx], picked)
    assert loss.item() == model.loss(tokens[idx]).item()
    assert torch.equal(attention, model.copier_attention())
    assert model.constructor_options() == {}
    with pytest.raises(InductionHeadsError, match="inputs: expected the tokens or"):
        FullInductionHeadModel(PAPER_MODEL, 3).select_inputs(inputs, idx)


@pytest.mark.parametrize("build,fragment", [
    (lambda: FullInductionHeadModel(PAPER_MODEL, 1), "vocab_size"),
    (lambda: FullInductionHeadModel(PAPER_MODEL, 3, loss="mse"), "loss"),
    (lambda: FullInductionHeadModel(PAPER_MODEL, 3, normalization="rms"), "normalization"),
    (lambda: FullInductionHeadModel(PAPER_MODEL, 3, ln_eps=-1.0), "ln_eps"),
    (lambda: FullInductionHeadModel((3, 3, 2), 3), "ModelSpec"),
    (lambda: FullInductionHeadModel.at_limit(PAPER_MODEL, 3, selected_set=(1, 2, 3), a=1.0),
     "selected"),
    (lambda: FullInductionHeadModel.at_limit(PAPER_MODEL, 3, selected_set=(1,), a=1.0,
                                             offsets={1: 4}), "offset"),
    (lambda: FullInductionHeadModel(PAPER_MODEL, 3)(torch.zeros(2, 3, dtype=torch.long)),
     "L > M"),
    (lambda: FullInductionHeadModel(PAPER_MODEL, 3)(torch.full((2, 9), 3)), "values in [0, 3)"),
    (lambda: FullInductionHeadModel(PAPER_MODEL, 3)(torch.zeros(2, 9)), "integer tensor"),
    (lambda: FullInductionHeadModel(PAPER_MODEL, 3).loss(torch.zeros(9, dtype=torch.long)),
     "tokens"),
    (lambda: FullInductionHeadModel(PAPER_MODEL, 3).loss(torch.zeros(2, 9, dtype=torch.long),
                                                         inputs=torch.zeros(2)), "inputs"),
])
def test_bad_input_raises_library_error(build, fragment):
    with pytest.raises(InductionHeadsError, match="expected") as info:
        build()
    assert fragment in str(info.value)


# ---------------------------------------------------------------------------- training
STAGES = (("C", 300.0, 40), ("w", 10.0, 40), ("a", 1e-3, 20))
"""(group, SGD learning rate, steps). The LayerNorm copy has norm sqrt(d), so k_h is up to d
times the l2 one and the stage-1 signal about d² larger: lr 300 for C plays the role of 3000.
The LN gain enters k_h squared, a second temperature whose gradient grows like its cube, so the
copier stage needs lr ~10 (at 100 and above it blows up); a then needs a tiny rate."""
TRAIN_SEQUENCES = 300
"""A small fixed sample: enough for the selector's decision on the paper's source (margin ~10%)."""


@pytest.mark.slow
def test_stagewise_sgd_selects_one_two_on_the_paper_source():
    tokens = sample_sequences(PAPER_SOURCE, TRAIN_SEQUENCES, 101,
                              generator=torch.Generator().manual_seed(0))
    model = FullInductionHeadModel(PAPER_MODEL, 3)
    groups = model.parameter_groups()
    index = PAPER_MODEL.sets.index((1, 2))
    initial = model.loss(tokens).item()
    for group, lr, steps in STAGES:
        for name, params in groups.items():
            for p in params:
                p.requires_grad_(name == group)
        optimizer = torch.optim.SGD(groups[group], lr=lr)
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            model.loss(tokens).backward()
            optimizer.step()
        c_tilde = model.selector_weights().detach()
        assert c_tilde[index] >= 0.99, f"after stage {group}: c̃ = {c_tilde.tolist()}"
    final = model.loss(tokens).item()
    attention = model.copier_attention(tokens[:, :-1]).detach()          # (H, M)
    assert attention[0].argmax() == 0 and attention[1].argmax() == 1, (
        f"heads 1, 2 should copy offsets 1, 2: {attention.tolist()}")
    assert final < 0.5 * initial, f"loss {initial:.3f} -> {final:.3f}"
