"""Where the two sides meet without training: theory's closed forms against the torch model.

- The finite-length criterion G_L(S) (theory, counting formula in numpy) equals the autograd
  ``-∂loss/∂a`` at ``a = 0`` of the numerics model built at the exact copier with ``c̃`` one-hot on S,
  on the same sequences (docs/theory.md §3's derivation before its L → ∞ limit).
- The GIH predictor of ``theory.predictors.reference`` equals the limiting model's output at the same ``a``.
- The numpy and torch samplers draw the same law (pooled transition frequencies).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from numerics import InductionHeadModel, sample_sequences
from theory import PAPER_SOURCE, Dirichlet, ModelSpec, Source, head_sets
from theory.criterion.estimates import stage1_signal
from theory.predictors.reference import gih_predict
from theory.sources.sequences import sample_sequences_np

AUTOGRAD_ATOL = 1e-10
"""Counting formula vs autograd in float64: both exact up to round-off (seen ~1e-16)."""
GIH_ATOL = 1e-10
"""Two float64 implementations of the same softmax: round-off only."""
FREQ_SIGMAS = 5.0
"""Sampler laws compared within 5 binomial standard errors of the difference."""


@pytest.mark.parametrize("source,spec,seq_len", [
    (PAPER_SOURCE, ModelSpec(3, 3, 2), 40),
    (Source(4, (1, 3), Dirichlet(0.3)), ModelSpec(3, 4, 3), 30),
    (Source(2, (2,), Dirichlet(1.0)), ModelSpec(2, 2, 1), 25),
])
def test_finite_length_criterion_is_the_autograd_signal(source, spec, seq_len):
    tokens = sample_sequences_np(source, 300, seq_len + 1, rng=np.random.default_rng(7))
    torch_tokens = torch.from_numpy(tokens)
    for head_set in head_sets(spec.heads, spec.degree):
        predicted = stage1_signal(tokens, head_set).mean()
        model = InductionHeadModel.at_limit(spec, source.vocab_size, selected_set=head_set, a=0.0,
                                            dtype=torch.float64)
        (grad_a,) = torch.autograd.grad(model.loss(torch_tokens), [model.a])
        measured = -grad_a.item()
        assert abs(predicted - measured) < AUTOGRAD_ATOL, (
            f"S={head_set}: G_L by counting {predicted:.12f} vs -dloss/da {measured:.12f}")


@pytest.mark.parametrize("a", [0.0, 0.7, 4.0, 25.0])
def test_gih_predictor_equals_limiting_model(a):
    tokens = sample_sequences_np(PAPER_SOURCE, 200, 60, rng=np.random.default_rng(1))
    model = InductionHeadModel.at_limit(ModelSpec(3, 3, 2), 3, selected_set=(1, 2), a=a,
                                        dtype=torch.float64)
    measured = model(torch.from_numpy(tokens)).detach().numpy()
    predicted = gih_predict(tokens, (1, 2), a, vocab_size=3)
    err = np.abs(measured - predicted).max()
    assert err < GIH_ATOL, f"a={a}: GIH {predicted[:2]} vs model {measured[:2]}"


def test_numpy_and_torch_samplers_draw_the_same_law():
    source = Source(3, (1, 2), Dirichlet(0.5))
    n, length = 4000, 12
    a = sample_sequences_np(source, n, length, rng=np.random.default_rng(0))
    b = sample_sequences(source, n, length, generator=torch.Generator().manual_seed(0)).numpy()

    def pooled(tokens):  # law of (x_{l-2}, x_{l-1}, x_l) over the last 8 positions
        idx = tokens[:, 2:] + 3 * tokens[:, 1:-1] + 9 * tokens[:, :-2]
        return np.bincount(idx[:, -8:].ravel(), minlength=27) / idx[:, -8:].size

    pa, pb = pooled(a), pooled(b)
    # Sequences are independent, positions are not: use a per-sequence effective count of 1.
    se = np.sqrt((pa * (1 - pa) + pb * (1 - pb)) / n)
    assert np.all(np.abs(pa - pb) <= FREQ_SIGMAS * se + 1e-12), f"numpy {pa}\ntorch {pb}"
