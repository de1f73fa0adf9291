"""The callback's next-token view of a library model is probed against a given Bayes
predictive (``numerics.probing.callback``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from strategies import EXACT_KL_ATOL, LIMIT_A
from strategies import PROBE_D as D
from strategies import PROBE_L as L

from numerics import InductionHeadModel
from numerics.probing import probe
from numerics.probing.measure import BAYES_NEEDS_RNG
from theory import (
    PAPER_MODEL,
    InductionHeadsError,
    Mixture,
    MixtureComponent,
    Source,
    predict_limit,
)
from theory.predictors.bayes import bayes_predict_prior
from theory.predictors.reference import prediction_loss


def test_probe_scores_the_given_bayes_predictive(held_out):
    from numerics.probing.callback import next_token_model

    mixture = Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.7, 0.1),
                                         MixtureComponent((1, 2), 0.3, 0.1))))
    tokens = torch.as_tensor(held_out[0][:60])                              # (n, L+1)
    given = bayes_predict_prior(tokens[:, :-1].numpy(), mixture, rng=np.random.default_rng(3),
                                particles=64)                               # (n, d)
    lim = predict_limit(mixture, PAPER_MODEL, seq_len=L, samples=200, rng=np.random.default_rng(2))
    tf = InductionHeadModel.at_limit(PAPER_MODEL, D, selected_set=(1, 2), a=LIMIT_A,
                                     dtype=torch.float64)
    report = probe(next_token_model(tf), mixture, PAPER_MODEL, tokens=tokens, limit=lim,
                   bayes=given)
    assert "bayes" not in dict(report.absent), report.absent
    got = report.last.score("bayes").loss
    want = prediction_loss(given, tokens[:, -1].numpy())
    assert abs(got - want) <= EXACT_KL_ATOL, f"loss of the given Bayes predictive: {got} vs {want}"
    # Without it, the probe has no generator to draw the mixture's estimate with.
    undrawn = probe(next_token_model(tf), mixture, PAPER_MODEL, tokens=tokens, limit=lim)
    assert dict(undrawn.absent)["bayes"] == BAYES_NEEDS_RNG, undrawn.absent
    with pytest.raises(InductionHeadsError, match="bayes"):
        probe(next_token_model(tf), mixture, PAPER_MODEL, tokens=tokens, limit=lim,
              bayes=given[:10])

