"""The effective-set checks read the probe's verdict: a decided set must be S*, an undecided
ranking must keep S* within reach, and a model no GIH fits fails
(numerics.verify.probe_checks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from numerics import sample_sequences
from numerics.probing import DECIDED, NO_GIH_FITS, UNDECIDED, probe
from numerics.verify.probe_checks import check_effective_set, check_probe_agreement
from theory import PAPER_MODEL, PAPER_SOURCE, gih_predict, predict_limit

L, N = 60, 300
"""Context and held-out sequences: (1, 2) against (2, 3) by about 6 standard errors at N."""

TINY_SAMPLE = 4
"""Sequences that leave GIH(1, 2) and its runner-up within 3 standard errors."""

A = 6.0
"""Temperature of the GIH models."""


@pytest.fixture(scope="module")
def tokens() -> np.ndarray:
    return sample_sequences(PAPER_SOURCE, N, L + 1,
                            generator=torch.Generator().manual_seed(5)).numpy()


@pytest.fixture(scope="module")
def limit():
    return predict_limit(PAPER_SOURCE, PAPER_MODEL, seq_len=L, samples=500,
                         rng=np.random.default_rng(0))


def _gih(head_set: tuple[int, ...]):
    return lambda ctx: gih_predict(ctx, head_set, A, vocab_size=PAPER_SOURCE.vocab_size)


def _probe(model, tokens, limit):
    return probe(model, PAPER_SOURCE, PAPER_MODEL, tokens=tokens, limit=limit)


def test_a_decided_set_passes_only_when_it_is_s_star(tokens, limit):
    assert limit.selected_set == (1, 2)
    right = _probe(_gih((1, 2)), tokens, limit)
    wrong = _probe(_gih((1,)), tokens, limit)
    assert right.verdict == wrong.verdict == DECIDED, (right.verdict, wrong.verdict)
    check = check_effective_set(limit, right)
    assert check.passed and check.measured == [1, 2], (
        f"predicted pass with [1, 2], measured {check.passed} with {check.measured}")
    check = check_effective_set(limit, wrong)
    assert not check.passed and check.measured == [1], (
        f"predicted fail with [1], measured {check.passed} with {check.measured}")


def test_an_undecided_ranking_says_so(tokens, limit):
    report = _probe(_gih((1, 2)), tokens[:TINY_SAMPLE], limit)
    assert report.verdict == UNDECIDED, f"predicted undecided, measured {report.verdict}"
    check = check_effective_set(limit, report)
    assert check.passed and check.measured["verdict"] == UNDECIDED, (
        f"S* = (1, 2) within reach {report.within_reach}: predicted pass, undecided; measured "
        f"{check.passed}, {check.measured}")
    assert check.note.startswith("undecided"), check.note
    outside = [s for s in report.sets if s not in report.within_reach]
    assert outside, f"every set within reach: {report.within_reach}"
    ruled_out = check_probe_agreement(outside[0], report)
    assert not ruled_out.passed, (
        f"{outside[0]} is more than 3 SE behind the closest: predicted fail, measured "
        f"{ruled_out.passed} ({ruled_out.measured})")


def test_a_model_no_gih_fits_fails(tokens, limit):
    d = PAPER_SOURCE.vocab_size
    report = _probe(lambda ctx: np.full((len(ctx), d), 1.0 / d), tokens, limit)
    check = check_effective_set(limit, report)
    assert not check.passed and check.measured == {"verdict": NO_GIH_FITS}, (
        f"uniform model: predicted fail with {NO_GIH_FITS!r}, measured {check.passed} with "
        f"{check.measured}")
