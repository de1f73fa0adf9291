"""Laws of the numpy samplers under Switching and FiniteMixture priors (docs/theory.md §1).

Each sequence draws a structure (which parent set, which chain), then its kernel given the
structure. Checked here: the structure frequencies, the kernel of each structure (constant along
the parents outside its ``P_j``, rows of the component's law), a finite mixture's chains from its
seed and its JSON forms, the stationary start, that single-structure priors draw the tokens of
the order kernels, start tokens, transitions (no structure draw), and the validation messages.
"""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from theory import (
    PAPER_SOURCE,
    WEAK_PARENT_SOURCE,
    FiniteMixture,
    Fixed,
    InductionHeadsError,
    Source,
    Switching,
    SwitchingComponent,
    kernel_atoms,
    load_source,
    mean_kernel,
    sample_kernels,
    sample_sequences_np,
    sample_structures,
    window_law,
)

LAW_SE = 3.0
"""A frequency or moment of a few numbers (structure weights, one Dirichlet row) must lie within
3 standard errors of the law: the project's decision rule. The draws are seeded."""

ENTRYWISE_SE = 4.5
"""The bound for a whole table at once (kernel rows, a window law: 9 to 81 entries): at 3 SE one
of 81 entries would stray about once in five seeds; at 4.5 SE the family-wise rate is 6e-4."""

CYCLE = np.array([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]])
"""A fixed first-order kernel on d = 3 (every entry positive, so every context recurs)."""

SWITCHING = Source(3, (1, 2, 3), Switching((
    SwitchingComponent((1,), 0.2, alpha=1.0),
    SwitchingComponent((3,), 0.3, kernel=CYCLE),
    SwitchingComponent((1, 2), 0.5, alpha=0.3))))
"""Three structures: Dirichlet rows on {1}, a fixed kernel on {3}, Dirichlet rows on {1, 2}."""

FINITE = Source(3, (1,), FiniteMixture.draw(3, 1.0, seed=4, vocab_size=3, order=1,
                                            weights=(0.5, 0.3, 0.2)))
"""Three first-order chains drawn once from Dirichlet(1) rows."""

N = 20_000
"""Kernels / structures per law check: a frequency of 0.2 then has a standard error of 0.003."""

SINGLE_STRUCTURE_DIGESTS = {
    ("paper", "uniform"): "34128f94d55490d3",
    ("weak-parent", "uniform"): "a726beb4a485dd78",
    ("weak-parent", "stationary"): "225fc3c44a240535",
    ("bigram", "uniform"): "2d1c3db6d6133f1b",
    ("bigram", "stationary"): "c1b0ab0355f89ab3",
}
"""SHA-256 (first 16 hex digits) of the int64 tokens of ``sample_sequences_np(source, 64, 30,
rng=default_rng(5), start=...)``, as the samplers of commit a14acdf draw them (kernels, start
tokens, transitions, with no structure draw): a prior with one structure draws exactly these."""

BIGRAM = Source(2, (1,), Fixed([[0.9, 0.1], [0.2, 0.8]]))
SINGLE = {"paper": PAPER_SOURCE, "weak-parent": WEAK_PARENT_SOURCE, "bigram": BIGRAM}


def _digest(tokens: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(tokens).astype("<i8").tobytes()).hexdigest()[:16]


def _assert_frequencies(counts: np.ndarray, law: np.ndarray, label: str,
                        bound: float = ENTRYWISE_SE) -> None:
    """Each row of ``counts`` ``(m, c)`` matches the row of ``law`` within ``bound`` binomial SEs."""
    totals = counts.sum(-1, keepdims=True)  # (m, 1)
    seen = totals[:, 0] > 0
    freq = counts[seen] / totals[seen]
    se = np.sqrt(law[seen] * (1.0 - law[seen]) / totals[seen])
    err = np.abs(freq - law[seen])
    worst = np.unravel_index(np.argmax(err / np.maximum(se, 1e-300)), err.shape)
    assert np.all(err <= bound * se + 1e-12), (
        f"{label}: measured {freq[worst]:.4f}, predicted {law[seen][worst]:.4f} "
        f"(N = {int(totals[seen][worst[0], 0])}, {bound} SE = {bound * se[worst]:.4f})")


def _transition_counts(tokens: np.ndarray, parents: tuple[int, ...], d: int) -> np.ndarray:
    """``N(z, e)`` pooled over sequences and positions, ``(d^k, d)``, z flat in P order."""
    r, T = max(parents), tokens.shape[1]
    z = np.zeros((tokens.shape[0], T - r), dtype=np.int64)  # (n, T-r)
    for p in parents:
        z = z * d + tokens[:, r - p: T - p]
    k = len(parents)
    return np.bincount((z * d + tokens[:, r:]).ravel(),
                       minlength=d ** (k + 1)).reshape(d ** k, d)


