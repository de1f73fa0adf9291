"""The torch sampler under Switching and FiniteMixture priors: the law numpy's sampler has.

Checked: structure frequencies, switching kernels constant along the parents outside their own
``P_j`` with rows of the component's law, transition frequencies per structure equal between
torch and numpy (and equal to the structure's kernel), the stationary start, and single-structure
priors drawing exactly the tokens the sampler draws with no structure draw.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch

from numerics.data import draw_kernels, draw_structures, sample_sequences
from theory import (
    PAPER_SOURCE,
    WEAK_PARENT_SOURCE,
    FiniteMixture,
    Fixed,
    Source,
    Switching,
    SwitchingComponent,
    sample_sequences_np,
    window_law,
)

LAW_SE = 3.0
"""A frequency or moment of a few numbers must lie within 3 standard errors of the law (the
project's decision rule); the draws are seeded."""

ENTRYWISE_SE = 4.5
"""The bound for a whole table at once (9 to 27 entries): at 4.5 SE the family-wise rate of a
27-entry table is below 2e-4, where 3 SE would let one entry stray in one seed of fourteen."""

CYCLE = np.array([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1]])
STICKY = np.array([[0.7, 0.2, 0.1], [0.15, 0.7, 0.15], [0.1, 0.2, 0.7]])

FIXED_SWITCHING = Source(3, (1, 2, 3), Switching((
    SwitchingComponent((1,), 0.25, kernel=CYCLE),
    SwitchingComponent((2,), 0.35, kernel=STICKY),
    SwitchingComponent((3,), 0.4, kernel=CYCLE))))
"""Selective lags with fixed kernels: per structure the transitions follow one known table."""

SWITCHING = Source(3, (1, 2), Switching((
    SwitchingComponent((1,), 0.6, alpha=0.5),
    SwitchingComponent((2,), 0.4, kernel=STICKY))))

FINITE = Source(3, (1, 2), FiniteMixture.draw(3, 1.0, seed=2, vocab_size=3, order=2,
                                              weights=(0.2, 0.3, 0.5)))

N = 20_000

SINGLE_STRUCTURE_DIGESTS = {
    ("paper", "uniform"): "6ad678a6e2e96e85",
    ("weak-parent", "uniform"): "78180b604742fece",
    ("weak-parent", "stationary"): "fc7f58ef659f60bb",
    ("bigram", "uniform"): "ce3394e433693389",
    ("bigram", "stationary"): "c3ef12936a904790",
}
"""SHA-256 (first 16 hex digits) of the int64 tokens of ``sample_sequences(source, 64, 30,
generator=manual_seed(5), start=...)`` on the CPU, as the sampler of commit a14acdf draws them
(no structure draw): a prior with one structure draws exactly these."""

BIGRAM = Source(2, (1,), Fixed([[0.9, 0.1], [0.2, 0.8]]))
SINGLE = {"paper": PAPER_SOURCE, "weak-parent": WEAK_PARENT_SOURCE, "bigram": BIGRAM}


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _counts(tokens: np.ndarray, parents: tuple[int, ...], r: int, d: int) -> np.ndarray:
    """``N(z, e)`` on the offsets ``parents`` over the transitions ``t > r``: ``(d^k, d)``."""
    T = tokens.shape[1]
    z = np.zeros((tokens.shape[0], T - r), dtype=np.int64)  # (n, T-r)
    for p in parents:
        z = z * d + tokens[:, r - p: T - p]
    k = len(parents)
    return np.bincount((z * d + tokens[:, r:]).ravel(),
                       minlength=d ** (k + 1)).reshape(d ** k, d)


def _z_scores(counts_a: np.ndarray, counts_b: np.ndarray) -> np.ndarray:
    """Differences of two independent frequency tables in units of their pooled binomial SE."""
    na, nb = counts_a.sum(-1, keepdims=True), counts_b.sum(-1, keepdims=True)
    fa, fb = counts_a / na, counts_b / nb
    pooled = (counts_a + counts_b) / (na + nb)
    se = np.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
    return np.abs(fa - fb) / np.maximum(se, 1e-300)


@pytest.mark.parametrize("source", [FIXED_SWITCHING, FINITE], ids=["switching", "finite-mixture"])
def test_torch_structure_frequencies_match_the_weights(source):
    structures = draw_structures(source, N, generator=_gen(0)).numpy()  # (N,)
    weights = (np.array([c.weight for c in source.prior.components])
               if isinstance(source.prior, Switching) else np.array(source.prior.weights))
    freq = np.bincount(structures, minlength=len(weights)) / N
    se = np.sqrt(weights * (1 - weights) / N)
    assert np.all(np.abs(freq - weights) <= LAW_SE * se), (
        f"structure frequencies {freq.round(4)}, predicted {weights} ± {LAW_SE} SE {se.round(4)}")


def test_single_structure_priors_draw_no_structure_in_torch():
    gen = _gen(1)
    before = gen.get_state().clone()
    for source in SINGLE.values():
        assert torch.equal(draw_structures(source, 5, generator=gen), torch.zeros(5, dtype=torch.int64))
    assert torch.equal(gen.get_state(), before), "a one-structure draw consumed randomness"


