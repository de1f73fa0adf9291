"""`numerics.verify.job`: the trained model against the predicted limit, its report and its CLI."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numerics import plots
from numerics.cli.verify import run as main
from numerics.training import StageConfig, TrainConfig, default_config
from numerics.verify import VerifyReport, format_report, load_report, verify_case, write_report
from numerics.verify.checks import (
    COPIER_LEAVE_MIN,
    COPIER_STAGE_ATOL,
    SELECTOR_MIN,
    check_temperature,
    prediction_notes,
)
from theory import (
    PAPER_MODEL,
    PAPER_SOURCE,
    Dirichlet,
    InductionHeadsError,
    Mixture,
    MixtureComponent,
    ModelSpec,
    Source,
    head_set_label,
    predict_limit,
)
from theory.dynamics.joint_path import JointPath
from theory.predictors.bayes import bayes_predict_prior
from theory.predictors.reference import prediction_loss

SMALL = {"seq_len": 60, "sequences": 600, "heldout": 400, "prediction_samples": 600,
         "device": "cpu"}
"""A default-ish case small enough for seconds: the paper's source at n=600, L=60."""
SMALL_ARGS = ["--seq-len", "60", "--sequences", "600", "--heldout", "400",
              "--prediction-samples", "600", "--device", "cpu", "--quiet"]

TEMPERATURE_CURVE_ATOL = 0.1
"""Predicted a(t) (GIH gradient flow, exact copier) vs trained a at the end of stage 3: the
trained copier is ~0.997, not exact, and gradient descent is the flow's Euler scheme."""
TRAIN_LOSS_ATOL = 1e-5
"""The last logged loss (float32 model, float32 mean) against the same model's probabilities on
the same training sample averaged in float64: round-off only."""
A_STAR_ATOL = 1e-9
"""a*(L) is the numerical minimiser of the GIH loss on the training sample (optimiser tolerance)."""
REQUIRED_KEYS = ("predicted.selected_set", "learned.selected_set", "learned.effective_set",
                 "learned.settled_step", "learned.first_layer", "probe.last", "losses_train.model",
                 "learned.selector_weights", "learned.copier_mass", "learned.temperature",
                 "checks", "passed", "config", "history")
CHECK_KEYS = {"name", "passed", "predicted", "measured", "tolerance"}
BAYES_LOSS_ATOL = 1e-12
"""The report's Bayes loss against the same estimate recomputed from the job's generators: the
same float64 computation on the same draws."""

STEP_LIMITED = (Source(2, (1,), Dirichlet(0.05)), ModelSpec(2, 2, 2, w_plus=0.5))
"""A soft copier (0.62 on each head's own offset) on near-deterministic binary chains: S* = (1,),
stage 1 reaches (1, 2), and in the copier stage's steps head 2 gains mass on its own offset
although the stage's limit would move it off (docs/theory.md §3.3)."""
STEP_LIMITED_SIZES = {"seed": 0, "seq_len": 40, "sequences": 300, "heldout": 100,
                      "prediction_samples": 500, "probe_history": False, "bayes": False,
                      "device": "cpu"}
"""Seconds; at these sizes the population ranking decides the target (1, 2)."""


@pytest.fixture(scope="module")
def small_report() -> VerifyReport:
    return verify_case(PAPER_SOURCE, PAPER_MODEL, seed=0, **SMALL)


def _without_timing(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "seconds"}


def _lookup(data: dict, dotted: str):
    for part in dotted.split("."):
        assert part in data, f"report lacks {dotted!r}: no {part!r} among {sorted(data)}"
        data = data[part]
    return data


def test_small_default_case_passes_every_check(small_report: VerifyReport) -> None:
    failed = [(c.name, c.predicted, c.measured, c.tolerance) for c in small_report.checks
              if not c.passed]
    assert small_report.passed and not failed, f"failed checks (predicted, measured): {failed}"
    assert [c.name for c in small_report.checks] == [
        "selector", "copier", "untouched_heads", "temperature", "gih_agreement", "loss_vs_gih",
        "probe_agreement"]
    assert small_report.prediction.selected_set == (1, 2)
    assert small_report.learned["selected_set"] == [1, 2]
    assert small_report.learned["effective_set"] == small_report.learned["selected_set"]
    assert small_report.check("selector").measured >= SELECTOR_MIN


