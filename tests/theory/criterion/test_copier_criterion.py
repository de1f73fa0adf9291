"""The stage-1 signal at a soft copier (docs/theory.md §3.7): theory's numpy copier against the
torch model, its reduction to the exact copier, and its Monte Carlo estimate.

- ``copier_attention(spec)`` is the torch model's initial ``σ``; ``head_similarity`` is its
  ``copier.head_similarity`` tap at any soft ``w`` (positions ``l <= M`` included).
- At the exact attention the soft similarity is ``context_similarity`` and ``copier_criterion``
  is ``finite_length_criterion`` (same generator, same values).
- At a random soft copier, the per-sequence signal is the model's ``-∂ℓ_i/∂a`` at ``a = 0`` with
  ``c̃`` one-hot on ``S``, by batched autograd in float64.
"""

from __future__ import annotations

import math
import re
import tracemalloc

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics import InductionHeadModel
from theory import (
    PAPER_SOURCE,
    Dirichlet,
    ModelSpec,
    Source,
    copier_attention,
    copier_criterion,
    exact_attention,
    finite_length_criterion,
    head_sets,
    head_similarity,
    sizes,
    soft_context_similarity,
    stage1_signal,
)
from theory.errors import InductionHeadsError
from theory.predictors.copier import ATTENTION_SUM_ATOL, check_attention
from theory.predictors.reference import LOSS_FLOOR, context_similarity
from theory.sources.sequences import sample_sequences_np

AUTOGRAD_ATOL = 1e-10
"""Counting formula vs autograd in float64: round-off only (seen ~1e-16)."""
TAP_ATOL = 1e-12
"""numpy vs torch float64 copier similarities: the same quadratic forms summed in another
order, and ``x/sqrt(y)`` against ``x·rsqrt(y)``; round-off only (seen ~1e-15)."""
SOFTMAX_ATOL = 1e-15
"""Two float64 softmaxes of the same logits."""

CASES = [
    (PAPER_SOURCE, ModelSpec(3, 5, 2), 20),
    (Source(4, (1, 3), Dirichlet(0.3)), ModelSpec(3, 4, 3), 16),
    (Source(2, (2,), Dirichlet(1.0)), ModelSpec(2, 2, 1), 12),
]
"""(source, spec, L): windows wider than H, short contexts so that many positions have l <= M."""


def _soft_model(spec: ModelSpec, vocab_size: int, seed: int) -> InductionHeadModel:
    """A float64 model with random copier logits ``w ~ N(0, 1.5²)`` (a soft copier)."""
    model = InductionHeadModel(spec, vocab_size, dtype=torch.float64)
    with torch.no_grad():
        model.w.normal_(0.0, 1.5, generator=torch.Generator().manual_seed(seed))
    return model


@pytest.mark.parametrize("spec", [ModelSpec(3, 3, 2), ModelSpec(2, 5, 2, w_plus=2.5, w_minus=-1.0),
                                  ModelSpec(4, 4, 1, w_plus=0.0, w_minus=0.0)])
def test_initial_attention_is_the_models(spec):
    predicted = copier_attention(spec)
    measured = InductionHeadModel(spec, 3, dtype=torch.float64).copier_attention().detach().numpy()
    assert np.abs(predicted - measured).max() < SOFTMAX_ATOL, f"theory {predicted}\ntorch {measured}"
    if spec == ModelSpec(3, 3, 2):  # docs/theory.md §2: e/(e+2) on the head's own offset
        assert np.allclose(np.diag(predicted), math.e / (math.e + 2), atol=SOFTMAX_ATOL)


