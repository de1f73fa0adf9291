"""The stage-wise / joint trainer on the full variant (docs/theory.md §7) and its callback.

* :func:`numerics.train` trains :class:`FullInductionHeadModel` through the ``TrainableModel``
  interface: stages move only their parameter groups, the logged copier is the sample-averaged
  attention, checkpoints hold the model's kind and options, :func:`numerics.resume` continues a
  run bit-identically and :func:`numerics.load_model` returns the full model.
* ``callback(model, step)`` results are kept in ``History.reports`` (and the checkpoint) at every
  logged row; :mod:`numerics.training.reports` reads probe reports out of them.
* The measured full-variant defaults (:func:`numerics.default_config` with ``kind="full"``)
  scale the copier's rate with d and D: they do not diverge on a d = 5, D = 3 source where the
  reference rates do; they reach the paper's induction head (c̃(1,2) >= 0.99, heads 1, 2 on
  offsets 1, 2, held-out loss near GIH(1,2)) and converge on the drawn source (slow).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from numerics import (
    OFFICIAL_FULL_OPTIONS,
    FullInductionHeadModel,
    InductionHeadModel,
    load_model,
    resume,
    train,
)
from numerics.data import sample_sequences
from numerics.experiments import official_full_spec
from numerics.models.full_options import FULL_OPTION_DEFAULTS
from numerics.probing import score_query
from numerics.training import StageConfig, TrainConfig, default_config, load_checkpoint
from numerics.training.config import full_rate_scale
from numerics.training.history import History
from numerics.training.reports import distances, effective_sets, settled_index, settled_step
from numerics.verify.evaluation import best_gih_view, fitted_temperatures
from theory import PAPER_MODEL, PAPER_SOURCE, Dirichlet, InductionHeadsError, ModelSpec, Source
from theory.predictors.reference import gih_predict, optimal_temperature, prediction_loss

N, L, STEPS = 40, 12, 5
"""Tiny runs: n = 40 sequences, L = 12, 5 steps per stage (a fraction of a second)."""
FULL_LRS = {"sgd": (300.0, 10.0, 1e-4), "adam": (0.05, 0.01, 0.01)}
"""Per-stage learning rates (C, w, a) of the tiny runs; the full model's copier needs ~10 with
SGD (docs/theory.md §7: the LayerNorm gain is a second temperature)."""
SELECTED_MIN = 0.99
"""c̃(1,2) a converged default run must reach."""
GIH_GAP = 0.03
"""Nats the held-out loss of a default run may lie above GIH(1,2) at its best temperature on the
same held-out sequences (measured gaps: config.py's FULL_* docstrings)."""
HELDOUT_N, HELDOUT_SEED = 2000, 12345
"""Held-out sequences of the slow tests, drawn apart from the training sample."""


def _config(optimizer: str = "sgd", *, batch: str | int = "full", n: int = N,
            steps: tuple[int, int, int] = (STEPS,) * 3, log_points: int = 3) -> TrainConfig:
    extra = {"optimizer": "adam"} if optimizer == "adam" else {"momentum": 0.5}
    stages = tuple(StageConfig(name, params, lr, k, **extra) for name, params, lr, k in zip(
        ("selector", "copier", "classifier"), ("C", "w", "a"), FULL_LRS[optimizer], steps))
    return TrainConfig("stagewise", stages, n, L, batch=batch, device="cpu",
                       log_points=log_points)


def _model(**options: Any) -> FullInductionHeadModel:
    return FullInductionHeadModel(PAPER_MODEL, PAPER_SOURCE.vocab_size, **options)


def _train(config: TrainConfig, model: nn.Module | None = None, seed: int = 1, **kwargs: Any):
    kwargs.setdefault("progress", False)
    return train(_model() if model is None else model, PAPER_SOURCE, config,
                 generator=torch.Generator().manual_seed(seed), **kwargs)


def _step_report(model: nn.Module, step: int) -> dict[str, Any]:
    """A callback recording what the trainer promises about the call."""
    return {"step": step, "a": float(model.a), "training": model.training,
            "grad_enabled": torch.is_grad_enabled()}


# ---------------------------------------------------------------------------- the interface
def test_stages_move_only_their_parameter_groups() -> None:
    model = _model()
    groups = {k: [p.detach().clone() for p in ps] for k, ps in model.parameter_groups().items()}
    result = _train(_config(), model)
    for k, ps in model.parameter_groups().items():
        moved = [not torch.equal(a, b.detach()) for a, b in zip(groups[k], ps)]
        assert all(moved), f"group {k!r}: moved {moved}"
    h = result.history
    selector_rows, copier_rows = h.stage("selector"), h.stage("copier")
    assert np.all(copier_rows.selector == selector_rows.selector[-1]), (
        "the copier stage moved the selector")
    assert np.all(h.stage("classifier").copier == copier_rows.copier[-1]), (
        "the classifier stage moved the copier")
    assert all(p.requires_grad for p in model.parameters()), "requires_grad not restored"


def test_logged_copier_is_the_attention_averaged_over_the_sample() -> None:
    model = _model(dtype=torch.float64)
    config = TrainConfig.from_dict({**_config().to_dict(), "dtype": "float64"})
    result = _train(config, model)
    with torch.no_grad():
        expected = model.copier_attention(result.sample[:, :-1]).numpy()   # (H, M)
        content_free = model.copier_attention().numpy()
    logged = result.history.copier[-1]
    assert logged.shape == (PAPER_MODEL.heads, PAPER_MODEL.window)
    assert np.array_equal(logged, expected), f"logged {logged} vs sample average {expected}"
    assert not np.allclose(logged, content_free), "A moved, so the two attentions differ"


def test_minibatch_and_fresh_batches_train_the_full_model() -> None:
    for batch in (16, "fresh"):
        first, again = (_train(_config(batch=batch), seed=3).history for _ in range(2))
        assert first.to_dict() == again.to_dict(), f"batch {batch!r}: same seed, other history"
        assert np.all(np.isfinite(first.loss)) and first.loss[-1] < first.loss[0], (
            f"batch {batch!r}: loss {first.loss[0]:.4f} -> {first.loss[-1]:.4f}")


def test_a_diverging_copier_stage_names_the_stage_and_step() -> None:
    stages = (StageConfig("selector", ("C",), 300.0, 2), StageConfig("copier", ("w",), 1e30, 3))
    config = TrainConfig("stagewise", stages, N, L, device="cpu")
    with pytest.raises(InductionHeadsError, match=r"step 3 \(step 1 of stage 'copier'\)"):
        _train(config)


# ----------------------------------------------------------------------- checkpoints, resume
@pytest.mark.parametrize(("batch", "optimizer", "stop"),
                         [("full", "sgd", 7), (16, "adam", 11), ("fresh", "sgd", 5)])
def test_resume_of_a_full_run_is_bit_identical(tmp_path: Path, batch, optimizer, stop) -> None:
    config = _config(optimizer, batch=batch)
    whole = _train(config, callback=_step_report)
    path = tmp_path / "run.pt"
    _train(config, checkpoint_path=path, stop_after=stop, callback=_step_report)
    data = load_checkpoint(path)
    assert (data["step"], data["model_kind"]) == (stop, "full")
    resumed = resume(path, progress=False, callback=_step_report)
    assert isinstance(resumed.model, FullInductionHeadModel)
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), f"{name} differs"
    assert whole.history.to_dict() == resumed.history.to_dict()
    assert torch.equal(whole.sample, resumed.sample) and resumed.config == config