def test_report_has_required_keys_and_is_json(small_report: VerifyReport) -> None:
    data = json.loads(json.dumps(small_report.to_dict(), allow_nan=False))
    for key in REQUIRED_KEYS:
        _lookup(data, key)
    for check in data["checks"]:
        assert CHECK_KEYS <= set(check), f"check keys {sorted(check)} lack {CHECK_KEYS}"
    assert set(data["learned"]["selector_weights"]) == {head_set_label(s) for s in PAPER_MODEL.sets}
    assert set(data["learned"]["copier_mass"]) == {"head 1", "head 2", "head 3"}
    losses = data["losses"]
    for key in ("model", "gih_trained_a", "gih_a_star", "bayes", "a_star"):
        assert isinstance(losses[key], float), f"losses[{key!r}] = {losses[key]!r}"
    assert losses["oracle"] <= losses["bayes"] + 0.05, (
        f"oracle {losses['oracle']} should not be far above Bayes {losses['bayes']}")
    assert data["config"]["seed"] == 0 and data["config"]["train"]["sequences"] == 600


def test_predicted_temperature_curve_meets_the_trained_a(small_report: VerifyReport) -> None:
    curve = small_report.curves["temperature"]
    predicted, measured = curve["a"][-1], small_report.learned["temperature"]
    assert abs(predicted - measured) <= TEMPERATURE_CURVE_ATOL, (
        f"a(t) at the end of stage 3: predicted {predicted:.4f}, measured {measured:.4f}")
    selector = small_report.curves["selector"]
    assert np.asarray(selector["theory"]).shape == (200, len(PAPER_MODEL.sets))
    assert abs(sum(selector["initial_copier"][-1]) - 1.0) < 1e-9


def test_same_seed_replays_identically(small_report: VerifyReport) -> None:
    again = verify_case(PAPER_SOURCE, PAPER_MODEL, seed=0, **SMALL)
    assert _without_timing(again.to_dict()) == _without_timing(small_report.to_dict())


def test_write_report_writes_json_and_figures(small_report: VerifyReport, tmp_path: Path) -> None:
    paths = write_report(small_report, tmp_path / "out")
    names = [p.name for p in paths]
    assert names == ["report.json", "config.json", *plots.FIGURE_NAMES]
    for p in paths:
        assert p.is_file() and p.stat().st_size > 0, f"{p} missing or empty"
    for p in paths[2:]:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{p} is not a PNG"
    data = json.loads(paths[0].read_text())
    assert _without_timing(data) == _without_timing(
        json.loads(json.dumps(small_report.to_dict())))
    assert json.loads(paths[1].read_text()) == data["config"]


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_every_file_write_report_writes_has_one_mode(small_report: VerifyReport, tmp_path: Path,
                                                      mask: int) -> None:
    old = os.umask(mask)
    try:
        paths = write_report(small_report, tmp_path / "out")
    finally:
        os.umask(old)
    expected = 0o666 & ~mask  # 0644 under umask 022, 0600 under 077
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in paths}
    assert set(modes.values()) == {oct(expected)}, (
        f"umask {oct(mask)}: predicted {oct(expected)} for every file, measured {modes}")


def test_training_sample_losses_sit_beside_the_held_out_ones(small_report: VerifyReport) -> None:
    train, held = small_report.losses_train, small_report.losses
    assert train is not None and set(train) == set(held), (sorted(train or {}), sorted(held))
    assert train["sequences"] == SMALL["sequences"] and held["sequences"] == SMALL["heldout"]
    assert train["oracle"] is None and "oracle" not in train["floor_hits"]
    for key in ("model", "gih_trained_a", "gih_a_star", "gih_inf", "bayes"):
        assert isinstance(train[key], float), f"losses_train[{key!r}] = {train[key]!r}"
    logged = float(small_report.history.loss[-1])
    assert abs(train["model"] - logged) <= TRAIN_LOSS_ATOL, (
        f"model on the training sample {train['model']:.8f} vs last logged loss {logged:.8f}")
    assert train["gih_a_star"] <= train["gih_trained_a"] + A_STAR_ATOL, (
        f"a*(L) minimises the GIH loss on the training sample: GIH(a*) {train['gih_a_star']}, "
        f"GIH(trained a) {train['gih_trained_a']}")
    assert train["a_star"] == held["a_star"] and train["trained_a"] == held["trained_a"]


