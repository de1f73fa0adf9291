"""Reference predictors: normalisation, loop references, hand counts, the loss and its a-derivative."""

from __future__ import annotations

import math

import numpy as np
import pytest

from theory.errors import InductionHeadsError
from theory.predictors.reference import (
    LOSS_FLOOR,
    bayes_predict,
    context_similarity,
    gih_loss_and_grad,
    gih_objective,
    gih_predict,
    optimal_temperature,
    oracle_predict,
    per_sequence_loss,
    prediction_loss,
)
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import PAPER_SOURCE

SUM_ATOL = 1e-12
"""Rows are normalised by one division in float64: off from 1 by a few ulps."""

LOOP_ATOL = 1e-12
"""Vectorised and loop references do the same float64 sums in a different order."""

LARGE_A = 60.0
"""At a = 60 the non-matching weight is e^-60 ≈ 1e-26 per position: indistinguishable from a = ∞."""

LIMIT_ATOL = 1e-20
"""|GIH(a=60) - GIH(∞)| <= L e^-60 ≈ 1e-24 for L <= 100."""

FD_STEP = 1e-5
"""Central-difference step in a: truncation O(h²) ≈ 1e-10, round-off O(eps/h) ≈ 1e-11."""

FD_ATOL = 1e-7
"""Agreement of the analytic ∂ℓ/∂a with the central difference (both errors far below this)."""

ASTAR_GRAD_ATOL = 1e-6
"""∂ℓ/∂a at the bounded-Brent minimiser (xatol 1e-6, curvature O(0.1)): ≈ 1e-7 at most."""

ASTAR_LOG_SLOPE_TOL = 0.5
"""a*(400) - a*(25) against ln 16 ≈ 2.77 with n = 10000: sampling noise measured ≈ 0.2."""


def _random_context(n: int, L: int, d: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, d, size=(n, L))


def _loop_similarity(ctx_row: np.ndarray, parents: tuple[int, ...]) -> np.ndarray:
    """Direct transcription of s_l = Π_h 1{l-h >= 1 and x_{l-h} = x_{L+1-h}} (1-based x)."""
    L = len(ctx_row)
    x = {t: int(ctx_row[t - 1]) for t in range(1, L + 1)}
    s = np.ones(L)
    for l in range(1, L + 1):
        for h in parents:
            if not (l - h >= 1 and x[l - h] == x[L + 1 - h]):
                s[l - 1] = 0.0
    return s


def _loop_gih(ctx: np.ndarray, parents: tuple[int, ...], a: float, d: int) -> np.ndarray:
    out = np.zeros((ctx.shape[0], d))
    for i, row in enumerate(ctx):
        s = _loop_similarity(row, parents)
        if math.isinf(a):
            match = [l for l in range(len(row)) if s[l] == 1.0]
            use = match if match else list(range(len(row)))
            for l in use:
                out[i, row[l]] += 1.0 / len(use)
        else:
            w = [math.exp(a * s[l]) for l in range(len(row))]
            for l in range(len(row)):
                out[i, row[l]] += w[l] / sum(w)
    return out


def _loop_bayes(ctx: np.ndarray, parents: tuple[int, ...], alpha: float, d: int) -> np.ndarray:
    out = np.zeros((ctx.shape[0], d))
    r = max(parents)
    for i, row in enumerate(ctx):
        L = len(row)
        zq = tuple(row[L - p] for p in parents)  # x_{L+1-p} is 0-based column L-p
        counts = np.zeros(d)
        for l in range(r + 1, L + 1):  # transitions with all parents inside the context
            if tuple(row[l - 1 - p] for p in parents) == zq:
                counts[row[l - 1]] += 1
        out[i] = (counts + alpha) / (counts.sum() + d * alpha)
    return out


