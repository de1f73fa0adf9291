"""The verification job for every model: TF, its full variant, a standard transformer.

Fast tests run each kind end to end at tiny sizes (the checks' verdicts are then not the point:
the report's schema, its round trip, its figures and the CLI are); the slow ones run the
default-sized standard and full jobs on the paper's source, where every check must pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from numerics import plots
from numerics.cli.verify import run as main
from numerics.probing import DECIDED, score_query
from numerics.training.standard import FAST_SPEC, StandardTrainConfig
from numerics.verify import VerifyReport, format_report, load_report, verify_case, write_report
from numerics.verify.evaluation import best_gih_view, fitted_temperatures
from numerics.verify.probe_checks import (
    BEST_GIH_MARGIN,
    check_first_layer,
    first_layer_mass,
)
from theory import (
    PAPER_MODEL,
    PAPER_SOURCE,
    InductionHeadsError,
    Mixture,
    MixtureComponent,
    ModelSpec,
    Source,
    head_set_label,
    predict_limit,
)
from theory.predictors.bayes import bayes_predict_prior
from theory.predictors.reference import gih_predict, prediction_loss

TINY = {"seq_len": 30, "sequences": 200, "heldout": 100, "prediction_samples": 200,
        "device": "cpu", "probe_sequences": 50}
"""TF and full-variant jobs of about a second each."""
TINY_STANDARD = StandardTrainConfig(steps=30, batch_size=16, seq_len=24, eval_sequences=32,
                                    warmup_steps=5, log_points=6, device="cpu")
"""A standard-transformer job of about a second (too short to learn: schema only)."""
TINY_ARCH = FAST_SPEC.__class__.from_dict({**FAST_SPEC.to_dict(), "d_model": 12, "max_len": 24,
                                           "mlp": False})
MIXTURE = Source(3, (1, 2), Mixture((MixtureComponent((1,), 0.7, 0.1),
                                     MixtureComponent((1, 2), 0.3, 0.1))))
"""A two-component mixture: its Bayes predictive is the particle filter's estimate."""
BAYES_LOSS_ATOL = 1e-12
"""The report's Bayes loss against the same estimate recomputed from the documented generators:
the same float64 computation on the same draws."""
STANDARD_CHECKS = ["effective_set", "loss_vs_best_gih", "first_layer"]
FULL_CHECKS = ["selector", "untouched_heads", *STANDARD_CHECKS]


@pytest.fixture(scope="module")
def standard_report() -> VerifyReport:
    return verify_case(PAPER_SOURCE, PAPER_MODEL, kind="standard", config=TINY_STANDARD,
                       architecture=TINY_ARCH, heldout=100, prediction_samples=200,
                       probe_sequences=50, seed=3)


@pytest.fixture(scope="module")
def full_report() -> VerifyReport:
    return verify_case(PAPER_SOURCE, PAPER_MODEL, kind="full", seed=0, **TINY)


@pytest.fixture(scope="module")
def simplified_report() -> VerifyReport:
    return verify_case(PAPER_SOURCE, PAPER_MODEL, seed=0, **TINY)


def _without_timing(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "seconds"}


# ------------------------------------------------------------------------------- the schema
def test_every_kind_reports_an_effective_set_and_its_checks(simplified_report, full_report,
                                                            standard_report) -> None:
    for report, kind in ((simplified_report, "simplified"), (full_report, "full"),
                         (standard_report, "standard")):
        data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
        assert data["config"]["model_kind"] == kind == report.kind
        learned = data["learned"]
        effective = data["probe"]["last"]["effective"]
        assert learned["effective_closest"] == effective["head_set"], (learned, effective)
        assert learned["effective_verdict"] == effective["verdict"], (learned, effective)
        assert learned["effective_set"] == (
            effective["head_set"] if effective["verdict"] == DECIDED else None), learned
        assert set(learned["first_layer"]) == {f"head {h}" for h in range(1, 4)}, learned
        assert report.history.reports[-1] is not None, f"{kind}: no per-step probe"
    assert [c.name for c in full_report.checks] == FULL_CHECKS
    assert [c.name for c in standard_report.checks] == STANDARD_CHECKS
    assert simplified_report.checks[-1].name == "probe_agreement"


def test_tf_probe_agrees_with_its_own_selector(simplified_report) -> None:
    learned = simplified_report.learned
    assert learned["effective_set"] == learned["selected_set"], (
        f"probe {learned['effective_set']} vs argmax c̃ {learned['selected_set']}")
    assert simplified_report.check("probe_agreement").passed


