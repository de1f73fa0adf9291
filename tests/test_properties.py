"""Property tier: trained transformers reach the limit that `theory` predicts (issue 5).

For every drawn case (:mod:`tests.strategies`) the prediction ``theory.predict_limit`` is computed,
the transformer is trained stage-wise (the default schedule with longer selector and copier
stages, :data:`STAGE_STEPS`), and checks 1–5 of
``numerics.verify.job`` must pass: the selector on ``S*``, the copier heads of ``S*`` on their offsets,
the other heads near their init, ``a`` grown with the loss non-increasing, and the trained model
close to the generalized induction head with ``S*`` at the trained ``a``. Stage 1 trains the
selector against the *initial* copier; where the criterion measured at that copier ranks a set
other than ``S*`` first (the theorem assumes a copier close to exact), the property asserts
instead that the selector reaches that set, the replicator's limit for the G stage 1 sees, and
counts the case. A case is discarded
(``assume``) only when the prediction itself reports its margin as too small to call; those
discards are counted and shown in the session summary, where they must stay rare.

Joint training is outside the theorem: :func:`test_joint_training_agreement_is_recorded` records
whether it reaches the same limit, asserting only what must hold for any training run.

Tiers: ``slow`` (run by ``make test`` under the derandomised ``ci`` profile, :data:`CI_EXAMPLES`
cases plus the ``@example`` settings) and ``thorough`` (the same properties with the
``thorough`` profile's hundreds of cases, on a GPU when there is one). The environment variable
``INDUCTION_HEADS_PROPERTY_EXAMPLES`` overrides the number of drawn cases of both.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections import Counter

import numpy as np
import pytest
from hypothesis import Phase, assume, example, given, note, settings
from strategies import PAPER_CASE, SKIP_PARENT_CASE, WEAK_PARENT_CASE, Case, cases

from numerics.training import default_config
from numerics.verify.checks import SELECTOR_MIN
from numerics.verify.job import VerifyReport, verify_case

SEQUENCES = 2000
"""n: the default run's training sample; smaller n leaves more drawn rankings undecidable."""
SEQ_LEN = 100
"""L of the paper's experiments."""
HELDOUT = 1000
"""Held-out sequences for the GIH agreement check (TV standard error ~2e-3 against a 0.05 bound)."""
STAGE_STEPS = 400
"""Steps of the selector and copier stages (default schedule: 150). The replicator runs at rate
lr·a·(G_S* - G_S2)/ΣC²; near-deterministic chains (d=2, α=0.05) have small gaps and were measured
at c̃(S*) = 0.926 after 150 steps and 0.9988 after 400 (stage 3 keeps the default)."""
CI_EXAMPLES = 24
"""Drawn cases per property in the ci profile: >= 20 sources within the tier's 15-minute budget."""
JOINT_CI_EXAMPLES = 20
"""Drawn cases for the joint-training record in the ci profile (it asserts less, so fewer)."""
PHASES = (Phase.explicit, Phase.generate)
"""No shrinking: a case costs seconds of training, and the first failing case is reported whole."""
THEOREM_CHECKS = ("selector", "copier", "untouched_heads", "temperature", "gih_agreement")
"""Checks 1–5 of the verify job; check 6 (losses side by side) is a report, not a claim."""

TALLY: Counter[str] = Counter()
"""Outcome counts across the session, printed by ``conftest.pytest_terminal_summary``."""
STAGEWISE_RECORD: list[dict[str, object]] = []
"""One row per stage-wise case: source, predicted and learned sets, decidable, seconds."""
JOINT_RECORD: list[dict[str, object]] = []
"""One row per joint-training case: predicted and learned sets, whether checks 1–5 passed."""


THOROUGH = os.environ.get("HYPOTHESIS_PROFILE", "ci") == "thorough"
"""The profile conftest loaded: ``thorough`` takes its example count from the profile and runs on
CUDA when present; otherwise (``ci``) the counts below and the CPU."""


def _examples(ci: int) -> int:
    override = os.environ.get("INDUCTION_HEADS_PROPERTY_EXAMPLES")
    if override:
        return int(override)
    return settings.default.max_examples if THOROUGH else ci