@pytest.mark.parametrize("parents", [(), (1,), (2,), (1, 2), (1, 3), (2, 3)])
def test_similarity_matches_loop(parents: tuple[int, ...]) -> None:
    ctx = _random_context(12, 15, 2, seed=1)
    got = context_similarity(ctx, parents)
    want = np.stack([_loop_similarity(row, parents) for row in ctx])
    assert np.array_equal(got, want), f"similarity differs at {np.argwhere(got != want)[:5]}"


@pytest.mark.parametrize("a", [0.0, 0.7, 5.0, math.inf])
@pytest.mark.parametrize("parents", [(1,), (1, 2), (2, 3)])
def test_gih_matches_loop_and_sums_to_one(parents: tuple[int, ...], a: float) -> None:
    d = 3
    ctx = _random_context(20, 18, d, seed=2)
    got = gih_predict(ctx, parents, a, vocab_size=d)
    want = _loop_gih(ctx, parents, a, d)
    assert got.shape == (20, d)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=SUM_ATOL)
    np.testing.assert_allclose(got, want, rtol=0, atol=LOOP_ATOL,
                               err_msg=f"GIH(a={a}, S={parents}) vs loop reference")


def test_gih_large_finite_a_approaches_infinite_a() -> None:
    d = 3
    ctx = _random_context(200, 100, d, seed=3)
    finite = gih_predict(ctx, (1, 2), LARGE_A, vocab_size=d)
    limit = gih_predict(ctx, (1, 2), math.inf, vocab_size=d)
    worst = float(np.max(np.abs(finite - limit)))
    assert worst <= LIMIT_ATOL, f"|GIH(a={LARGE_A}) - GIH(inf)| = {worst:.3g} > {LIMIT_ATOL}"
    # and huge finite a neither overflows nor produces NaN
    huge = gih_predict(ctx, (1, 2), 1e6, vocab_size=d)
    assert np.array_equal(huge, limit), "GIH(a=1e6) should equal GIH(inf) exactly"


def test_gih_infinite_a_without_match_is_uniform_over_positions() -> None:
    # S = (1,): query context x_L = 2 never occurs before position L, so no position matches
    ctx = np.array([[0, 1, 0, 0, 1, 2]])
    got = gih_predict(ctx, (1,), math.inf, vocab_size=3)
    np.testing.assert_allclose(got, [[3 / 6, 2 / 6, 1 / 6]], rtol=0, atol=SUM_ATOL)


def test_bayes_hand_counted_bigram() -> None:
    # L = 7, P = (1,), z* = x_7 = 0; transitions out of 0: (l=2 -> 1), (l=5 -> 1), (l=7 -> 0)
    ctx = np.array([[0, 1, 1, 0, 1, 0, 0]])
    got = bayes_predict(ctx, (1,), 0.5, vocab_size=2)
    want = np.array([[(1 + 0.5) / (3 + 1.0), (2 + 0.5) / (3 + 1.0)]])
    np.testing.assert_allclose(got, want, rtol=0, atol=SUM_ATOL)


def test_bayes_hand_counted_trigram() -> None:
    # P = (1, 2), d = 3: z* = (x_L, x_{L-1}) = (1, 0); positions l with (x_{l-1}, x_{l-2}) = (1, 0):
    # x = 0 1 2 0 1 1 0 1  ->  l=3 (x=2), l=6 (x=1); the query context (x_8, x_7) = (1, 0)
    ctx = np.array([[0, 1, 2, 0, 1, 1, 0, 1]])
    got = bayes_predict(ctx, (1, 2), 0.1, vocab_size=3)
    want = np.array([[0.1, 1.1, 1.1]]) / (2 + 0.3)
    np.testing.assert_allclose(got, want, rtol=0, atol=SUM_ATOL)


@pytest.mark.parametrize("parents", [(1,), (1, 2), (1, 3)])
def test_bayes_matches_loop_and_sums_to_one(parents: tuple[int, ...]) -> None:
    d = 3
    ctx = _random_context(25, 30, d, seed=4)
    got = bayes_predict(ctx, parents, 0.1, vocab_size=d)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=SUM_ATOL)
    np.testing.assert_allclose(got, _loop_bayes(ctx, parents, 0.1, d), rtol=0, atol=LOOP_ATOL)


