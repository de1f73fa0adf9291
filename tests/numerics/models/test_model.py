"""TF(M, H, d, D): invariants, vectorised-vs-dense agreement, the limiting model, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import numerics
import theory.predictors
import theory.predictors.reference
from numerics.models.inputs import prepare_inputs
from numerics.models.reference import dense_forward, dense_loss
from numerics.models.simplified import LOSS_FLOOR, InductionHeadModel
from theory import PAPER_MODEL, InductionHeadsError, ModelSpec

DENSE_ATOL = 1e-6
"""Vectorised vs dense in float64: two summation orders differ by ~1e-15 (seen); a wrong term
would shift ŷ by O(1/L), far above 1e-6."""
SUM_ATOL = 1e-10
"""ŷ is a convex combination of one-hots: float64 round-off only."""
LIMIT_ATOL = 1e-9
"""At a = 60 the non-matching positions weigh e^-60 ≈ 1e-26 relative to a match."""


@st.composite
def model_cases(draw):
    """A random model size, vocabulary, parameters and a batch of contexts."""
    heads = draw(st.integers(1, 4))
    window = draw(st.integers(heads, 5))
    degree = draw(st.integers(1, heads))
    vocab = draw(st.integers(2, 5))
    seq_len = draw(st.integers(window + 1, 24))
    seed = draw(st.integers(0, 2**31 - 1))
    spec = ModelSpec(heads, window, degree, w_plus=draw(st.floats(-2, 4)),
                     w_minus=draw(st.floats(-2, 2)), c_init=draw(st.floats(0.1, 2)),
                     a_init=draw(st.floats(0, 5)))
    return spec, vocab, seq_len, seed


def _random_model(spec, vocab, seed, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    model = InductionHeadModel(spec, vocab, dtype=dtype)
    with torch.no_grad():
        model.w.copy_(torch.randn(model.w.shape, generator=gen, dtype=dtype) * 2)
        model.C.copy_(torch.randn(model.C.shape, generator=gen, dtype=dtype))
        model.a.fill_(float(torch.rand((), generator=gen, dtype=dtype) * 6))
    return model, gen


@settings(max_examples=40)
@given(model_cases())
def test_vectorised_equals_dense_reference(case):
    spec, vocab, seq_len, seed = case
    model, gen = _random_model(spec, vocab, seed)
    tokens = torch.randint(0, vocab, (7, seq_len + 1), generator=gen)
    fast, slow = model(tokens[:, :-1]), dense_forward(model, tokens[:, :-1])
    err = (fast - slow).abs().max().item()
    assert err < DENSE_ATOL, f"ŷ: vectorised vs dense differ by {err:.3e}\n{fast}\n{slow}"
    params = list(model.parameters())
    g_fast = torch.autograd.grad(model.loss(tokens), params)
    g_slow = torch.autograd.grad(dense_loss(model, tokens), params)
    for name, a, b in zip(("w", "C", "a"), g_fast, g_slow):
        err = (a - b).abs().max().item()
        assert err < DENSE_ATOL, f"grad {name}: vectorised {a} vs dense {b}"


@settings(max_examples=30)
@given(model_cases())
def test_outputs_are_probability_vectors(case):
    spec, vocab, seq_len, seed = case
    model, gen = _random_model(spec, vocab, seed)
    tokens = torch.randint(0, vocab, (5, seq_len), generator=gen)
    probs, taps = model(tokens, return_taps=True)
    assert probs.shape == (5, vocab)
    assert torch.all(probs >= 0)
    assert torch.allclose(probs.sum(-1), torch.ones(5, dtype=probs.dtype), atol=SUM_ATOL)
    assert torch.allclose(taps["classifier.attention"].sum(-1),
                          torch.ones(5, dtype=probs.dtype), atol=SUM_ATOL)
    assert torch.allclose(taps["selector.weights"].sum(), torch.tensor(1.0, dtype=probs.dtype))
    assert torch.allclose(taps["copier.attention"].sum(-1),
                          torch.ones(spec.heads, dtype=probs.dtype), atol=SUM_ATOL)
    sim = taps["copier.head_similarity"]
    assert sim.shape == (5, spec.heads, seq_len)
    assert torch.all(sim >= -SUM_ATOL) and torch.all(sim <= 1 + SUM_ATOL), "cosines of >=0 vectors"


def _gih_by_counting(tokens: np.ndarray, parents: tuple[int, ...], vocab: int) -> np.ndarray:
    """ŷ of the generalized induction head at a = ∞, by direct loops (docs/theory.md §3)."""
    n, L = tokens.shape
    out = np.zeros((n, vocab))
    for b in range(n):
        x = [None] + list(tokens[b])  # 1-based: x[l] for l = 1..L
        matches = [l for l in range(1, L + 1)
                   if all(l - h >= 1 and x[l - h] == x[L + 1 - h] for h in parents)]
        chosen = matches if matches else list(range(1, L + 1))
        for l in chosen:
            out[b, x[l]] += 1.0 / len(chosen)
    return out


@pytest.mark.parametrize("spec,selected,vocab", [
    (PAPER_MODEL, (1, 2), 3), (ModelSpec(3, 4, 3), (1, 3), 4), (ModelSpec(2, 2, 1), (2,), 2),
])
def test_model_at_limit_reproduces_gih_by_counting(spec, selected, vocab):
    model = InductionHeadModel.at_limit(spec, vocab, selected_set=selected, a=60.0,
                                        dtype=torch.float64)
    gen = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, vocab, (40, 20), generator=gen)
    predicted = _gih_by_counting(tokens.numpy(), selected, vocab)
    measured = model(tokens).detach().numpy()
    err = np.abs(predicted - measured).max()
    assert err < LIMIT_ATOL, f"GIH by counting {predicted[:3]} vs model at limit {measured[:3]}"


def test_at_limit_taps_are_one_hot():
    model = InductionHeadModel.at_limit(PAPER_MODEL, 3, selected_set=(1, 2), a=5.0)
    _, taps = model(torch.randint(0, 3, (4, 12)), return_taps=True)
    c = taps["selector.weights"]
    assert c[PAPER_MODEL.sets.index((1, 2))] == 1.0 and c.sum() == 1.0
    att = taps["copier.attention"]
    assert torch.equal(att[0], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.equal(att[1], torch.tensor([0.0, 1.0, 0.0]))
    # head 3 is outside S*: untouched, still the softmax of its initial logits
    assert torch.allclose(att[2], torch.softmax(torch.tensor([0.0, 0.0, 1.0]), 0))


def test_loss_floor_when_target_never_occurs():
    model = InductionHeadModel(PAPER_MODEL, 3, dtype=torch.float64)
    tokens = torch.tensor([[0, 1, 0, 1, 0, 1, 2]])  # target 2 never occurs in the context
    assert math.isclose(model.loss(tokens).item(), -math.log(LOSS_FLOOR), rel_tol=1e-12)


def test_official_loss_option_is_cross_entropy_on_probabilities():
    model = InductionHeadModel(PAPER_MODEL, 3, loss="official_ce", dtype=torch.float64)
    tokens = torch.randint(0, 3, (6, 15), generator=torch.Generator().manual_seed(0))
    probs = model(tokens[:, :-1])
    assert torch.allclose(model.loss(tokens), F.cross_entropy(probs, tokens[:, -1]))


def test_prepared_inputs_give_the_same_loss():
    model = InductionHeadModel(PAPER_MODEL, 3, dtype=torch.float64)
    tokens = torch.randint(0, 3, (9, 30), generator=torch.Generator().manual_seed(1))
    inputs = prepare_inputs(tokens[:, :-1], 3, 3, torch.float64)
    assert model.loss(tokens, inputs).item() == model.loss(tokens).item()


def test_initialisation_matches_spec():
    spec = ModelSpec(3, 5, 2, w_plus=2.5, w_minus=-0.5, c_init=0.3, a_init=0.02)
    model = InductionHeadModel(spec, 4)
    expected_w = torch.full((3, 5), -0.5)
    expected_w[[0, 1, 2], [0, 1, 2]] = 2.5
    assert torch.equal(model.w.detach(), expected_w)
    assert torch.allclose(model.C.detach(), torch.full((len(spec.sets),), 0.3))
    assert model.a.item() == pytest.approx(0.02)


def _model(**kwargs) -> InductionHeadModel:
    return InductionHeadModel(PAPER_MODEL, 3, **kwargs)


def _tokens(target: int) -> torch.Tensor:
    """(2, 10): a valid context of 9 tokens and the given target."""
    return torch.cat([torch.zeros(2, 9, dtype=torch.long), torch.full((2, 1), target)], dim=1)


MISSING_CUDA = "cuda:99"
"""A CUDA device that exists on no machine this runs on (refused with or without CUDA)."""
OUT_OF_RANGE_A = (math.nan, math.inf, -math.inf, -1.0, True, "1.0", None)


@pytest.mark.parametrize("build,fragment", [
    (lambda: InductionHeadModel(PAPER_MODEL, 1), "vocab_size"),
    (lambda: InductionHeadModel(PAPER_MODEL, 3.0), "vocab_size"),
    (lambda: InductionHeadModel(PAPER_MODEL, True), "vocab_size"),
    (lambda: InductionHeadModel(PAPER_MODEL, 3, loss="mse"), "loss"),
    (lambda: _model(dtype=torch.int64), "dtype: expected torch.float32, torch.float64"),
    (lambda: _model(dtype=torch.float16), "dtype: expected"),
    (lambda: _model(dtype="int64"), "dtype: expected"),
    (lambda: _model(dtype=float), "dtype: expected"),
    (lambda: _model(device="tpu"), "device: expected 'auto', 'cpu', 'cuda' or 'cuda:N'"),
    (lambda: _model(device=MISSING_CUDA), "device: expected"),
    (lambda: InductionHeadModel.at_limit(PAPER_MODEL, 3, selected_set=(1, 2, 3), a=1.0), "selected"),
    (lambda: InductionHeadModel.at_limit(PAPER_MODEL, 3, selected_set=(1,), a=1.0,
                                         offsets={1: 4}), "offset"),
    (lambda: InductionHeadModel.at_limit(PAPER_MODEL, 3, selected_set=(1,), a=1.0,
                                         offsets={"1": 1}), "offsets head"),
    (lambda: InductionHeadModel.at_limit(PAPER_MODEL, 3, selected_set=1, a=1.0), "selected_set"),
    (lambda: _model()(torch.zeros(2, 3, dtype=torch.long)), "L > M"),
    (lambda: _model()(torch.zeros(0, 9, dtype=torch.long)), "context sequences n: expected n >= 1"),
    (lambda: _model()(torch.full((2, 9), 3)), "values in [0, 3)"),
    (lambda: _model()(torch.full((2, 9), -1)), "values in [0, 3)"),
    (lambda: _model()(torch.zeros(2, 9)), "integer tensor"),
    (lambda: _model()(torch.zeros(2, 9, dtype=torch.bool)), "integer tensor"),
    (lambda: _model()(np.zeros((2, 9), dtype=np.int64)), "integer tensor"),
    (lambda: _model().loss(_tokens(3)), "target tokens: expected values in [0, 3), received (3, 3)"),
    (lambda: _model().loss(_tokens(-1)), "target tokens: expected values in [0, 3)"),
    (lambda: _model().loss(torch.zeros(2, 1, dtype=torch.long)), "tokens: expected"),
    (lambda: _model().loss(_tokens(0), prepare_inputs(_tokens(0)[:1, :-1], 3, 3)), "inputs"),
    (lambda: _model()(prepare_inputs(_tokens(0)[:, :-1], 3, 3, torch.float64)),
     "prepared inputs: expected dtype torch.float32"),
    (lambda: _model()(prepare_inputs(_tokens(0)[:, :-1], 3, 4)), "prepared inputs: expected"),
    (lambda: prepare_inputs(_tokens(0)[:, :-1], 3, 3, torch.int64), "dtype: expected"),
    (lambda: _model().loss_from_probs(torch.ones(2, 3) / 3, torch.zeros(3, dtype=torch.long)),
     "target: expected an integer tensor of shape (n = 2,)"),
    (lambda: dense_forward(_model(), torch.full((2, 9), 5)), "context tokens"),
    (lambda: dense_loss(_model(), _tokens(7)), "target tokens"),
])
def test_bad_input_raises_library_error(build, fragment):
    with pytest.raises(InductionHeadsError, match="expected") as info:
        build()
    assert fragment in str(info.value)


@pytest.mark.parametrize("a", OUT_OF_RANGE_A)
def test_at_limit_refuses_a_temperature_outside_its_range(a):
    with pytest.raises(InductionHeadsError,
                       match=r"a: expected a finite real number >= 0 \(a = inf is theory"):
        InductionHeadModel.at_limit(PAPER_MODEL, 3, selected_set=(1, 2), a=a)


def test_accepted_spellings_of_sizes_dtypes_devices_and_temperatures():
    model = InductionHeadModel(PAPER_MODEL, np.int64(3), dtype="float64", device="cpu")
    assert model.vocab_size == 3 and type(model.vocab_size) is int
    assert model.w.dtype == torch.float64 and model.w.device == torch.device("cpu")
    assert InductionHeadModel(PAPER_MODEL, 3, dtype="float32").w.dtype == torch.float32
    limit = InductionHeadModel.at_limit(PAPER_MODEL, np.int32(3), selected_set=(np.int64(1),),
                                        a=np.float32(2.5))
    assert limit.a.item() == 2.5 and limit.C[PAPER_MODEL.sets.index((1,))] == 1.0
    assert InductionHeadModel.at_limit(PAPER_MODEL, 3, selected_set=(), a=0).a.item() == 0.0
    tokens = torch.randint(0, 3, (4, 12), generator=torch.Generator().manual_seed(2))
    assert torch.equal(model(tokens.int()), model(tokens)), "int32 tokens give another ŷ"


def test_one_loss_floor_shared_with_theory():
    assert LOSS_FLOOR is theory.predictors.reference.LOSS_FLOOR and numerics.LOSS_FLOOR is LOSS_FLOOR