def test_final_probe_reads_the_shared_bayes_estimate_of_a_mixture(one_thread) -> None:
    from numerics.data import sample_sequences
    from numerics.verify import case_generators

    mixture = Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.7, 0.1),
                                         MixtureComponent((1, 2), 0.3, 0.1))))
    seed, seq_len, heldout = 0, 30, 100
    report = verify_case(mixture, PAPER_MODEL, seed=seed, seq_len=seq_len, sequences=200,
                         heldout=heldout, prediction_samples=200, device="cpu",
                         probe_sequences=50)
    for data in (report.probe, report.history.reports[-1]):
        names = [s["name"] for s in data["last"]["scores"]]
        assert "bayes" in names and "bayes" not in [a[0] for a in data["absent"]], (
            names, data["absent"])
    held = sample_sequences(mixture, heldout, seq_len + 1,
                            generator=case_generators(seed).heldout)         # (n_h, L+1)
    estimate = bayes_predict_prior(held[:, :-1].numpy(), mixture,
                                   rng=case_generators(seed).bayes)        # (n_h, d)
    want = prediction_loss(estimate, held[:, -1].numpy())
    assert abs(report.losses["bayes"] - want) <= BAYES_LOSS_ATOL, (
        f"Bayes loss: recomputed {want}, reported {report.losses['bayes']}")


def test_a_run_without_bayes_checks_the_same_and_says_what_is_absent(one_thread) -> None:
    # The particle filter of a mixture prior is the one optional cost: leaving it out changes no
    # check (none reads it) and nothing else of the run.
    from numerics.verify.job import BAYES_SKIPPED_NOTE

    mixture = Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.7, 0.1),
                                         MixtureComponent((1, 2), 0.3, 0.1))))
    kwargs = dict(seed=1, seq_len=30, sequences=200, heldout=100, prediction_samples=200,
                  device="cpu", probe_history=False)
    full = verify_case(mixture, PAPER_MODEL, **kwargs)
    lean = verify_case(mixture, PAPER_MODEL, bayes=False, **kwargs)
    assert full.losses["bayes"] is not None and lean.losses["bayes"] is None
    assert lean.losses_train["bayes"] is None and BAYES_SKIPPED_NOTE in lean.notes
    assert "bayes" in [a[0] for a in lean.probe["absent"]]
    assert [(c.name, c.passed, c.measured) for c in lean.checks] == [
        (c.name, c.passed, c.measured) for c in full.checks]
    def without_bayes(losses: dict) -> dict:
        kept = {k: v for k, v in losses.items() if k not in ("bayes", "floor_hits")}
        return {**kept, "floor_hits": {k: v for k, v in losses["floor_hits"].items()
                                       if k != "bayes"}}

    assert without_bayes(lean.losses) == without_bayes(full.losses)
    dirichlet = verify_case(PAPER_SOURCE, PAPER_MODEL, bayes=False, **kwargs)
    assert dirichlet.losses["bayes"] is not None, "closed form: computed either way"
    assert BAYES_SKIPPED_NOTE not in dirichlet.notes


def test_step_limited_copier_stage_passes_against_theory(one_thread) -> None:
    """A head outside S* that the copier stage's steps keep on its offset: check 2 expects the
    mass theory's copier stage ends on, where a required drop would fail."""
    report = verify_case(*STEP_LIMITED, **STEP_LIMITED_SIZES)
    assert (report.target["set"], report.target["best"]) == ([1, 2], [1]), report.target
    first, last = report.history.copier[0], report.history.copier[-1]  # (H, M) each
    assert last[1, 1] > first[1, 1] + COPIER_LEAVE_MIN, (
        f"head 2 should gain in the stage's steps: {first[1, 1]:.4f} -> {last[1, 1]:.4f}")
    check = report.check("copier")
    assert check.predicted["head 2"] > first[1, 1] + COPIER_LEAVE_MIN, check.predicted
    assert check.passed, (f"predicted {check.predicted}, measured {check.measured} "
                          f"(|Δ| <= {COPIER_STAGE_ATOL}): {check.note}")