@pytest.mark.parametrize("source,spec,seq_len", CASES)
def test_head_similarity_is_the_models_tap(source, spec, seq_len):
    tokens = sample_sequences_np(source, 40, seq_len + 1, rng=np.random.default_rng(3))
    model = _soft_model(spec, source.vocab_size, seed=1)
    _, taps = model(torch.from_numpy(tokens[:, :-1]), return_taps=True)
    measured = taps["copier.head_similarity"].detach().numpy()  # (n, H, L)
    predicted = head_similarity(tokens[:, :-1], taps["copier.attention"].detach().numpy())
    err = np.abs(predicted - measured).max()
    assert err < TAP_ATOL, f"max |theory - torch| = {err:.3g} (theory {predicted[0, :, :4]}, " \
                           f"torch {measured[0, :, :4]})"
    assert np.all(predicted[:, :, 0] == 0.0), "position 1 copies nothing: k_h(1) = 0"


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), d=st.integers(2, 5), heads=st.integers(1, 4),
       extra=st.integers(0, 2), length=st.integers(1, 12), data=st.data())
def test_exact_attention_gives_the_exact_similarity(seed, d, heads, extra, length, data):
    window = heads + extra
    ctx = np.random.default_rng(seed).integers(0, d, size=(5, length))
    usable = [h for h in range(1, heads + 1) if h <= length]
    head_set = tuple(data.draw(st.lists(st.sampled_from(usable), unique=True, max_size=3))
                     if usable else [])
    predicted = soft_context_similarity(ctx, head_set, exact_attention(heads, window))
    expected = context_similarity(ctx, head_set)
    assert np.array_equal(predicted, expected), f"S={head_set}: {predicted} vs {expected}"


@pytest.mark.parametrize("source,spec,seq_len", CASES)
def test_soft_signal_is_the_autograd_signal(source, spec, seq_len):
    tokens = sample_sequences_np(source, 60, seq_len + 1, rng=np.random.default_rng(7))
    ctx, target = torch.from_numpy(tokens[:, :-1]), torch.from_numpy(tokens[:, -1])
    model = _soft_model(spec, source.vocab_size, seed=2)
    attention = model.copier_attention().detach().numpy()  # (H, M)
    for k, head_set in enumerate(head_sets(spec.heads, spec.degree)):
        with torch.no_grad():
            model.C.zero_()
            model.C[k] = 1.0  # c̃ one-hot on S
            model.a.zero_()

        probs = model(ctx)  # (n, d)
        per_sequence = -probs.gather(1, target[:, None]).squeeze(1).clamp_min(LOSS_FLOOR).log()
        (slope,) = torch.autograd.grad(  # row i: ∂ℓ_i/∂a, one batched backward pass
            per_sequence, [model.a], is_grads_batched=True,
            grad_outputs=torch.eye(per_sequence.shape[0], dtype=torch.float64))
        measured = -slope.numpy()  # (n,) -∂ℓ_i/∂a at a = 0
        predicted = stage1_signal(tokens, head_set, attention)  # (n,)
        err = np.abs(predicted - measured).max()
        assert err < AUTOGRAD_ATOL, (
            f"S={head_set}: signal by counting {predicted[:3]} vs -dℓ_i/da {measured[:3]} "
            f"(max diff {err:.3g})")
        (grad_a,) = torch.autograd.grad(model.loss(torch.from_numpy(tokens)), [model.a])
        assert abs(predicted.mean() + grad_a.item()) < AUTOGRAD_ATOL, (
            f"S={head_set}: G_L at the copier {predicted.mean():.12f} vs -dloss/da "
            f"{-grad_a.item():.12f}")


@pytest.mark.parametrize("source,spec", [(PAPER_SOURCE, ModelSpec(3, 3, 2)),
                                         (Source(4, (1, 3), Dirichlet(0.3)), ModelSpec(3, 4, 3))])
def test_copier_criterion_at_the_exact_copier_is_g_l(source, spec):
    at_copier = copier_criterion(source, spec.sets, 30, exact_attention(spec.heads, spec.window),
                                 samples=300, rng=np.random.default_rng(11))
    exact = finite_length_criterion(source, spec.sets, 30, samples=300,
                                    rng=np.random.default_rng(11))
    assert at_copier.kind == "G_L_copier" and at_copier.samples == exact.samples == 300
    assert np.array_equal(at_copier.per_sample, exact.per_sample), (
        f"at the exact copier {at_copier.values} vs G_L {exact.values}")
    assert np.array_equal(at_copier.stderr, exact.stderr)