@pytest.mark.parametrize("options", [
    {}, {"normalization": "l2", "self_attention": False},
    {"relu_similarity": True, "ln_eps": 1e-3},
])
def test_load_model_returns_the_full_model_with_identical_outputs(tmp_path: Path, options
                                                                  ) -> None:
    path = tmp_path / "run.pt"
    result = _train(_config(), _model(**options), checkpoint_path=path)
    data = load_checkpoint(path)
    expected = {**FULL_OPTION_DEFAULTS, **options}
    assert data["model_kind"] == "full" and data["model_options"] == expected
    loaded = load_model(path)
    assert type(loaded) is FullInductionHeadModel and not loaded.training
    assert loaded.constructor_options() == expected
    tokens = sample_sequences(PAPER_SOURCE, 20, L, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        assert torch.equal(loaded(tokens), result.model(tokens)), "outputs differ after loading"


OFFICIAL_STEPS = 8
"""Steps of the tiny official-full runs (the default schedule's stages, shortened)."""


def _official_config(mode: str) -> TrainConfig:
    """The full kind's default run of ``mode`` on the tiny sizes, the authors' loss, few steps."""
    config = default_config(mode, kind="full", sequences=N, seq_len=L, device="cpu",
                            loss="official_ce")
    steps = OFFICIAL_STEPS if mode == "joint" else 3
    return dataclasses.replace(config, stages=tuple(
        dataclasses.replace(s, steps=steps) for s in config.stages))


@pytest.mark.parametrize("mode", ["joint", "stagewise"])
@pytest.mark.parametrize("frozen", [{}, {"train_content": False},
                                    {"train_content": False, "train_values": False}])
def test_official_full_runs_resume_and_load_back(tmp_path: Path, mode, frozen) -> None:
    options = {**OFFICIAL_FULL_OPTIONS, **frozen}
    config = _official_config(mode)

    def model() -> FullInductionHeadModel:
        return FullInductionHeadModel(official_full_spec(3.0), 3, loss="official_ce", **options)

    initial = model().state_dict()
    whole = _train(config, model())
    path = tmp_path / "run.pt"
    _train(config, model(), checkpoint_path=path, stop_after=config.total_steps // 2)
    data = load_checkpoint(path)
    assert data["model_options"] == options and data["model_spec"] == (
        official_full_spec(3.0).to_dict())
    resumed = resume(path, progress=False)
    state, again = whole.model.state_dict(), resumed.model.state_dict()
    assert set(state) == set(again) == set(initial)
    for name, value in state.items():
        assert torch.equal(value, again[name]), f"{name} differs after resuming"
    assert whole.history.to_dict() == resumed.history.to_dict()
    for name in ("Q", "K", "V"):
        frozen_here = name in "QK" and "train_content" in frozen or name == "V" and (
            "train_values" in frozen)
        moved = not torch.equal(state[name], initial[name])
        assert moved != frozen_here, f"{name}: moved {moved}, frozen {frozen_here}"
    loaded = load_model(path)
    assert loaded.constructor_options() == options
    assert all(torch.equal(v, again[k]) for k, v in loaded.state_dict().items()), (
        "load_model must return the resumed run's final state, buffers included")
    tokens = sample_sequences(PAPER_SOURCE, 20, L, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        assert torch.equal(loaded(tokens), resumed.model(tokens))


def test_checkpoints_with_the_four_original_options_load_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "run.pt"
    _train(_config(), checkpoint_path=path, stop_after=7)
    data = load_checkpoint(path)
    original = {k: data["model_options"][k] for k in ("normalization", "self_attention",
                                                      "relu_similarity", "ln_eps")}
    old = tmp_path / "old.pt"
    torch.save({**data, "model_options": original}, old)
    assert load_model(old).constructor_options() == FULL_OPTION_DEFAULTS
    whole = _train(_config())
    resumed = resume(old, progress=False)
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), f"{name} differs"


def test_simplified_checkpoints_stay_simplified(tmp_path: Path) -> None:
    path = tmp_path / "run.pt"
    stages = tuple(StageConfig(s.name, s.params, lr, STEPS) for s, lr in
                   zip(_config().stages, (300.0, 300.0, 1.0)))
    config = TrainConfig("stagewise", stages, N, L, device="cpu", log_points=3)
    _train(config, InductionHeadModel(PAPER_MODEL, 3), checkpoint_path=path)
    data = load_checkpoint(path)
    assert (data["model_kind"], data["model_options"]) == ("simplified", {})
    assert type(load_model(path)) is InductionHeadModel


# ---------------------------------------------------------------------------- the callback
def test_callback_results_are_kept_per_row_and_round_trip(tmp_path: Path) -> None:
    config = _config()
    path = tmp_path / "run.pt"
    result = _train(config, checkpoint_path=path, stop_after=7, callback=_step_report)
    h = result.history
    assert len(h.reports) == len(h) and [r["step"] for r in h.reports] == h.steps.tolist()
    assert all(r["training"] is False and r["grad_enabled"] is False for r in h.reports)
    assert [r["a"] for r in h.reports] == pytest.approx(h.a.tolist(), rel=1e-6)
    assert History.from_dict(h.to_dict()).to_dict() == h.to_dict()
    assert History.from_dict(load_checkpoint(path)["history"]).reports == h.reports
    without = resume(path, progress=False).history             # no callback: None from now on
    assert without.reports[:len(h)] == h.reports
    assert without.reports[len(h):] == (None,) * (len(without) - len(h))
    legacy = {k: v for k, v in h.to_dict().items() if k != "reports"}
    assert History.from_dict(legacy).reports == (None,) * len(h)


def test_a_callback_can_probe_the_model() -> None:
    from numerics.probing import probe
    from theory import predict_limit

    held = sample_sequences(PAPER_SOURCE, 200, L + 1, generator=torch.Generator().manual_seed(4))
    limit = predict_limit(PAPER_SOURCE, PAPER_MODEL, seq_len=L,
                          rng=np.random.default_rng(0), samples=200)

    def probing(model: nn.Module, step: int) -> dict[str, Any]:
        return probe(model, PAPER_SOURCE, PAPER_MODEL, tokens=held, limit=limit).to_dict()

    h = _train(_config(), callback=probing).history
    kl = h.distances("gih(1, 2)")
    assert kl.shape == (len(h),) and np.all(np.isfinite(kl)) and np.all(kl >= 0), kl
    sets = h.effective_sets()
    assert all(s is None or isinstance(s, tuple) for s in sets), sets
    assert h.settled_step() in h.steps.tolist() + [None]
    with pytest.raises(InductionHeadsError, match="score name: expected one of"):
        h.distances("no such predictor")


def test_report_readers() -> None:
    def report(head_set, kl):
        return {"last": {"effective": {"head_set": list(head_set), "verdict": "decided"},
                         "scores": [{"name": "gih(1, 2)", "kl": kl}, {"name": "bayes", "kl": 0.5}]}}

    reports = (None, report((1,), 0.3), {"other": 1}, report((1, 2), 0.1), report((1, 2), 0.05))
    assert effective_sets(reports) == (None, (1,), None, (1, 2), (1, 2))
    kl = distances(reports, "gih(1, 2)")
    assert np.array_equal(np.isnan(kl), [True, False, True, False, False])
    assert kl[~np.isnan(kl)].tolist() == [0.3, 0.1, 0.05]
    assert settled_index([(1,), (1, 2), (1, 2)]) == 1 and settled_index([]) is None
    assert settled_index([(2,), (1,), (2,)]) == 2 and settled_index([(1,)]) == 0
    h = History(PAPER_MODEL.sets, [0, 1, 2, 4, 8], ("init",) + ("s",) * 4, [1.0] * 5,
                np.full((5, 7), 1 / 7), np.zeros((5, 3, 3)), [0.01] * 5, reports)
    assert h.settled_step() == 4 and h.effective_sets() == effective_sets(reports)
    assert History(h.sets, [], (), [], np.zeros((0, 7)), np.zeros((0, 3, 3)), []
                   ).settled_step() is None


def test_settling_counts_decided_sets_only() -> None:
    def report(head_set, verdict):
        return {"last": {"effective": {"head_set": list(head_set), "verdict": verdict},
                         "scores": []}}

    steps = [0, 1, 2, 4, 8, 16]
    reports = (report((1,), "no GIH fits"), report((1, 2), "decided"),
               report((1, 2), "undecided"), None, report((1, 2), "decided"),
               report((1, 2), "decided"))
    assert effective_sets(reports) == (None, (1, 2), None, None, (1, 2), (1, 2)), (
        "only decided rows carry a set")
    settled = settled_step(steps, reports)
    assert settled == 8, (
        f"predicted step 8 (the undecided step 2 breaks the run from step 1; the unprobed step "
        f"4 does not count), measured {settled}")
    last_undecided = reports[:-1] + (report((1, 2), "undecided"),)
    assert settled_step(steps, last_undecided) is None, "nothing settles on an undecided row"


# ---------------------------------------------------------------------------- bad input
class _NotTrainable(nn.Module):
    """A module without the TrainableModel interface."""

    def __init__(self) -> None:
        super().__init__()
        self.spec, self.vocab_size, self.loss_kind = PAPER_MODEL, 3, "nll"


class _Subclass(FullInductionHeadModel):
    """A TrainableModel of a class no checkpoint kind names."""


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"model": _NotTrainable()}, "model: expected a numerics.InductionHeadModel or "
     "numerics.FullInductionHeadModel (an nn.Module with the TrainableModel interface), "
     "received '_NotTrainable'"),
    ({"model": "model"}, "received 'str'"),
    ({"model": _Subclass(PAPER_MODEL, 3), "checkpoint_path": "unused.pt"},
     "model with a checkpoint: expected a model of a registered kind (numerics.training.KINDS: "
     "InductionHeadModel, FullInductionHeadModel), received '_Subclass'"),
    ({"callback": "report"}, "callback: expected None or a callable"),
    ({"callback": lambda model, step: [step]}, "callback result: expected a mapping or None, "
     "received 'list'"),
    ({"callback": lambda model, step: {"x": math.nan}}, "callback result at step 0: expected a "
     "JSON-serialisable mapping without NaN or inf"),
])
def test_bad_train_arguments_name_expected_and_received(kwargs, fragment) -> None:
    with pytest.raises(InductionHeadsError) as info:
        _train(_config(), **kwargs)
    message = str(info.value)
    assert fragment in message and "expected" in message and "received" in message, message