def test_report_round_trips_through_from_dict(small_report: VerifyReport) -> None:
    data = json.loads(json.dumps(small_report.to_dict(), allow_nan=False))
    again = VerifyReport.from_dict(data)
    assert again.to_dict() == data
    assert again.losses_train == data["losses_train"] and again.passed == small_report.passed
    assert again.prediction.selected_set == small_report.prediction.selected_set
    np.testing.assert_array_equal(again.history.selector, small_report.history.selector)
    assert [c.name for c in again.checks] == [c.name for c in small_report.checks]


def test_load_report_reads_back_what_write_report_wrote(small_report: VerifyReport,
                                                        tmp_path: Path) -> None:
    write_report(small_report, tmp_path)
    expected = json.loads(json.dumps(small_report.to_dict()))
    assert load_report(tmp_path).to_dict() == expected
    assert load_report(tmp_path / "report.json").to_dict() == expected


def test_load_report_rejects_what_is_not_a_report(small_report: VerifyReport,
                                                  tmp_path: Path) -> None:
    with pytest.raises(InductionHeadsError, match="readable UTF-8 JSON"):
        load_report(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InductionHeadsError, match="readable UTF-8 JSON"):
        load_report(tmp_path / "bad.json")
    partial = {k: v for k, v in small_report.to_dict().items() if k != "history"}
    (tmp_path / "partial.json").write_text(json.dumps(partial))
    with pytest.raises(InductionHeadsError, match=r"missing \['history'\]"):
        load_report(tmp_path / "partial.json")


def test_report_without_training_sample_losses_reads_back(small_report: VerifyReport) -> None:
    data = json.loads(json.dumps(small_report.to_dict()))
    del data["losses_train"]
    report = VerifyReport.from_dict(data)
    assert report.losses_train is None and report.to_dict()["losses_train"] is None
    assert "training-sample loss" not in format_report(report)
    assert "training-sample loss (nats) over 600 sequences" in format_report(small_report)


def _failing_config() -> TrainConfig:
    """A selector too slow to move (lr 1e-3) and a classifier that never trains."""
    stages = (StageConfig("selector", ("C",), 1e-3, 20), StageConfig("copier", ("w",), 3000.0, 20),
              StageConfig("classifier", ("a",), 1.0, 0))
    return TrainConfig("stagewise", stages, 600, 60, device="cpu")