def test_copier_criterion_shares_sequences_across_sets():
    spec = ModelSpec(3, 4, 2)
    attention = copier_attention(spec)
    est = copier_criterion(PAPER_SOURCE, spec.sets, 25, attention, samples=200,
                           rng=np.random.default_rng(5))
    tokens = sample_sequences_np(PAPER_SOURCE, 200, 26, rng=np.random.default_rng(5))
    for k, head_set in enumerate(spec.sets):
        expected = stage1_signal(tokens, head_set, attention)
        assert np.array_equal(est.per_sample[:, k], expected), f"S={head_set}"
    assert est.values[0] == 0.0 and est.stderr[0] == 0.0, "the empty set has no signal"
    diff_se = est.difference_stderr(4, 1)
    assert 0 < diff_se < math.hypot(est.stderr[4], est.stderr[1]), (
        f"paired SE {diff_se} should be below the unpaired {math.hypot(est.stderr[4], est.stderr[1])}"
        " (common sequences)")


def test_head_similarity_peak_memory_is_within_the_estimate():
    """tracemalloc's peak stays under the per-head and per-offset counts of theory.sizes."""
    for heads, window in ((3, 3), (2, 6)):
        tokens = sample_sequences_np(PAPER_SOURCE, 500, 61, rng=np.random.default_rng(0))
        attention = copier_attention(ModelSpec(heads, window, 1))
        tracemalloc.start()
        try:
            head_similarity(tokens[:, :-1], attention)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        unit = 500 * 61 * sizes.FLOAT_BYTES
        estimate = unit * (sizes.COPIER_HEAD_ARRAYS * heads + sizes.COPIER_OFFSET_ARRAYS * window)
        assert peak <= estimate, f"(H, M) = ({heads}, {window}): peak {peak} B > estimate {estimate} B"


@pytest.mark.parametrize("attention,fragment", [
    (np.ones(3) / 3, "shape (H, M)"),
    (np.array([[0.5, 0.6], [0.5, 0.5]]), "rows summing to 1"),
    (np.array([[1.2, -0.2], [0.5, 0.5]]), "finite entries >= 0"),
    (np.array([[np.nan, 1.0], [0.5, 0.5]]), "finite entries >= 0"),
    ([["a", "b"]], "numbers"),
])
def test_bad_attention_is_refused(attention, fragment):
    ctx = np.zeros((2, 5), dtype=np.int64)
    with pytest.raises(InductionHeadsError, match=re.escape(fragment)):
        head_similarity(ctx, attention)


def test_bad_inputs_are_refused():
    att = exact_attention(2, 3)
    ctx = np.zeros((2, 5), dtype=np.int64)
    with pytest.raises(InductionHeadsError, match="heads in 1..H"):
        soft_context_similarity(ctx, (3,), att)
    with pytest.raises(InductionHeadsError, match="heads in 1..H"):
        copier_criterion(PAPER_SOURCE, [(1, 3)], 20, att, samples=10, rng=np.random.default_rng(0))
    with pytest.raises(InductionHeadsError, match="seq_len"):
        copier_criterion(PAPER_SOURCE, [(1, 2)], 2, att, samples=10, rng=np.random.default_rng(0))
    with pytest.raises(InductionHeadsError, match="rng"):
        copier_criterion(PAPER_SOURCE, [(1,)], 20, att, samples=10, rng=None)
    with pytest.raises(InductionHeadsError, match="rows"):
        check_attention(att[:1], heads=2)
    with pytest.raises(InductionHeadsError, match="window"):
        exact_attention(3, 2)
    # A float32 softmax read back as float64 is accepted.
    soft32 = torch.softmax(torch.randn(3, 4, generator=torch.Generator().manual_seed(0)), -1)
    assert np.all(np.abs(check_attention(soft32.numpy()).sum(axis=1) - 1) <= ATTENTION_SUM_ATOL)