def test_a_subclass_trains_without_a_checkpoint() -> None:
    result = _train(_config(), _Subclass(PAPER_MODEL, 3))
    assert result.history.loss[-1] < result.history.loss[0]


def test_unknown_model_kind_in_a_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.pt"
    _train(_config(), checkpoint_path=path, stop_after=3)
    data = load_checkpoint(path)
    for change, fragment in [
        ({"model_kind": "dense"}, "checkpoint model_kind: expected one of ('simplified', "
         "'full'), received 'dense'"),
        ({"model_kind": "simplified"}, "checkpoint model_options: expected {} or "
         "{'norm_offset': a float >= 0} (the simplified model's only option)"),
        ({"model_options": {**data["model_options"], "normalization": "rms"}},
         "checkpoint model_options['normalization']: expected one of ('layernorm', 'l2'), "
         "received 'rms'"),
        ({"model_options": {**data["model_options"], "normalization": "l2"}},
         "checkpoint model_state: expected a dict with keys ['A', 'C', 'V', 'a', 'w'] "
         "(model kind 'full')"),
    ]:
        bad = tmp_path / "bad.pt"
        torch.save({**data, **change}, bad)
        for call in (load_checkpoint, load_model, lambda p: resume(p, progress=False)):
            with pytest.raises(InductionHeadsError) as info:
                call(bad)
            assert fragment in str(info.value) and str(bad) in str(info.value), str(info.value)