def test_oracle_uses_the_query_row() -> None:
    d, n = 3, 2
    rng = np.random.default_rng(5)
    kernels = rng.dirichlet(np.ones(d), size=(n, d, d))  # (n, d, d, d), axes: x_{l-1}, x_{l-2}, x_l
    # sequence 0: x_L = 0, x_{L-1} = 2 -> row [0, 0, 2]; sequence 1: x_L = 1, x_{L-1} = 1 -> [1, 1, 1]
    ctx = np.array([[1, 2, 2, 0], [0, 0, 1, 1]])
    got = oracle_predict(ctx, (1, 2), kernels)
    np.testing.assert_array_equal(got[0], kernels[0, 0, 2])
    np.testing.assert_array_equal(got[1], kernels[1, 1, 1])
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=SUM_ATOL)


def test_oracle_on_sampled_sequences_beats_bayes() -> None:
    tokens, kernels = sample_sequences_np(PAPER_SOURCE, 4000, 101, rng=np.random.default_rng(6),
                                          return_kernels=True)
    ctx, y = tokens[:, :100], tokens[:, 100]
    oracle = prediction_loss(oracle_predict(ctx, (1, 2), kernels), y)
    bayes = prediction_loss(bayes_predict(ctx, (1, 2), 0.1, vocab_size=3), y)
    gih = prediction_loss(gih_predict(ctx, (1, 2), math.inf, vocab_size=3), y)
    # the oracle knows π; Bayes is the optimal predictor given the context, GIH an approximation
    assert oracle < bayes < gih, f"expected oracle < bayes < GIH, got {oracle}, {bayes}, {gih}"


def test_loss_floor_and_value() -> None:
    probs = np.array([[0.25, 0.75], [1.0, 0.0]])
    per = per_sequence_loss(probs, np.array([1, 1]))
    np.testing.assert_allclose(per, [-math.log(0.75), -math.log(LOSS_FLOOR)], rtol=1e-15)
    assert prediction_loss(probs, np.array([1, 1])) == pytest.approx(per.mean(), rel=1e-15)


@pytest.mark.parametrize("a", [0.3, 2.0, 8.0, 25.0])
def test_gih_loss_matches_predict_and_finite_difference(a: float) -> None:
    d = 3
    tokens = sample_sequences_np(PAPER_SOURCE, 500, 41, rng=np.random.default_rng(7))
    ctx, y = tokens[:, :40], tokens[:, 40]
    objective = gih_objective(ctx, y, (1, 2), vocab_size=d)
    loss, grad = objective(a)
    direct = prediction_loss(gih_predict(ctx, (1, 2), a, vocab_size=d), y)
    assert loss == pytest.approx(direct, rel=1e-12), f"objective {loss} vs predict {direct}"
    fd = (objective(a + FD_STEP)[0] - objective(a - FD_STEP)[0]) / (2 * FD_STEP)
    assert abs(grad - fd) <= FD_ATOL, f"analytic dℓ/da {grad} vs finite difference {fd}"
    assert gih_loss_and_grad(ctx, y, (1, 2), a, vocab_size=d) == (loss, grad)


def test_absent_target_contributes_zero_gradient() -> None:
    # target 2 never occurs in the context: loss at the floor, derivative 0 for every a
    ctx = np.array([[0, 1, 0, 1, 0, 1]])
    for a in (0.0, 1.0, 10.0):
        loss, grad = gih_loss_and_grad(ctx, np.array([2]), (1,), a, vocab_size=3)
        assert loss == pytest.approx(-math.log(LOSS_FLOOR)) and grad == 0.0