@pytest.mark.parametrize("key", sorted(SINGLE_STRUCTURE_DIGESTS))
def test_single_structure_priors_draw_the_reference_tokens_in_torch(key):
    name, start = key
    tokens = sample_sequences(SINGLE[name], 64, 30, generator=_gen(5), start=start).numpy()
    digest = hashlib.sha256(tokens.astype("<i8").tobytes()).hexdigest()[:16]
    assert digest == SINGLE_STRUCTURE_DIGESTS[key], (
        f"{name}, {start} start: token digest {digest}, predicted {SINGLE_STRUCTURE_DIGESTS[key]}")


def test_torch_switching_kernels_are_constant_off_their_parent_set_with_the_component_law():
    structures = draw_structures(SWITCHING, N, generator=_gen(2))
    kernels = draw_kernels(SWITCHING, N, generator=_gen(3), structures=structures).numpy()
    s = structures.numpy()
    lag1, lag2 = kernels[s == 0], kernels[s == 1]  # (n_j, z1, z2, e)
    assert float(np.max(np.abs(lag1 - lag1[:, :, :1]))) == 0.0, "the {1} kernel varies along z2"
    assert float(np.max(np.abs(lag2 - lag2[:, :1]))) == 0.0, "the {2} kernel varies along z1"
    assert np.array_equal(lag2[:, 0], np.broadcast_to(STICKY, (len(lag2), 3, 3))), (
        "the fixed component's kernel is not its table")
    rows = lag1[:, 0, 0]  # (n_0, d): Dirichlet(0.5) rows
    d, alpha, m = 3, 0.5, len(rows)
    var_exact = (1 / d) * (1 - 1 / d) / (d * alpha + 1)
    mean, var = rows.mean(0), rows.var(0, ddof=1)
    se_var = np.sqrt(np.mean((rows - mean) ** 4, 0) - var ** 2) / math.sqrt(m)
    assert np.all(np.abs(mean - 1 / d) <= LAW_SE * math.sqrt(var_exact / m)), (
        f"Dirichlet(0.5) row mean {mean}, predicted {1 / d:.4f}")
    assert np.all(np.abs(var - var_exact) <= LAW_SE * se_var), (
        f"Dirichlet(0.5) row variance {var}, predicted {var_exact:.5f} ± {LAW_SE}·{se_var}")


@pytest.mark.parametrize("source", [FIXED_SWITCHING, FINITE], ids=["switching", "finite-mixture"])
def test_numpy_and_torch_transition_frequencies_agree_per_structure(source):
    n, length, d, r = 4000, 40, source.vocab_size, source.max_parent
    tok_t, st_t = sample_sequences(source, n, length, generator=_gen(4), return_structures=True)
    tok_n, st_n = sample_sequences_np(source, n, length, rng=np.random.default_rng(4),
                                      return_structures=True)
    tok_t, st_t = tok_t.numpy(), st_t.numpy()
    fixed = isinstance(source.prior, Switching)
    for j in range(len(source.prior.components) if fixed else source.prior.count):
        parents = source.prior.components[j].parents if fixed else source.parents
        table = (source.prior.components[j].kernel if fixed
                 else source.prior.kernels[j]).reshape(-1, d)  # (d^k_j, d)
        a = _counts(tok_t[st_t == j], parents, r, d)
        b = _counts(tok_n[st_n == j], parents, r, d)
        z = _z_scores(a, b)
        assert float(z.max()) <= ENTRYWISE_SE, (
            f"structure {j}: torch {(a / a.sum(-1, keepdims=True)).round(3).tolist()}, numpy "
            f"{(b / b.sum(-1, keepdims=True)).round(3).tolist()} ({z.max():.1f} SE apart)")
        for label, counts in (("torch", a), ("numpy", b)):
            freq = counts / counts.sum(-1, keepdims=True)
            se = np.sqrt(table * (1 - table) / counts.sum(-1, keepdims=True))
            worst = float(np.max(np.abs(freq - table) / se))
            assert worst <= ENTRYWISE_SE, (
                f"structure {j}, {label}: frequencies {freq.round(3).tolist()}, predicted "
                f"{table.round(3).tolist()} ({worst:.1f} SE)")


@pytest.mark.parametrize("source", [SWITCHING, FINITE], ids=["switching", "finite-mixture"])
def test_torch_stationary_start_is_each_sequence_s_own_stationary_law(source):
    r, d = source.max_parent, source.vocab_size
    tokens, kernels = sample_sequences(source, N, r + 1, generator=_gen(6), start="stationary",
                                       return_kernels=True, dtype=torch.float64)
    laws = window_law(kernels.numpy(), source.parents, r + 1).sum(axis=1)  # (N,) + (d,)*r
    law = laws.reshape(N, -1).mean(0)  # (d^r,)
    flat = np.ravel_multi_index(tuple(tokens[:, :r].numpy().T), (d,) * r)  # (N,)
    freq = np.bincount(flat, minlength=law.size) / N
    se = np.sqrt(law * (1 - law) / N)
    worst = int(np.argmax(np.abs(freq - law) / se))
    assert np.all(np.abs(freq - law) <= ENTRYWISE_SE * se), (
        f"start window {np.unravel_index(worst, (d,) * r)}: measured {freq[worst]:.4f}, "
        f"predicted {law[worst]:.4f} ± {ENTRYWISE_SE}·{se[worst]:.4f}")