# ---------------------------------------------------------------------------- the defaults
DRAWN_SOURCE = Source(5, (1, 2, 3), Dirichlet(0.328))
"""A property-tier source (d = 5, P = (1, 2, 3)) on which the reference copier rate diverges."""
DRAWN_MODEL = ModelSpec(heads=3, window=3, degree=3, w_plus=2.8904)
"""Its model: H = M = D = 3, w_+ = init_logit(3) (mass 0.9 on the own offset)."""
SMALL_N, SMALL_L, SMALL_STOP = 200, 50, 60
"""A reduced run of the drawn case: the reference rates diverge at step 43 (step 3 of the
copier stage) with data seed 0; stopping at step 60 covers 20 copier steps (about 6 s)."""


def _reference_stagewise(config: TrainConfig) -> TrainConfig:
    """``config`` with the reference rates (FULL_STAGEWISE_DEFAULTS unscaled, SGD throughout)."""
    stages = (StageConfig("selector", ("C",), 300.0, 40), StageConfig("copier", ("w",), 10.0, 80),
              StageConfig("classifier", ("a",), 1e-3, 20))
    return dataclasses.replace(config, stages=stages)


def test_scaled_copier_rate_does_not_diverge_where_the_reference_rate_does() -> None:
    config = default_config("stagewise", kind="full", sequences=SMALL_N, seq_len=SMALL_L,
                            device="cpu", vocab_size=5, degree=3)
    assert config.stages[1].lr == pytest.approx(10.0 * full_rate_scale(5, 3)) and (
        full_rate_scale(5, 3) == pytest.approx(18 / 375)), config.stages[1]

    def run(cfg: TrainConfig):
        return train(FullInductionHeadModel(DRAWN_MODEL, 5), DRAWN_SOURCE, cfg,
                     generator=torch.Generator().manual_seed(0), progress=False,
                     stop_after=SMALL_STOP)

    with pytest.raises(InductionHeadsError, match=r"step 4\d \(step \d of stage 'copier'\)"):
        run(_reference_stagewise(config))
    h = run(config).history
    assert np.all(np.isfinite(h.loss)) and h.loss.max() <= h.loss[0], (
        f"losses {h.loss[0]:.4f} -> max {h.loss.max():.4f}")
    assert h.loss[-1] < h.loss[0] - 0.05, f"loss {h.loss[0]:.4f} -> {h.loss[-1]:.4f}"


