"""The probe's verdict on the effective set: decided past DECIDABLE_Z paired standard errors,
undecided with the sets within reach, or no GIH fits (numerics.probing.scoring)."""

from __future__ import annotations

import json
import math

import numpy as np
from strategies import LIMIT_A, gih_model, probe_paper
from strategies import PROBE_D as D

from numerics.probing import (
    DECIDED,
    GIH_FIT_MAX_KL,
    NO_GIH_FITS,
    UNDECIDED,
    ProbeReport,
)
from theory import DECIDABLE_Z
from theory.predictors.positional import last_match_counts

TINY_SAMPLE = 4
"""Sequences of the undecided case: four sequences cannot tell GIH(1, 2) from GIH(1, 2, 3) at
3 standard errors (their KLs to GIH(1, 2) differ only where the third offset changes the
match, on a few keys)."""

MIXED_UNIFORM = 0.5
"""Weight of the uniform law mixed into GIH(1, 2): the mixture is closer to GIH(1, 2) than to
the unigram, yet farther than GIH_FIT_MAX_KL from every GIH."""


def _smoothed_unigram(ctx: np.ndarray) -> np.ndarray:
    """The probe's own in-context unigram reference (β = 0.5), ``(n, L) -> (n, d)``."""
    seen = last_match_counts(ctx, (), vocab_size=D)[1] + 0.5  # (n, d)
    return seen / seen.sum(axis=-1, keepdims=True)


def _uniform(ctx: np.ndarray) -> np.ndarray:
    return np.full((len(ctx), D), 1.0 / D)


def test_a_clear_case_decides(held_out, limit):
    report = probe_paper(gih_model((1, 2), LIMIT_A), held_out, limit)
    eff = report.last.effective
    assert report.verdict == DECIDED and eff.margin_se >= DECIDABLE_Z, (
        f"GIH(1, 2) at a = {LIMIT_A}: predicted decided past {DECIDABLE_Z} SE, measured "
        f"{report.verdict} by {eff.margin_se:.3g} SE over {eff.runner_up}")
    assert report.effective_set == (1, 2) and eff.within_reach == ((1, 2),), (
        f"predicted (1, 2) alone within reach, measured {report.effective_set}, "
        f"{eff.within_reach}")
    assert report.fits_gih and report.agrees_with_theory is True
    assert report.summary().startswith("effective set (1, 2)"), report.summary()


def test_a_tiny_sample_leaves_the_set_undecided(held_out, limit):
    tokens, kernels = held_out
    report = probe_paper(gih_model((1, 2), LIMIT_A), (tokens[:TINY_SAMPLE], kernels[:TINY_SAMPLE]),
                         limit)
    eff = report.last.effective
    assert report.verdict == UNDECIDED and eff.margin_se < DECIDABLE_Z, (
        f"{TINY_SAMPLE} sequences: predicted undecided, measured {report.verdict} with "
        f"runner-up {eff.runner_up} by {eff.margin_se:.3g} SE")
    assert report.effective_set is None and report.agrees_with_theory is None
    assert eff.head_set == (1, 2), f"the closest set is kept: predicted (1, 2), measured {eff}"
    assert eff.within_reach[0] == (1, 2) and eff.runner_up in eff.within_reach, (
        f"within reach: predicted (1, 2) first and the runner-up {eff.runner_up}, measured "
        f"{eff.within_reach}")
    assert "effective set undecided" in report.summary() and "within reach" in report.summary()
    back = ProbeReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert back == report and back.last.effective.within_reach == eff.within_reach


def test_the_unigram_and_the_uniform_law_fit_no_gih(held_out, limit):
    for name, model in (("unigram", _smoothed_unigram), ("uniform", _uniform)):
        report = probe_paper(model, held_out, limit)
        eff = report.last.effective
        assert report.verdict == NO_GIH_FITS and not report.fits_gih, (
            f"{name}: predicted {NO_GIH_FITS!r}, measured {report.verdict!r} (closest "
            f"{eff.head_set} at KL {eff.kl:.3g}, {eff.unigram_margin_se:.3g} SE closer than "
            "the unigram)")
        assert report.effective_set is None and report.agrees_with_theory is False
        assert report.summary().startswith("no GIH fits"), report.summary()


def test_a_model_far_from_every_gih_fits_none(held_out, limit):
    gih = gih_model((1, 2), LIMIT_A)
    report = probe_paper(lambda ctx: (1 - MIXED_UNIFORM) * gih(ctx) + MIXED_UNIFORM / D,
                         held_out, limit)
    eff = report.last.effective
    assert eff.head_set == (1, 2) and eff.unigram_margin_se >= DECIDABLE_Z, (
        f"predicted closest (1, 2), well ahead of the unigram; measured {eff.head_set}, "
        f"{eff.unigram_margin_se:.3g} SE")
    assert eff.kl > GIH_FIT_MAX_KL and report.verdict == NO_GIH_FITS, (
        f"predicted KL above {GIH_FIT_MAX_KL} and {NO_GIH_FITS!r}; measured KL {eff.kl:.3g}, "
        f"{report.verdict!r}")


def test_summary_shows_the_attention_read_out_with_heads_from_one(held_out, limit):
    n, L = held_out[0].shape[0], held_out[0].shape[1] - 1
    pattern = np.zeros((n, 2, L, L))  # (n, heads, L, L): head 1 on offset 1, head 2 on offset 2
    q = np.arange(L)
    for head, offset in ((0, 1), (1, 2)):
        pattern[:, head, q, np.where(q >= offset, q - offset, q)] = 1.0
    report = probe_paper(gih_model((1, 2), math.inf), held_out, limit,
                         attention={"first": pattern})
    assert [o.head for o in report.offsets] == [1, 2], "heads from 1"
    assert [m.head for m in report.matches] == [1, 2], "heads from 1"
    text = report.summary()
    for line in ("first head 1: peak offset 1 (mass 1)", "first head 2: peak offset 2 (mass 1)",
                 "first head 2: match on S* = (1, 2)"):
        assert line in text, f"expected {line!r} in the summary:\n{text}"
    assert "head 0" not in text, text
    data = report.to_dict()
    assert [o["head"] for o in data["offsets"]] == [1, 2], data["offsets"]
