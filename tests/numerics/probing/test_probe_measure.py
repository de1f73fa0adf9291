"""The probe reads exact GIH and Bayes predictors as themselves, fits their temperatures, scores
per-position predictions and given or drawn references, and refuses bad model outputs
(``numerics.probing.measure`` and ``scoring``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from strategies import (
    CLEAR_MARGIN_SE,
    EXACT_KL_ATOL,
    TEMPERATURE_ATOL,
    gih_model,
    probe_paper,
    probe_raises,
)
from strategies import PROBE_D as D
from strategies import PROBE_L as L
from strategies import PROBE_N as N

from numerics.probing import probe
from numerics.probing.measure import BAYES_NEEDS_RNG
from theory import (
    PAPER_MODEL,
    PAPER_SOURCE,
    InductionHeadsError,
    Mixture,
    MixtureComponent,
    Source,
    bayes_predict,
    gih_predict,
    predict_limit,
)
from theory.predictors.bayes import bayes_predict_prior
from theory.predictors.positional import gih_predict_positions
from theory.predictors.probabilities import check_probabilities


@pytest.mark.parametrize("head_set", [(1, 2), (1,)])
def test_exact_gih_function_reads_as_its_set(held_out, limit, head_set):
    report = probe_paper(gih_model(head_set, math.inf), held_out, limit)
    eff = report.last.effective
    assert eff.head_set == head_set, f"effective {eff.head_set}, model's set {head_set}"
    assert eff.kl <= EXACT_KL_ATOL, f"KL to its own GIH {eff.kl}"
    assert eff.margin_se >= CLEAR_MARGIN_SE, f"margin {eff.margin_se} SE over {eff.runner_up}"
    assert report.selected_set == limit.selected_set == (1, 2)
    assert report.agrees_with_theory == (head_set == (1, 2))
    assert report.parents == (1, 2)


def test_finite_temperature_is_recovered(held_out, limit):
    report = probe_paper(gih_model((1, 2), 3.0), held_out, limit)
    score = report.last.score("gih(1, 2)")
    assert abs(score.temperature - 3.0) <= TEMPERATURE_ATOL, f"fitted a = {score.temperature}"
    assert score.kl <= EXACT_KL_ATOL and report.last.closest == "gih(1, 2)"


def test_bayes_predictor_is_recognised(held_out, limit):
    report = probe_paper(lambda ctx: bayes_predict(ctx, (1, 2), 0.1, vocab_size=D), held_out, limit)
    assert report.last.closest == "bayes"
    assert report.last.score("bayes").kl <= EXACT_KL_ATOL


def test_per_position_scores_read_the_set(held_out, limit):
    def per_position(ctx):
        out = gih_predict_positions(ctx, (1, 2), math.inf, vocab_size=D)
        return np.nan_to_num(out, nan=1.0 / D)  # rows before l0 are not scored

    report = probe_paper(gih_model((1, 2), math.inf), held_out, limit, per_position=per_position)
    table = report.positions
    assert (table.first_position, table.last_position) == (3, L)
    assert table.effective.head_set == (1, 2) and table.effective.kl <= EXACT_KL_ATOL
    assert table.score("bayes").kl > 0 and table.closest == "gih(1, 2)"


def test_absent_references_are_reported(held_out, limit):
    mixture = Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.7, 0.1),
                                         MixtureComponent((1, 2), 0.3, 0.1))))
    tokens = held_out[0][:60]
    report = probe(gih_model((1,), math.inf), mixture, PAPER_MODEL, tokens=tokens,
                   rng=np.random.default_rng(2), limit_samples=200)
    names = [s.name for s in report.last.scores]
    assert "bayes" in names and "oracle" not in names, names  # the rng draws the estimate
    assert dict(report.absent).keys() == {"oracle"}
    # Without an rng the mixture's particle-filter estimate cannot be drawn: absent, with why.
    undrawn = probe(gih_model((1,), math.inf), mixture, PAPER_MODEL, tokens=tokens,
                    limit=predict_limit(mixture, PAPER_MODEL, seq_len=L, samples=200,
                                        rng=np.random.default_rng(2)))
    absent = dict(undrawn.absent)
    assert "bayes" not in [s.name for s in undrawn.last.scores]
    assert absent.keys() == {"bayes", "oracle"} and absent["bayes"] == BAYES_NEEDS_RNG, absent


def test_precomputed_bayes_scores_the_last_position(held_out, limit):
    mixture = Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.7, 0.1),
                                         MixtureComponent((1, 2), 0.3, 0.1))))
    tokens = held_out[0][:60]
    given = bayes_predict_prior(tokens[:, :-1], mixture, rng=np.random.default_rng(3),
                                particles=64)
    lim = predict_limit(mixture, PAPER_MODEL, seq_len=L, samples=200, rng=np.random.default_rng(2))
    report = probe(lambda ctx: given, mixture, PAPER_MODEL, tokens=tokens, limit=lim,
                   bayes=given)
    assert report.last.closest == "bayes" and report.last.score("bayes").kl <= EXACT_KL_ATOL
    positions = probe(lambda ctx: given, mixture, PAPER_MODEL, tokens=tokens, limit=lim,
                      bayes=given, per_position=np.full((60, L, D), 1.0 / D))
    assert dict(positions.absent)["bayes per position"] == BAYES_NEEDS_RNG
    drawn = probe(lambda ctx: given, mixture, PAPER_MODEL, tokens=tokens, limit=lim,
                  rng=np.random.default_rng(4), per_position=np.full((60, L, D), 1.0 / D))
    assert "bayes" in [s.name for s in drawn.positions.scores]
    assert "bayes" not in dict(drawn.absent) and "bayes per position" not in dict(drawn.absent)


def test_drawn_sequences_and_batches(limit):
    kwargs = {"n": 50, "seq_len": L, "limit": limit}
    one = probe(gih_model((1, 2), math.inf), PAPER_SOURCE, PAPER_MODEL,
                generator=torch.Generator().manual_seed(9), **kwargs)
    batched = probe(gih_model((1, 2), math.inf), PAPER_SOURCE, window=3, degree=2, batch_size=7,
                    generator=torch.Generator().manual_seed(9), **kwargs)
    assert one == batched, "the same seed and sizes give the same report in batches"
    assert one.last.score("oracle").kl > 0
    wider = probe(gih_model((1, 2), math.inf), PAPER_SOURCE, PAPER_MODEL, sets=[(3, 2, 1), (2, 1)],
                  generator=torch.Generator().manual_seed(9), **kwargs)
    assert wider.sets == ((1, 2, 3), (1, 2)) and wider.last.effective.head_set == (1, 2)
    assert wider.last.effective.runner_up == (1, 2, 3)


# ------------------------------------------------------------------------------ bad input

def test_negative_probabilities_are_refused(held_out, limit):
    def negative(ctx):
        p = gih_predict(ctx, (1,), 1.0, vocab_size=D)
        p[0] = [1.2, -0.1, -0.1]
        return p

    probe_raises(r"probabilities >= 0, received -0\.1", negative, held_out, limit)


def test_logits_passed_as_probabilities_are_refused(held_out, limit):
    logits = lambda ctx: np.log(gih_predict(ctx, (1,), 1.0, vocab_size=D) + 0.1) + 3.0  # noqa: E731
    probe_raises("these look like logits; pass them through softmax or use the logits adapter",
            logits, held_out, limit)
    probe_raises("look like logits", lambda ctx: 3 * gih_predict(ctx, (1,), 1.0, vocab_size=D),
            held_out, limit)


def test_wrong_shapes_are_refused(held_out, limit):
    tokens, kernels = held_out
    probs = gih_model((1,), 1.0)
    probe_raises(r"axis 0 is n = 300.*\(299, 3\)", lambda ctx: probs(ctx)[1:], held_out, limit)
    probe_raises(r"shape \(n=300, d=3\).*\(300,\)", lambda ctx: probs(ctx)[:, 0], held_out, limit)
    probe_raises(r"d \(the vocabulary\) = 3.*\(300, 4\)",
            lambda ctx: np.full((len(ctx), 4), 0.25), held_out, limit)
    probe_raises(r"shape \(n=300, L=60, d=3\).*\(300, 61, 3\)", probs, held_out, limit,
            per_position=np.full((N, L + 1, D), 1.0 / D))
    probe_raises("sequences 0..99", lambda ctx: probs(ctx)[:, :2], held_out, limit, batch_size=100)
    probe_raises("an array or tensor", lambda ctx: (probs(ctx), {}), held_out, limit)
    with pytest.raises(InductionHeadsError, match=r"shape \(n, L\+1=61\).*\(300, 62\)"):
        probe(probs, PAPER_SOURCE, PAPER_MODEL, tokens=np.zeros((N, L + 2), dtype=np.int64),
              seq_len=L, limit=limit)
    with pytest.raises(InductionHeadsError, match=r"tokens in 0\.\.2.*tokens in 3\.\.3"):
        probe(probs, PAPER_SOURCE, PAPER_MODEL, tokens=np.full((N, L + 1), 3), limit=limit)
    with pytest.raises(InductionHeadsError, match="kernels"):
        probe(probs, PAPER_SOURCE, PAPER_MODEL, tokens=tokens, kernels=kernels[:, :2],
              limit=limit)
    with pytest.raises(InductionHeadsError, match=r"limit\.seq_len"):
        probe(probs, PAPER_SOURCE, PAPER_MODEL, tokens=tokens[:, :L], limit=limit)


def test_check_probabilities_directly():
    good = np.full((4, 3), 1 / 3)
    assert check_probabilities(good, n=4, vocab_size=3).dtype == np.float64
    assert check_probabilities(np.full((4, 5, 3), 1 / 3), positions=5).shape == (4, 5, 3)
    with pytest.raises(InductionHeadsError, match="finite"):
        check_probabilities(np.where(good > 0, np.nan, 0.0))
    with pytest.raises(InductionHeadsError, match=r"summing to 1 within 0\.0001.*0\.995") as err:
        check_probabilities(good * 0.995)
    assert "logits" not in str(err.value), "a nearly normalised row gets no logits hint"
    with pytest.raises(InductionHeadsError, match=r"axis 1 is L \(positions\) = 6"):
        check_probabilities(np.full((4, 5, 3), 1 / 3), positions=6)
    with pytest.raises(InductionHeadsError, match="dtype"):
        check_probabilities(np.array([["a", "b"]]))