def test_a_band_spec_with_a_norm_offset_verifies_for_tf(tmp_path: Path) -> None:
    spec = ModelSpec.band(3, 2, w_plus=3.0, w_minus=0.1)
    report = verify_case(PAPER_SOURCE, spec, seed=0, options={"norm_offset": 1e-7}, **TINY)
    assert report.config["model"] == spec.to_dict()
    assert report.config["model_options"] == {"norm_offset": 1e-7}
    assert report.prediction.spec == spec and report.prediction.sets == spec.sets
    assert [c.name for c in report.checks][-1] == "probe_agreement"
    write_report(report, tmp_path)
    assert load_report(tmp_path).config["model"]["head_windows"] == [[1, 2, 3], [2, 3, 4],
                                                                     [3, 4, 5]]


def test_standard_report_round_trips_and_writes_its_figures(standard_report,
                                                            tmp_path: Path) -> None:
    paths = write_report(standard_report, tmp_path)
    names = [p.name for p in paths]
    assert names == ["report.json", "config.json",
                     *(f"{k}.png" for k in plots.PROBED_FIGURE_KEYS)]
    back = load_report(tmp_path)
    assert _without_timing(back.to_dict()) == _without_timing(
        json.loads(json.dumps(standard_report.to_dict())))
    text = format_report(back)
    assert "model standard" in text and "probe: " in text, text
    verdict = standard_report.learned["effective_verdict"]
    assert {"decided": "probe: effective set", "undecided": "probe: effective set undecided",
            "no GIH fits": "probe: no GIH fits"}[verdict] in text, (verdict, text)
    assert back.history.settled_step() == standard_report.learned["settled_step"]


def test_full_report_writes_the_tf_figures_and_the_distances(full_report, tmp_path: Path) -> None:
    paths = write_report(full_report, tmp_path)
    assert [p.name for p in paths[2:]] == list(plots.FIGURE_NAMES)
    assert full_report.config["model_options"]["normalization"] == "layernorm"
    assert full_report.curves == {}, "the reduced dynamics are TF's, not the full variant's"
    assert load_report(tmp_path).kind == "full"


def test_same_seed_same_standard_report(standard_report) -> None:
    again = verify_case(PAPER_SOURCE, PAPER_MODEL, kind="standard", config=TINY_STANDARD,
                        architecture=TINY_ARCH, heldout=100, prediction_samples=200,
                        probe_sequences=50, seed=3)
    assert _without_timing(again.to_dict()) == _without_timing(standard_report.to_dict())


def test_standard_job_scores_the_bayes_predictive_of_a_mixture(one_thread) -> None:
    from numerics.data import sample_sequences
    from numerics.verify import case_generators

    seed, heldout = 3, 100
    report = verify_case(MIXTURE, PAPER_MODEL, kind="standard", config=TINY_STANDARD,
                         architecture=TINY_ARCH, heldout=heldout, prediction_samples=200,
                         probe_sequences=50, seed=seed)
    probes = [report.probe, *(r for r in report.history.reports if r is not None)]
    for data in probes:
        names = [s["name"] for s in data["last"]["scores"]]
        assert "bayes" in names and "bayes" not in [a[0] for a in data["absent"]], (
            names, data["absent"])
    assert isinstance(report.losses_train["bayes"], float), report.losses_train["bayes"]
    # The fourth child of the seed draws the estimate (case_generators' order).
    children = np.random.SeedSequence(seed).spawn(5)
    gens = case_generators(seed)
    pred_rng, held_gen = gens.prediction, gens.heldout
    assert pred_rng.random() == np.random.default_rng(children[0]).random()
    held = sample_sequences(MIXTURE, heldout, TINY_STANDARD.seq_len + 1,
                            generator=held_gen)                             # (n_h, L+1)
    estimate = bayes_predict_prior(held[:, :-1].numpy(), MIXTURE,
                                   rng=np.random.default_rng(children[3]))  # (n_h, d)
    want = prediction_loss(estimate, held[:, -1].numpy())
    assert abs(report.losses["bayes"] - want) <= BAYES_LOSS_ATOL, (
        f"Bayes loss: recomputed {want}, reported {report.losses['bayes']}")


# ------------------------------------------------------------------------------- the checks
def test_best_gih_losses_ranks_the_true_sets_first() -> None:
    import torch

    from numerics.data import sample_sequences

    gen = torch.Generator().manual_seed(0)
    fit = sample_sequences(PAPER_SOURCE, 300, 61, generator=gen).numpy()
    held = sample_sequences(PAPER_SOURCE, 300, 61, generator=gen).numpy()
    rows = fitted_temperatures(fit, PAPER_MODEL.sets, vocab_size=3)
    uniform = np.full((len(held), 3), 1 / 3)
    table = score_query(uniform, held, PAPER_SOURCE, PAPER_MODEL.sets,
                        gih_at=[(k, s, a) for k, (s, a) in rows.items()])
    out = best_gih_view(table)
    assert out["best_set"] == [1, 2], out
    a = out["by_set"]["(1, 2)"]["a"]
    direct = prediction_loss(gih_predict(held[:, :-1], (1, 2), a, vocab_size=3), held[:, -1])
    assert out["best"] == pytest.approx(direct, abs=1e-12)