# ------------------------------------------------------------------------------ structures
@pytest.mark.parametrize("source", [SWITCHING, FINITE], ids=["switching", "finite-mixture"])
def test_structure_frequencies_match_the_weights(source):
    structures = sample_structures(source, N, rng=np.random.default_rng(0))  # (N,)
    weights = np.array([c.weight for c in source.prior.components]
                       if isinstance(source.prior, Switching) else source.prior.weights)
    counts = np.bincount(structures, minlength=len(weights))[None]  # (1, J)
    _assert_frequencies(counts, weights[None], f"structures of {type(source.prior).__name__}",
                        LAW_SE)


def test_single_structure_priors_draw_no_structure():
    rng = np.random.default_rng(1)
    before = rng.bit_generator.state
    for source in SINGLE.values():
        assert np.array_equal(sample_structures(source, 7, rng=rng), np.zeros(7, np.int64))
    assert rng.bit_generator.state == before, "a one-structure draw consumed randomness"


@pytest.mark.parametrize("key", sorted(SINGLE_STRUCTURE_DIGESTS))
def test_single_structure_priors_draw_the_reference_tokens(key):
    name, start = key
    tokens = sample_sequences_np(SINGLE[name], 64, 30, rng=np.random.default_rng(5), start=start)
    assert _digest(tokens) == SINGLE_STRUCTURE_DIGESTS[key], (
        f"{name}, {start} start: token digest {_digest(tokens)}, predicted "
        f"{SINGLE_STRUCTURE_DIGESTS[key]}")


# -------------------------------------------------------------------------- switching kernels
def test_switching_kernels_depend_only_on_their_own_parent_set():
    structures = sample_structures(SWITCHING, 300, rng=np.random.default_rng(2))
    kernels = sample_kernels(SWITCHING, 300, rng=np.random.default_rng(3),
                             structures=structures)  # (n, z1, z2, z3, e)
    axes = {1: 1, 2: 2, 3: 3}  # offset → kernel axis
    for j, comp in enumerate(SWITCHING.prior.components):
        own = kernels[structures == j]
        assert len(own) > 0, f"no sequence drew structure {j}"
        for offset, axis in axes.items():
            first = np.take(own, [0], axis=axis)
            spread = float(np.max(np.abs(own - first)))
            if offset in comp.parents:
                assert spread > 0.05 or comp.kernel is not None and spread > 0.5, (
                    f"structure {j}: kernel constant along its own parent {offset}")
            else:
                assert spread == 0.0, (f"structure {j} on {comp.parents}: kernel varies by "
                                       f"{spread} along offset {offset}")


@pytest.mark.parametrize("j", [0, 2])
def test_switching_dirichlet_rows_have_the_component_mean_and_variance(j):
    comp, d = SWITCHING.prior.components[j], 3
    structures = np.full(N, j, dtype=np.int64)
    kernels = sample_kernels(SWITCHING, N, rng=np.random.default_rng(4 + j),
                             structures=structures)
    rows = kernels[(slice(None),) + (0,) * 3].reshape(N, d)  # (N, d): one row per kernel
    var_exact = (1.0 / d) * (1.0 - 1.0 / d) / (d * comp.alpha + 1.0)
    mean, var = rows.mean(0), rows.var(0, ddof=1)
    se_mean = np.sqrt(var_exact / N)
    se_var = np.sqrt(np.mean((rows - mean) ** 4, 0) - var ** 2) / np.sqrt(N)
    assert np.all(np.abs(mean - 1.0 / d) <= LAW_SE * se_mean), (
        f"component {j}: mean {mean}, predicted {1 / d:.4f} ± {LAW_SE}·{se_mean:.2g}")
    assert np.all(np.abs(var - var_exact) <= LAW_SE * se_var), (
        f"component {j}: variance {var}, predicted {var_exact:.5f} ± {LAW_SE}·{se_var}")


def test_switching_fixed_component_is_its_kernel_everywhere():
    kernels = sample_kernels(SWITCHING, 5, rng=np.random.default_rng(5),
                             structures=np.full(5, 1, dtype=np.int64))  # (5, z1, z2, z3, e)
    expected = np.broadcast_to(CYCLE[None, None, None], (5, 3, 3, 3, 3))  # along z3 only
    assert np.array_equal(kernels, expected), "the fixed component's kernel is not its table"


def test_kernels_mean_is_the_weighted_mean_kernel():
    kernels = sample_kernels(SWITCHING, N, rng=np.random.default_rng(6))
    se = kernels.std(0) / np.sqrt(N)
    err = np.abs(kernels.mean(0) - mean_kernel(SWITCHING))
    worst = np.unravel_index(np.argmax(err / se), err.shape)
    assert np.all(err <= ENTRYWISE_SE * se), (f"mean kernel at {worst}: measured "
                                        f"{kernels.mean(0)[worst]:.4f}, predicted "
                                        f"{mean_kernel(SWITCHING)[worst]:.4f}")


