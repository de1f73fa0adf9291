"""Per-position reference predictors: equal to the last-position ones on every prefix, valid rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from theory.errors import InductionHeadsError
from theory.predictors.positional import (
    ADDITIVE_SMOOTHING,
    bayes_predict_positions,
    first_valid_position,
    gih_from_counts,
    gih_predict_positions,
    last_match_counts,
    match_counts,
    oracle_predict_positions,
    unigram_predict_positions,
    valid_positions,
)
from theory.predictors.reference import bayes_predict, gih_predict, oracle_predict
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import PAPER_SOURCE

MATCH_ATOL = 1e-12
"""Counts-based and softmax-based predictions do the same float64 sums in another order."""

SUM_ATOL = 1e-12
"""Rows are normalised by one float64 division: off from 1 by a few ulps."""

SETS = [(), (1,), (2,), (1, 2), (2, 3), (1, 3)]
TEMPERATURES = [0.0, 0.7, 5.0, math.inf]
D = PAPER_SOURCE.vocab_size


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray]:
    """40 paper-source sequences of 30 tokens with their kernels (float64)."""
    return sample_sequences_np(PAPER_SOURCE, 40, 30, rng=np.random.default_rng(11),
                               return_kernels=True)


def _max_prefix_gap(per_position: np.ndarray, reference, first: int) -> float:
    """max over valid l of |per_position[:, l-1] - reference(l)|."""
    T = per_position.shape[1]
    return max(float(np.abs(per_position[:, l - 1] - reference(l)).max())
               for l in range(first, T + 1))


@pytest.mark.parametrize("head_set", SETS)
@pytest.mark.parametrize("a", TEMPERATURES)
def test_gih_positions_equal_gih_predict_on_every_prefix(sample, head_set, a):
    tokens, _ = sample
    out = gih_predict_positions(tokens, head_set, a, vocab_size=D)  # (n, T, d)
    first = first_valid_position(head_set)
    last_gap = float(np.abs(out[:, -1] - gih_predict(tokens, head_set, a, vocab_size=D)).max())
    assert last_gap <= MATCH_ATOL, f"S={head_set} a={a}: last position differs by {last_gap}"
    gap = _max_prefix_gap(out, lambda l: gih_predict(tokens[:, :l], head_set, a, vocab_size=D),
                          first)
    assert gap <= MATCH_ATOL, f"S={head_set} a={a}: some prefix differs by {gap}"
    assert np.isnan(out[:, : first - 1]).all(), "rows before the first valid position are NaN"
    sums = out[:, first - 1:].sum(axis=-1)
    assert np.abs(sums - 1).max() <= SUM_ATOL, f"row sums {sums.min()}..{sums.max()}"


def test_bayes_positions_equal_bayes_predict_on_every_prefix(sample):
    tokens, _ = sample
    out = bayes_predict_positions(tokens, (1, 2), 0.1, vocab_size=D)
    last_gap = float(np.abs(out[:, -1] - bayes_predict(tokens, (1, 2), 0.1, vocab_size=D)).max())
    assert last_gap <= MATCH_ATOL, f"last position differs by {last_gap}"
    gap = _max_prefix_gap(out, lambda l: bayes_predict(tokens[:, :l], (1, 2), 0.1, vocab_size=D),
                          2)
    assert gap <= MATCH_ATOL, f"some prefix differs by {gap}"
    assert np.isnan(out[:, 0]).all(), "l = 1 < r = 2 has no parent context"


def test_oracle_positions_equal_oracle_predict_on_every_prefix(sample):
    tokens, kernels = sample
    out = oracle_predict_positions(tokens, (1, 2), kernels)
    gap = _max_prefix_gap(out, lambda l: oracle_predict(tokens[:, :l], (1, 2), kernels), 2)
    assert gap == 0.0, f"the oracle is a lookup, yet a prefix differs by {gap}"
    assert np.isnan(out[:, 0]).all()


def test_unigram_positions_are_smoothed_counts(sample):
    tokens, _ = sample
    out = unigram_predict_positions(tokens, vocab_size=D)  # β = ADDITIVE_SMOOTHING
    beta = ADDITIVE_SMOOTHING
    for l in (1, 7, tokens.shape[1]):
        counts = np.stack([(tokens[:, :l] == e).sum(axis=1) for e in range(D)], axis=1)
        expected = (counts + beta) / (l + D * beta)
        assert np.abs(out[:, l - 1] - expected).max() <= MATCH_ATOL, f"l={l}"
    plain = unigram_predict_positions(tokens, vocab_size=D, smoothing=0.0)
    empty_set = gih_predict_positions(tokens, (), 3.0, vocab_size=D)
    assert np.abs(plain - empty_set).max() <= MATCH_ATOL, "β = 0 is the GIH of the empty set"


def test_smoothed_infinite_gih_is_pseudo_counts_over_the_matches(sample):
    tokens, _ = sample
    beta = 0.25
    out = gih_predict_positions(tokens, (1, 2), math.inf, vocab_size=D, smoothing=beta)
    matched, seen = match_counts(tokens, (1, 2), vocab_size=D)
    base = np.where(matched.sum(-1, keepdims=True) > 0, matched, seen)
    expected = (base + beta) / (base.sum(-1, keepdims=True) + D * beta)
    assert np.abs(out[:, 1:] - expected[:, 1:]).max() <= MATCH_ATOL
    assert (out[:, 1:] > 0).all(), "β > 0 gives every token mass"


def test_last_match_counts_are_the_last_row(sample):
    tokens, _ = sample
    for head_set in SETS:
        matched, seen = match_counts(tokens, head_set, vocab_size=D)
        last_m, last_s = last_match_counts(tokens, head_set, vocab_size=D)
        assert np.array_equal(last_m, matched[:, -1]) and np.array_equal(last_s, seen[:, -1]), \
            f"S={head_set}"


def test_chunked_counts_equal_one_chunk():
    """T = 400 puts 26 sequences in a chunk, so 40 sequences take two chunks."""
    tokens = sample_sequences_np(PAPER_SOURCE, 40, 400, rng=np.random.default_rng(3))
    out = gih_predict_positions(tokens, (1, 2), 2.0, vocab_size=D)
    for rows in (slice(0, 20), slice(20, 40)):
        part = gih_predict_positions(tokens[rows], (1, 2), 2.0, vocab_size=D)
        assert np.array_equal(np.nan_to_num(out[rows]), np.nan_to_num(part))
    gap = float(np.abs(out[:, -1] - gih_predict(tokens, (1, 2), 2.0, vocab_size=D)).max())
    assert gap <= MATCH_ATOL, f"last position differs by {gap}"


def test_gih_at_zero_is_the_unigram_for_every_set(sample):
    """Integer counts make W = seen exactly at a = 0: every set gives the same floats."""
    tokens, _ = sample
    ref = gih_predict_positions(tokens, (), 0.0, vocab_size=D)[:, 2:]
    for head_set in SETS[1:]:
        out = gih_predict_positions(tokens, head_set, 0.0, vocab_size=D)[:, 2:]
        assert np.array_equal(out, ref), f"S={head_set}"


def test_valid_positions():
    assert first_valid_position(()) == 1 and first_valid_position((3, 1)) == 3
    assert valid_positions((1, 2), 4).tolist() == [False, True, True, True]


@pytest.mark.parametrize("call", [
    lambda t: gih_predict_positions(t, (1, 31), 1.0, vocab_size=D),   # offset beyond T
    lambda t: gih_predict_positions(t, (1,), -1.0, vocab_size=D),     # negative a
    lambda t: gih_predict_positions(t, (1,), math.nan, vocab_size=D),  # NaN a
    lambda t: gih_predict_positions(t, (1,), 1.0, vocab_size=D, smoothing=-0.5),
    lambda t: gih_predict_positions(t, (1,), 1.0, vocab_size=2),      # tokens outside [d]
    lambda t: gih_predict_positions(t.astype(float), (1,), 1.0, vocab_size=D),
    lambda t: bayes_predict_positions(t, (), 0.1, vocab_size=D),      # no parents
    lambda t: bayes_predict_positions(t, (1, 2), 0.0, vocab_size=D),  # alpha = 0
    lambda t: gih_from_counts(np.ones((2, 3)), np.ones((2, 4)), 1.0),  # count shapes differ
])
def test_bad_inputs_raise(sample, call):
    tokens, _ = sample
    with pytest.raises(InductionHeadsError):
        call(tokens)