def test_default_rates_scale_with_vocabulary_and_degree() -> None:
    for mode in ("stagewise", "joint"):
        reference = default_config(mode, kind="full")
        assert default_config(mode, kind="full", vocab_size=3, degree=2) == reference
        assert default_config(mode, kind="full", vocab_size=2, degree=1) == reference, (
            "rates are never raised above the reference")
    joint = default_config("joint", kind="full", vocab_size=5, degree=3).stages[0]
    assert joint.lr_of("w") == pytest.approx(2.0 * 18 / 375)
    assert joint.lr_of("a") == pytest.approx(1e-4 * (9 / 125) ** 2)
    assert joint.lr_of("C") == 1000.0
    stages = default_config("stagewise", kind="full", vocab_size=5, degree=3).stages
    assert [s.optimizer for s in stages] == ["sgd", "sgd", "adam"]
    assert [s.lr for s in stages][::2] == [300.0, 1e-4], "only the copier's rate scales"
    for bad in ({"vocab_size": 1}, {"degree": 0}, {"vocab_size": 2.5}):
        with pytest.raises(InductionHeadsError, match="expected"):
            default_config("stagewise", kind="full", **bad)


def _heldout() -> tuple[torch.Tensor, float]:
    """Held-out sequences (n, L+1) and the loss of GIH(1,2) at its best temperature on them."""
    tokens = sample_sequences(PAPER_SOURCE, HELDOUT_N, 101,
                              generator=torch.Generator().manual_seed(HELDOUT_SEED))
    ctx, y = tokens[:, :-1].numpy(), tokens[:, -1].numpy()
    a = optimal_temperature(ctx, y, (1, 2), vocab_size=3)
    return tokens, prediction_loss(gih_predict(ctx, (1, 2), a, vocab_size=3), y)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["stagewise", "joint"])