# --------------------------------------------------------------------------- finite mixtures
def test_finite_mixture_kernels_come_from_the_seed_and_survive_json():
    drawn = FiniteMixture.draw(5, 0.5, seed=11, vocab_size=3, order=2)
    again = FiniteMixture.draw(5, 0.5, seed=11, vocab_size=3, order=2)
    other = FiniteMixture.draw(5, 0.5, seed=12, vocab_size=3, order=2)
    assert np.array_equal(drawn.kernels, again.kernels), "same seed, different kernels"
    assert not np.array_equal(drawn.kernels, other.kernels), "different seeds, same kernels"
    source = Source(3, (1, 2), drawn)
    text = json.dumps(source.to_dict())
    assert json.loads(text)["prior"].keys() == {"kind", "count", "alpha", "seed", "weights"}
    back = load_source(json.loads(text))
    assert back == source and np.array_equal(back.prior.kernels, drawn.kernels)
    explicit = Source(3, (1, 2), FiniteMixture(drawn.kernels, drawn.weights))
    back = load_source(json.loads(json.dumps(explicit.to_dict())))
    assert np.array_equal(back.prior.kernels, drawn.kernels), "explicit kernels changed in JSON"


def test_finite_mixture_sequences_use_their_chain():
    tokens, kernels, structures = sample_sequences_np(
        FINITE, 3000, 40, rng=np.random.default_rng(7), return_kernels=True,
        return_structures=True)
    assert np.array_equal(kernels, FINITE.prior.kernels[structures])
    for i in range(FINITE.prior.count):
        counts = _transition_counts(tokens[structures == i], (1,), 3)  # (3, 3)
        _assert_frequencies(counts, FINITE.prior.kernels[i], f"chain {i}")
    atoms = kernel_atoms(FINITE)
    assert atoms is not None and np.array_equal(atoms[0], FINITE.prior.kernels)
    assert np.array_equal(atoms[1], np.array(FINITE.prior.weights))


@pytest.mark.parametrize("source", [SWITCHING, FINITE], ids=["switching", "finite-mixture"])
def test_stationary_start_is_each_sequence_s_own_stationary_law(source):
    """The first ``r`` tokens pooled over sequences follow the structure-weighted mixture of the
    drawn kernels' stationary window laws."""
    n, r = 6000, source.max_parent  # each kernel costs a stationary solve on d^r states
    tokens, kernels = sample_sequences_np(source, n, r + 1, rng=np.random.default_rng(8),
                                          start="stationary", return_kernels=True)
    laws = window_law(kernels, source.parents, r + 1).sum(axis=1)  # (n,) + (d,)*r
    law = laws.reshape(n, -1).mean(0)  # (d^r,): the pooled law, a mean over drawn kernels
    flat = np.ravel_multi_index(tuple(tokens[:, :r].T), (3,) * r)  # (n,)
    counts = np.bincount(flat, minlength=law.size)[None]
    _assert_frequencies(counts, law[None], f"start tokens of {type(source.prior).__name__}")


# ------------------------------------------------------------------------------- validation
BAD = [
    (lambda: Switching((SwitchingComponent((1,), 0.5, alpha=1.0),
                        SwitchingComponent((2,), 0.4, alpha=1.0))),
     "switching weights: expected weights summing to 1", "0.9"),
    (lambda: Source(3, (1, 2), Switching((SwitchingComponent((3,), 1.0, alpha=1.0),))),
     "component parents: expected a subset of the source parents (1, 2)", "(3,)"),
    (lambda: SwitchingComponent((1,), 1.0, alpha=1.0, kernel=CYCLE),
     "expected exactly one of alpha (Dirichlet rows) and kernel", "alpha=1.0, kernel=given"),
    (lambda: SwitchingComponent((1,), 1.0),
     "expected exactly one of alpha (Dirichlet rows) and kernel", "alpha=None, kernel=None"),
    (lambda: SwitchingComponent((1, 2), 1.0, kernel=CYCLE),
     "component kernel: expected 3 axes for parents (1, 2)", "(3, 3)"),
    (lambda: Source(2, (1,), Switching((SwitchingComponent((1,), 1.0, kernel=CYCLE),))),
     "component kernel: expected shape (2, 2) for d=2", "(3, 3)"),
    (lambda: FiniteMixture(np.stack([CYCLE, CYCLE]), weights=(0.2, 0.3, 0.5)),
     "finite-mixture weights: expected 2 weights", "(0.2, 0.3, 0.5)"),
    (lambda: FiniteMixture(np.stack([CYCLE, CYCLE]), weights=(0.2, 0.3)),
     "finite-mixture weights: expected weights summing to 1", "0.5"),
    (lambda: Source(3, (1, 2), FiniteMixture(np.stack([CYCLE, CYCLE]))),
     "finite-mixture kernels: expected shape (2, 3, 3, 3) (N kernels) for d=3", "(2, 3, 3)"),
]


@pytest.mark.parametrize("make, expected, received", BAD,
                         ids=["weights", "parents", "both", "neither", "axes", "shape",
                              "weight-count", "weight-sum", "kernels-shape"])
def test_bad_structured_priors_raise_naming_expected_and_received(make, expected, received):
    with pytest.raises(InductionHeadsError) as info:
        make()
    message = str(info.value)
    assert re.search(re.escape(expected), message), f"expected {expected!r} in {message!r}"
    assert "received" in message and received in message, (
        f"received {received!r} missing from {message!r}")
