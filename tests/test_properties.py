"""Property tier: trained transformers reach the limit that `theory` predicts.

For every drawn case (:mod:`tests.strategies`) the prediction ``theory.predict_limit`` is computed,
the transformer is trained stage-wise (the default schedule with longer selector and copier
stages, :data:`STAGE_STEPS`), and checks 1–5 of
``numerics.verify.job`` must pass: the selector on ``S*``, the copier heads of ``S*`` on their offsets,
the other heads near their init, ``a`` grown with the loss non-increasing, and the trained model
close to the generalized induction head with ``S*`` at the trained ``a``. Stage 1 trains the
selector against the *initial* copier; where theory's criterion at that copier
(``LimitPrediction.stage1_set``, computed from the spec's initialisation without a torch model)
ranks a set other than ``S*`` first (the theorem assumes a copier close to exact), the property
asserts instead that the selector reaches that set, the replicator's limit for the G stage 1
sees, and counts the case. A case is discarded (``assume``) only when the prediction itself
reports a margin too small to call (of ``S*``, or of that stage-1 set when it differs from
``S*``); those discards are counted and shown in the session summary, where they must stay rare.

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

import pytest
from hypothesis import HealthCheck, Phase, assume, example, given, note, settings
from strategies import PAPER_CASE, SKIP_PARENT_CASE, WEAK_PARENT_CASE, Case, cases

from numerics.training import default_config
from numerics.verify import VerifyReport, verify_case
from numerics.verify.checks import SELECTOR_MIN
from theory import head_set_label

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
CI_EXAMPLES = 20
"""Drawn cases per property in the ci profile: 20 sources (and the ``@example`` settings), about
8 minutes of one worker, inside ``make test``'s 20-minute budget beside everything else."""
JOINT_CI_EXAMPLES = 16
"""Drawn cases for the joint-training record in the ci profile (it asserts less, so fewer)."""
PHASES = (Phase.explicit, Phase.generate)
"""No shrinking: a case costs seconds of training, and the first failing case is reported whole."""
THEOREM_CHECKS = ("selector", "copier", "untouched_heads", "temperature", "gih_agreement")
"""Checks 1–5 of the verify job; check 6 (losses side by side) is a report, not a claim."""
LOGGING = (HealthCheck.function_scoped_fixture,)
"""The property tests take pytest's ``request`` only to attach each case's row to the report;
nothing in it is reset between hypothesis examples, so sharing it across them is intended."""

CASE_PROPERTY = "property_case"
"""Name under which every case's row is attached to the test's report (``user_properties``), so
the session summary of ``conftest.py`` reads them in the controlling process, also under
pytest-xdist."""


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
    return verify_case(case.source, case.spec, seed=case.seed, config=config, heldout=HELDOUT,
                       probe_history=False)


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


def _log(request: pytest.FixtureRequest, mode: str, case: Case, report: VerifyReport,
         outcome: str) -> None:
    """Attach the case's row (plain JSON types) to the running test's report."""
    row = {"mode": mode, "outcome": outcome, "source": case.source.to_dict(),
           "model": case.spec.to_dict(),
           "predicted": list(report.prediction.selected_set),
           "learned": list(report.learned["selected_set"]),
           "decidable": bool(report.prediction.decidable), "seconds": float(report.seconds),
           "checks": {c.name: bool(c.passed) for c in report.checks}}
    request.node.user_properties.append((CASE_PROPERTY, row))


def _stage_one_choice(report: VerifyReport) -> tuple[int, ...]:
    """The set stage 1's replicator selects: theory's argmax of ``G_L`` at the initial copier."""
    return report.prediction.stage1_set


def _stagewise_property(request: pytest.FixtureRequest, case: Case) -> None:
    report = run_case(case, "stagewise")
    note(describe(case, report))
    if not report.prediction.decidable:
        _log(request, "stagewise", case, report, "stagewise undecidable (discarded)")
        assume(False)
    stage1 = _stage_one_choice(report)
    if stage1 != report.prediction.selected_set:
        # The theorem's premise, a copier close enough to exact during stage 1, fails at this
        # initialisation: stage 1 follows G at the initial copier, whose argmax differs from S*.
        # The replicator still predicts the selector's limit, with that G: assert it, and count;
        # unless theory's own ranking at the initial copier is too close to call.
        if not report.prediction.stage1_decidable:
            _log(request, "stagewise", case, report,
                 "stagewise stage 1 undecidable at the initial copier (discarded)")
            assume(False)
        _log(request, "stagewise", case, report, "stagewise stage 1 follows the initial copier")
        weight = report.learned["selector_weights"][head_set_label(stage1)]
        assert weight >= SELECTOR_MIN, (
            f"predicted c̃ on {stage1} (argmax of G at the initial copier) >= {SELECTOR_MIN}, "
            f"measured {weight:.4f}\n" + describe(case, report))
        return
    failed = [report.check(name) for name in THEOREM_CHECKS if not report.check(name).passed]
    _log(request, "stagewise", case, report, "stagewise failed" if failed else "stagewise passed")
    assert not failed, describe(case, report)


@pytest.mark.slow
@settings(max_examples=_examples(CI_EXAMPLES), phases=PHASES, suppress_health_check=LOGGING)
@example(PAPER_CASE)
@example(WEAK_PARENT_CASE)
@example(SKIP_PARENT_CASE)
@given(case=cases())
def test_stagewise_training_reaches_the_predicted_limit(request: pytest.FixtureRequest,
                                                        case: Case) -> None:
    _stagewise_property(request, case)


@pytest.mark.thorough
@settings(max_examples=_examples(CI_EXAMPLES), phases=PHASES, suppress_health_check=LOGGING)
@given(case=cases())
def test_stagewise_training_reaches_the_predicted_limit_thorough(request: pytest.FixtureRequest,
                                                                 case: Case) -> None:
    _stagewise_property(request, case)


@pytest.mark.slow
@settings(max_examples=_examples(JOINT_CI_EXAMPLES), phases=PHASES, suppress_health_check=LOGGING)
@example(WEAK_PARENT_CASE)
@given(case=cases())
def test_joint_training_agreement_is_recorded(request: pytest.FixtureRequest, case: Case) -> None:
    report = run_case(case, "joint")
    learned = tuple(report.learned["selected_set"])
    predicted = report.prediction.selected_set
    _log(request, "joint", case, report,
         "joint same S*" if learned == predicted else "joint other set")
    # What any training run must do, inside the theorem or not: lower the training loss, and
    # predict held-out next tokens better than the uniform guess (loss log d).
    history = report.history
    assert history.loss[-1] < history.loss[0], describe(case, report)
    uniform = math.log(case.source.vocab_size)
    assert report.losses["model"] < uniform, (
        f"held-out loss {report.losses['model']:.4f} not below uniform {uniform:.4f}\n"
        + describe(case, report))