def test_full_defaults_reach_the_induction_head(mode) -> None:
    config = default_config(mode, kind="full", device="cpu",
                            vocab_size=PAPER_SOURCE.vocab_size, degree=PAPER_MODEL.degree)
    model = _model()
    result = train(model, PAPER_SOURCE, config, generator=torch.Generator().manual_seed(0),
                   progress=False)
    h = result.history
    c12 = h.selector[-1, PAPER_MODEL.sets.index((1, 2))]
    assert c12 >= SELECTED_MIN, f"c̃(1,2) = {c12:.4f} < {SELECTED_MIN}"
    peaks = h.copier[-1].argmax(axis=1)[:2] + 1
    assert peaks.tolist() == [1, 2], f"heads 1, 2 peak at offsets {peaks.tolist()}: {h.copier[-1]}"
    held, gih = _heldout()
    with torch.no_grad():
        loss = float(model.loss(held))
    assert loss <= gih + GIH_GAP, f"held-out loss {loss:.4f} vs GIH(1,2) {gih:.4f} + {GIH_GAP}"


@pytest.mark.slow
def test_full_stagewise_defaults_converge_on_a_drawn_source() -> None:
    config = default_config("stagewise", kind="full", sequences=1000, device="cpu",
                            vocab_size=DRAWN_SOURCE.vocab_size, degree=DRAWN_MODEL.degree)
    model = FullInductionHeadModel(DRAWN_MODEL, DRAWN_SOURCE.vocab_size)
    h = train(model, DRAWN_SOURCE, config, generator=torch.Generator().manual_seed(5),
              progress=False).history
    assert h.loss.max() <= h.loss[0], f"losses {h.loss[0]:.4f} -> max {h.loss.max():.4f}"
    top = float(h.selector[-1].max())
    assert top >= SELECTED_MIN, f"largest c̃ {top:.4f} < {SELECTED_MIN}"
    tokens = sample_sequences(DRAWN_SOURCE, HELDOUT_N, 101,
                              generator=torch.Generator().manual_seed(HELDOUT_SEED))
    fit = sample_sequences(DRAWN_SOURCE, 1000, 101, generator=torch.Generator().manual_seed(777))
    rows = fitted_temperatures(fit.numpy(), DRAWN_MODEL.sets, vocab_size=5)
    uniform = np.full((HELDOUT_N, 5), 0.2)
    gih = best_gih_view(score_query(uniform, tokens.numpy(), DRAWN_SOURCE, DRAWN_MODEL.sets,
                                    gih_at=[(k, s, a) for k, (s, a) in rows.items()]))
    with torch.no_grad():
        loss = float(model.loss(tokens))
    best = f"best GIH{tuple(gih['best_set'])} {gih['best']:.4f}"
    assert loss <= gih["best"] + GIH_GAP, f"held-out loss {loss:.4f} vs {best} + {GIH_GAP}"