def run_case(case: Case, mode: str) -> VerifyReport:
    """The verify job on one case, with the property tier's sizes and schedule."""
    config = default_config(mode, sequences=SEQUENCES, seq_len=SEQ_LEN,
                            device="auto" if THOROUGH else "cpu")
    if mode == "stagewise":
        stages = tuple(s if s.params == ("a",) else dataclasses.replace(s, steps=STAGE_STEPS)
                       for s in config.stages)
        config = dataclasses.replace(config, stages=stages)
    return verify_case(case.source, case.spec, seed=case.seed, config=config, heldout=HELDOUT)


def describe(case: Case, report: VerifyReport) -> str:
    """The case and its failed checks, predicted against measured, for a failure message."""
    p = report.prediction
    lines = [f"source {case.source.to_dict()}", f"model {case.spec.to_dict()}, seed {case.seed}",
             f"predicted S* = {p.selected_set} (runner-up {p.runner_up}, margin "
             f"{p.margin_se:.1f} SE), learned {report.learned['selected_set']}"]
    lines += [f"{c.name}: predicted {c.predicted}, measured {c.measured}, tolerance "
              f"{c.tolerance} ({c.note})" for c in report.checks
              if c.name in THEOREM_CHECKS and not c.passed]
    return "\n".join(lines + list(report.notes))


def _row(case: Case, report: VerifyReport) -> dict[str, object]:
    return {"source": case.source.to_dict(), "model": case.spec.to_dict(),
            "predicted": report.prediction.selected_set,
            "learned": tuple(report.learned["selected_set"]),
            "decidable": report.prediction.decidable, "seconds": report.seconds,
            "checks": {c.name: c.passed for c in report.checks}}


def _stage_one_choice(report: VerifyReport) -> tuple[int, ...]:
    """The set stage 1's replicator selects: argmax of ``G`` measured at the initial copier."""
    values = report.curves["selector"]["initial_criterion"]
    return report.prediction.sets[int(np.argmax(values))]


def _stagewise_property(case: Case) -> None:
    report = run_case(case, "stagewise")
    note(describe(case, report))
    STAGEWISE_RECORD.append(_row(case, report))
    if not report.prediction.decidable:
        TALLY["stagewise undecidable (discarded)"] += 1
        assume(False)
    stage1 = _stage_one_choice(report)
    if stage1 != report.prediction.selected_set:
        # The theorem's premise, a copier close enough to exact during stage 1, fails at this
        # initialisation: stage 1 follows G at the initial copier, whose argmax differs from S*.
        # The replicator still predicts the selector's limit, with that G: assert it, and count.
        TALLY["stagewise stage 1 follows the initial copier"] += 1
        weight = report.learned["selector_weights"][str(stage1)]
        assert weight >= SELECTOR_MIN, (
            f"predicted c̃ on {stage1} (argmax of G at the initial copier) >= {SELECTOR_MIN}, "
            f"measured {weight:.4f}\n" + describe(case, report))
        return
    failed = [report.check(name) for name in THEOREM_CHECKS if not report.check(name).passed]
    TALLY["stagewise failed" if failed else "stagewise passed"] += 1
    assert not failed, describe(case, report)


@pytest.mark.slow
@settings(max_examples=_examples(CI_EXAMPLES), phases=PHASES)
@example(PAPER_CASE)
@example(WEAK_PARENT_CASE)
@example(SKIP_PARENT_CASE)
@given(cases())
def test_stagewise_training_reaches_the_predicted_limit(case: Case) -> None:
    _stagewise_property(case)


@pytest.mark.thorough
@settings(max_examples=_examples(CI_EXAMPLES), phases=PHASES)
@given(cases())
def test_stagewise_training_reaches_the_predicted_limit_thorough(case: Case) -> None:
    _stagewise_property(case)


@pytest.mark.slow
@settings(max_examples=_examples(JOINT_CI_EXAMPLES), phases=PHASES)
@example(WEAK_PARENT_CASE)
@given(cases())
def test_joint_training_agreement_is_recorded(case: Case) -> None:
    report = run_case(case, "joint")
    learned = tuple(report.learned["selected_set"])
    predicted = report.prediction.selected_set
    JOINT_RECORD.append(_row(case, report))
    TALLY["joint same S*" if learned == predicted else "joint other set"] += 1
    # What any training run must do, inside the theorem or not: lower the training loss, and
    # predict held-out next tokens better than the uniform guess (loss log d).
    history = report.history
    assert history.loss[-1] < history.loss[0], describe(case, report)
    uniform = math.log(case.source.vocab_size)
    assert report.losses["model"] < uniform, (
        f"held-out loss {report.losses['model']:.4f} not below uniform {uniform:.4f}\n"
        + describe(case, report))