def test_main_exit_status_and_output(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([*SMALL_ARGS, "--out", str(tmp_path / "ok")]) == 0
    assert "verdict: PASS" in capsys.readouterr().out
    assert (tmp_path / "ok" / "report.json").is_file()

    config = tmp_path / "slow.json"
    config.write_text(json.dumps(_failing_config().to_dict()))
    argv = ["--config", str(config), "--heldout", "200", "--prediction-samples", "600",
            "--device", "cpu", "--out", str(tmp_path / "bad")]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "verdict: FAIL" in out and "FAIL" in out.split("verdict")[0]
    data = json.loads((tmp_path / "bad" / "report.json").read_text())
    failed = {c["name"] for c in data["checks"] if not c["passed"]}
    assert data["passed"] is False and {"selector", "temperature"} <= failed, failed


def test_temperature_check_without_an_a_stage(small_report: VerifyReport) -> None:
    config = TrainConfig("stagewise", (StageConfig("selector", ("C",), 1.0, 5),), 600, 60)
    check = check_temperature(small_report.history, config)
    assert not check.passed and "never moved" in check.note


def test_inexpressible_limit_is_reported_not_raised() -> None:
    source = Source(3, (1, 3), Dirichlet(0.1))
    report = verify_case(source, ModelSpec(heads=2, window=2, degree=1), seed=1, **SMALL)
    assert report.prediction.missing_parents == (3,)
    assert any("cannot express parents (3,)" in n for n in report.notes), report.notes
    data = report.to_dict()
    assert data["predicted"]["missing_parents"] == [3] and data["notes"] == list(report.notes)


def test_parent_inside_the_window_but_beyond_the_heads_is_noted() -> None:
    """A head may move to a parent in 1..M beyond H: the report must say the ranking misses it."""
    source = Source(3, (1, 3), Dirichlet(0.1))
    kwargs = {"seq_len": 60, "samples": 200, "rng": np.random.default_rng(0)}
    inside = prediction_notes(predict_limit(source, ModelSpec(2, 3, 1), **kwargs), "stagewise",
                              None)
    assert any("inside the window M=3 but beyond H=2" in n for n in inside), inside
    kwargs["rng"] = np.random.default_rng(0)
    outside = prediction_notes(predict_limit(source, ModelSpec(2, 2, 1), **kwargs), "stagewise",
                               None)
    assert not any("inside the window" in n for n in outside), outside


def test_joint_mode_is_checked_against_the_joint_path() -> None:
    config = default_config("joint", sequences=600, seq_len=60, device="cpu")
    report = verify_case(PAPER_SOURCE, PAPER_MODEL, seed=0, config=config,
                         heldout=200, prediction_samples=600)
    path = JointPath.from_dict(report.target["joint"])
    assert path.steps[-1] == config.stages[0].steps and path.selector[0] == pytest.approx(
        np.full(len(PAPER_MODEL.sets), 1 / len(PAPER_MODEL.sets)))
    temperature = report.check("temperature")
    assert temperature.predicted == pytest.approx(path.a[-1], abs=1e-6), temperature
    assert "theory's joint path" in temperature.note, temperature
    assert report.check("selector_path").passed, report.check("selector_path")
    assert any(n.startswith("joint training is outside the theorem") for n in report.notes)
    assert report.curves == {"selector": None, "temperature": None}


def test_joint_adam_run_has_no_joint_path() -> None:
    config = default_config("joint", sequences=300, seq_len=40, device="cpu")
    stage = dataclasses.replace(config.stages[0], optimizer="adam", lr=0.05, steps=10)
    config = dataclasses.replace(config, stages=(stage,))
    report = verify_case(PAPER_SOURCE, PAPER_MODEL, seed=0, config=config, heldout=100,
                         prediction_samples=300, probe_history=False)
    assert report.target["joint"] is None
    assert "selector_path" not in {c.name for c in report.checks}
    assert "a 0.0100 ->" in report.check("temperature").note


@pytest.mark.parametrize("argv, expected", [
    (["--heads", "4", "--window", "3"], "window"),
    (["--seq-len", "3"], "seq_len"),
    (["--source", "/nonexistent/source.json"], "source path"),
    (["--seed", "-1"], "seed"),
    (["--degree", "5"], "degree"),
])
def test_bad_cli_input_exits_2_with_a_message(argv: list[str], expected: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    assert main([*argv, "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and "expected" in err, err


def test_unparsable_cli_input_is_an_argparse_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--mode", "sideways", "--out", str(tmp_path)])
    assert info.value.code == 2


@pytest.mark.parametrize("kwargs, expected", [
    ({"seed": -1}, "seed"), ({"heldout": 0}, "heldout"), ({"prediction_samples": 1},
                                                          "prediction_samples"),
    ({"config": "stagewise"}, "config"), ({"mode": "sideways"}, "mode"),
    ({"config": default_config(sequences=600, seq_len=60), "seq_len": 80}, "seq_len"),
])
def test_bad_library_input_raises(kwargs: dict, expected: str) -> None:
    with pytest.raises(InductionHeadsError, match=expected):
        verify_case(PAPER_SOURCE, PAPER_MODEL, **kwargs)


@pytest.mark.skipif(importlib.util.find_spec("numerics.__main__") is None,
                    reason="the `python -m numerics` entry point is not installed")
def test_python_dash_m_numerics_verify(tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "numerics", "verify", *SMALL_ARGS,
                           "--out", str(tmp_path)], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verdict: PASS" in proc.stdout and (tmp_path / "report.json").is_file()