def test_optimal_temperature_is_a_stationary_minimum() -> None:
    tokens = sample_sequences_np(PAPER_SOURCE, 2000, 101, rng=np.random.default_rng(8))
    ctx, y = tokens[:, :100], tokens[:, 100]
    a_star = optimal_temperature(ctx, y, (1, 2), vocab_size=3)
    objective = gih_objective(ctx, y, (1, 2), vocab_size=3)
    loss, grad = objective(a_star)
    assert 0.5 < a_star < 59.5, f"a* = {a_star} should be interior"
    assert abs(grad) <= ASTAR_GRAD_ATOL, f"dℓ/da at a* = {a_star}: {grad}"
    grid = [objective(a)[0] for a in np.linspace(0, 60, 61)]
    assert loss <= min(grid) + 1e-12, f"ℓ(a*) = {loss} above grid minimum {min(grid)}"


@pytest.mark.slow
def test_optimal_temperature_grows_like_log_length() -> None:
    """a*(L) ≈ ln L + const: the non-matching positions act as a pseudo-count (L-N)e^{-a}/d."""
    rng = np.random.default_rng(9)
    a_star = {}
    for L in (25, 100, 400):
        tokens = sample_sequences_np(PAPER_SOURCE, 10000, L + 1, rng=rng)
        a_star[L] = optimal_temperature(tokens[:, :L], tokens[:, L], (1, 2), vocab_size=3)
    assert a_star[25] < a_star[100] < a_star[400], f"a*(L) not increasing: {a_star}"
    rise = a_star[400] - a_star[25]
    assert abs(rise - math.log(16)) <= ASTAR_LOG_SLOPE_TOL, (
        f"a*(400) - a*(25) = {rise:.3f}, predicted ln 16 = {math.log(16):.3f}; a* = {a_star}")


@pytest.mark.parametrize(
    "call",
    [
        lambda: gih_predict(np.zeros((2, 3, 1), dtype=int), (1,), 1.0, vocab_size=2),
        lambda: gih_predict(np.array([[0, 5]]), (1,), 1.0, vocab_size=2),
        lambda: gih_predict(np.array([[0.0, 1.0]]), (1,), 1.0, vocab_size=2),
        lambda: gih_predict(np.array([[0, 1]]), (3,), 1.0, vocab_size=2),
        lambda: gih_predict(np.array([[0, 1]]), (1,), -1.0, vocab_size=2),
        lambda: gih_predict(np.array([[0, 1]]), (1,), float("nan"), vocab_size=2),
        lambda: bayes_predict(np.array([[0, 1]]), (1,), 0.0, vocab_size=2),
        lambda: oracle_predict(np.array([[0, 1]]), (1,), np.full((2, 2, 2), 0.5)),
        lambda: oracle_predict(np.array([[0, 1]]), (2, 1), np.full((1, 2, 2, 2), 0.5)),
        lambda: prediction_loss(np.full((2, 2), 0.5), np.array([0, 2])),
        lambda: optimal_temperature(np.array([[0, 1]]), np.array([0]), (1,), vocab_size=2,
                                    bounds=(5.0, 1.0)),
    ],
)
def test_bad_input_raises(call) -> None:
    with pytest.raises(InductionHeadsError, match="expected"):
        call()


@pytest.mark.parametrize("transform, fragment", [
    (lambda p: 3 * p, "look like logits"),
    (lambda p: p - 0.5, "probabilities >= 0"),
    (lambda p: p[:, :2] * np.array([1.0, 0.5]), "sum"),
    (lambda p: np.log(p + 1e-9), "look like logits"),
])
def test_prediction_loss_refuses_what_is_not_a_probability(transform, fragment):
    """A loss of non-probabilities is meaningless (3·probs once gave a negative loss)."""
    probs = np.full((4, 3), 1 / 3)
    targets = np.array([0, 1, 2, 0])
    with pytest.raises(InductionHeadsError, match=fragment):
        prediction_loss(transform(probs), targets)