def test_first_layer_check_reads_the_named_entry(simplified_report) -> None:
    from numerics.probing import ProbeReport

    probe = ProbeReport.from_dict(simplified_report.probe)
    found = first_layer_mass(probe, "copier.attention", (1, 2))
    assert found["offset 1"]["head"] == 1 and found["offset 2"]["head"] == 2, found
    limit = predict_limit(PAPER_SOURCE, PAPER_MODEL, seq_len=30, samples=200,
                          rng=np.random.default_rng(0))
    assert check_first_layer(limit, probe, "copier.attention").passed
    with pytest.raises(InductionHeadsError, match="attention entry"):
        first_layer_mass(probe, "blocks.0.attn.hook_pattern", (1,))


@pytest.mark.parametrize("kwargs, expected", [
    ({"kind": "gpt"}, "model kind"),
    ({"kind": "simplified", "architecture": FAST_SPEC}, "architecture"),
    ({"kind": "standard", "sequences": 10}, "sequences"),
    ({"kind": "standard", "config": StandardTrainConfig(steps=1, seq_len=20),
      "seq_len": 30}, "seq_len"),
    ({"kind": "standard", "probe_sequences": 1}, "probe_sequences"),
])
def test_bad_model_arguments(kwargs: dict, expected: str) -> None:
    with pytest.raises(InductionHeadsError, match=expected):
        verify_case(PAPER_SOURCE, PAPER_MODEL, **kwargs)


def test_cli_runs_the_standard_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config, arch = tmp_path / "train.json", tmp_path / "arch.json"
    config.write_text(json.dumps(TINY_STANDARD.to_dict()))
    arch.write_text(json.dumps(TINY_ARCH.to_dict()))
    status = main(["--kind", "standard", "--config", str(config), "--architecture", str(arch),
                   "--heldout", "60", "--prediction-samples", "200", "--out",
                   str(tmp_path / "out"), "--quiet"])
    assert status in (0, 1), capsys.readouterr().err
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["config"]["model_kind"] == "standard"
    assert data["config"]["architecture"] == TINY_ARCH.to_dict()
    assert (tmp_path / "out" / "distances.png").is_file()


# ------------------------------------------------------------------- default sizes, slow
KL_MARGIN_SE = 3.0
"""The effective set must beat the runner-up by 3 standard errors of the paired KL difference."""
STANDARD_STEPS = 1000
"""Half of FAST_TRAINING: four seeds left the plateau by step 600 and read as (1, 2) by more
than 10 standard errors at step 1000 (numerics.training.standard.FAST_TRAINING); about 60 s of
one idle core."""


@pytest.mark.thorough  # 1000 AdamW steps: a minute and a half on one core
def test_standard_transformer_on_the_paper_source_reads_as_one_two() -> None:
    config = StandardTrainConfig(steps=STANDARD_STEPS, batch_size=128, seq_len=50, device="cpu")
    report = verify_case(PAPER_SOURCE, PAPER_MODEL, kind="standard", config=config,
                         heldout=1000, prediction_samples=1000, seed=0)
    failed = [(c.name, c.predicted, c.measured) for c in report.checks if not c.passed]
    assert not failed, f"failed (predicted, measured): {failed}\n{format_report(report)}"
    eff = report.learned
    assert eff["effective_set"] == [1, 2] == list(report.prediction.selected_set)
    assert eff["effective_margin_se"] >= KL_MARGIN_SE, (
        f"margin over {eff['effective_runner_up']}: {eff['effective_margin_se']:.2f} SE")
    by_set = report.losses["best_gih"]["by_set"]
    others = min(v["loss"] for k, v in by_set.items() if k != "(1, 2)")
    assert report.losses["model"] < others, (
        f"held-out loss at x_(L+1): model {report.losses['model']:.4f}, GIH(1, 2) "
        f"{by_set['(1, 2)']['loss']:.4f}, best other set {others:.4f}")
    assert report.check("loss_vs_best_gih").measured["gap"] <= BEST_GIH_MARGIN
    assert head_set_label(report.losses["best_gih"]["best_set"]) == "(1, 2)"
    assert report.learned["settled_step"] is not None
