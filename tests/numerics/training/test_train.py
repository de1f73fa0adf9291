"""Training: short runs on the paper's setting, batch modes, checkpoint resume, bad input."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from numerics.devices import resolve_device
from numerics.models.simplified import InductionHeadModel
from numerics.training import (
    JOINT_DEFAULTS,
    STAGEWISE_DEFAULTS,
    History,
    StageConfig,
    TrainConfig,
    default_config,
    load_checkpoint,
    log_steps,
    resume,
    train,
)
from numerics.training.checkpoint import save_checkpoint
from numerics.training.config import MAX_LEARNING_RATE
from numerics.training.loop import EXPLOSION_NATS
from theory import PAPER_MODEL, PAPER_SOURCE, Dirichlet, InductionHeadsError, ModelSpec, Source

SHORT_N, SHORT_L, SHORT_STEPS = 800, 60, 40
"""Paper setting cut down: n = 800, L = 60, 40 steps a stage (~0.5 s; seeds 0-4 all pick (1, 2))."""
UNIFORM_SELECTOR = 1 / len(PAPER_MODEL.sets)
"""c̃ at initialisation (C_S = 1 for all 7 sets)."""
PARENTS = (1, 2)
MIN_LOSS_DROP = 0.2
"""Nats the short stage-wise / joint run must gain (seen: 0.79 -> 0.31 and 0.79 -> 0.31)."""
MIN_SELECTOR_GAIN = 0.3
"""c̃(1,2) after the selector stage minus 1/7 (seen: 0.79 - 0.14)."""
HEALTHY_MAX_RISE = 0.1 * EXPLOSION_NATS
"""Nats a healthy run's logged loss may rise above its initial loss (seen: 0, it only falls)."""
MAX_PROGRESS_LINES_PER_STAGE = 1
"""Non-terminal progress: exactly one line per stage, no carriage-return redraws."""


def _short(mode: str, **kwargs) -> TrainConfig:
    if mode == "joint":
        stages = (StageConfig("joint", ("C", "w", "a"), JOINT_DEFAULTS[0], SHORT_STEPS),)
    else:
        stages = tuple(StageConfig(name, params, lr, SHORT_STEPS)
                       for name, params, lr, _ in STAGEWISE_DEFAULTS)
    return TrainConfig(mode, stages, kwargs.pop("sequences", SHORT_N),
                       kwargs.pop("seq_len", SHORT_L), device="cpu", **kwargs)


def _run(config: TrainConfig, seed: int = 0, **kwargs):
    model = InductionHeadModel(PAPER_MODEL, PAPER_SOURCE.vocab_size, loss=config.loss)
    kwargs.setdefault("progress", False)
    return train(model, PAPER_SOURCE, config, generator=torch.Generator().manual_seed(seed),
                 **kwargs)


@pytest.fixture(scope="module")
def stagewise():
    return _run(_short("stagewise"))


def test_stagewise_loss_decreases(stagewise) -> None:
    loss = stagewise.history.loss
    assert loss[-1] < loss[0] - MIN_LOSS_DROP, f"loss {loss[0]:.4f} -> {loss[-1]:.4f}"
    for name in ("selector", "copier", "classifier"):
        stage = stagewise.history.stage(name).loss
        assert stage[-1] <= stage[0], f"stage {name}: loss {stage[0]:.6f} -> {stage[-1]:.6f}"


def test_stagewise_selector_moves_toward_the_parents(stagewise) -> None:
    h = stagewise.history
    k = h.sets.index(PARENTS)
    assert h.selector[0, k] == pytest.approx(UNIFORM_SELECTOR)
    after = h.stage("selector").selector[-1]                       # (|𝒮|,)
    assert after[k] > UNIFORM_SELECTOR + MIN_SELECTOR_GAIN, f"c̃(1,2) = {after[k]:.4f}"
    assert int(np.argmax(after)) == k, f"largest c̃ is {h.sets[int(np.argmax(after))]}: {after}"
    assert np.all(np.diff(h.stage("selector").selector[:, k]) >= 0), "c̃(1,2) not monotone"


def test_stagewise_copier_sharpens_and_stages_freeze_the_rest(stagewise) -> None:
    h = stagewise.history
    copier = h.stage("copier").copier                               # (T, H, M)
    for head in (1, 2):
        start, end = h.copier[0, head - 1, head - 1], copier[-1, head - 1, head - 1]
        assert end > start, f"head {head}: σ(offset {head}) {start:.4f} -> {end:.4f}"
    assert np.all(h.stage("selector").copier == h.copier[0]), "w moved in the selector stage"
    assert np.all(h.stage("copier").a == h.a[0]), "a moved before the classifier stage"
    assert h.a[-1] > h.a[0], f"a {h.a[0]} -> {h.a[-1]}"


def test_healthy_runs_stay_far_below_the_divergence_rule(stagewise) -> None:
    for name, h in (("stagewise", stagewise.history), ("joint", _run(_short("joint")).history)):
        rise = float(np.max(h.loss - h.loss[0]))
        assert rise <= HEALTHY_MAX_RISE, (
            f"{name}: logged loss rose {rise:.4f} nats above the initial {h.loss[0]:.4f} "
            f"(rule fires at {EXPLOSION_NATS})")


def test_joint_run_reduces_loss() -> None:
    h = _run(_short("joint")).history
    assert h.loss[-1] < h.loss[0] - MIN_LOSS_DROP, f"loss {h.loss[0]:.4f} -> {h.loss[-1]:.4f}"
    assert set(h.stages) == {"init", "joint"}


@pytest.mark.parametrize("batch", [50, "fresh"])
def test_minibatch_and_fresh_modes_are_reproducible_by_seed(batch) -> None:
    config = _short("stagewise", sequences=200, seq_len=30, batch=batch)
    first, again, other = (_run(config, seed=s).history for s in (3, 3, 4))
    assert first.to_dict() == again.to_dict(), "same seed, different history"
    assert not np.array_equal(first.loss, other.loss), "different seeds, same losses"
    assert np.all(np.isfinite(first.loss)) and first.loss[-1] < first.loss[0]


# ------------------------------------------------------------------------- checkpoints
def _resume_config(batch, optimizer) -> TrainConfig:
    extra = {"optimizer": "adam"} if optimizer == "adam" else {"momentum": 0.5}
    lrs = {"adam": (0.05, 0.05, 0.05), "sgd": (300.0, 300.0, 1.0)}[optimizer]
    stages = tuple(StageConfig(name, params, lr, 8, **extra) for (name, params, _, _), lr
                   in zip(STAGEWISE_DEFAULTS, lrs))
    return TrainConfig("stagewise", stages, 60, 20, batch=batch, device="cpu", log_points=4)


@pytest.mark.parametrize(("batch", "optimizer", "stop"),
                         [("full", "sgd", 5), (16, "adam", 11), ("fresh", "sgd", 8),
                          (16, "sgd", 16)])
def test_resume_is_bit_identical(tmp_path: Path, batch, optimizer, stop) -> None:
    config = _resume_config(batch, optimizer)
    whole = _run(config, seed=1)
    path = tmp_path / "run.pt"
    part = _run(config, seed=1, checkpoint_path=path, stop_after=stop)
    assert part.history.steps[-1] <= stop and load_checkpoint(path)["step"] == stop
    resumed = resume(path, progress=False)
    for name, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[name]), f"{name} differs"
    assert whole.history.to_dict() == resumed.history.to_dict()
    assert resumed.config == config


def test_checkpoint_every_and_resume_twice(tmp_path: Path) -> None:
    config = _resume_config(16, "sgd")
    path = tmp_path / "run.pt"
    _run(config, seed=2, checkpoint_path=path, checkpoint_every=5, stop_after=7)
    assert load_checkpoint(path)["step"] == 7
    resume(path, progress=False, stop_after=13)
    assert load_checkpoint(path)["step"] == 13
    final = resume(path, progress=False)
    assert final.history.to_dict() == _run(config, seed=2).history.to_dict()


class _Arbitrary:
    """An object a weights-only load must refuse to unpickle."""


def test_loading_is_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "run.pt"
    _run(_resume_config("full", "sgd"), checkpoint_path=path, stop_after=3)
    data = load_checkpoint(path)
    torch.save({**data, "history": _Arbitrary()}, tmp_path / "evil.pt")
    with pytest.raises(InductionHeadsError, match="expected a file written by numerics.train"):
        load_checkpoint(tmp_path / "evil.pt")


def test_device_auto_and_log_steps() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    for steps, points in [(1, 2), (5, 30), (150, 30), (1000, 7), (37, 37)]:
        s = log_steps(steps, points)
        assert s[0] == 1 and s[-1] == steps and len(s) <= points, (steps, points, s)
        assert np.all(np.diff(s) > 0) and s.dtype == np.int64
    assert np.array_equal(log_steps(5, 30), np.arange(1, 6)) and len(log_steps(0, 5)) == 0
    big = log_steps(10_000, 20)
    ratios = big[1:] / big[:-1]
    assert np.allclose(ratios[-5:], 10_000 ** (1 / 19), rtol=0.01), f"not log-spaced: {big}"


def test_defaults_are_the_documented_schedule() -> None:
    cfg = default_config()
    assert [(s.name, s.params, s.lr, s.steps) for s in cfg.stages] == list(STAGEWISE_DEFAULTS)
    assert (cfg.sequences, cfg.seq_len, cfg.batch, cfg.device) == (2000, 100, "full", "auto")
    joint = default_config("joint")
    assert joint.stages[0].params == ("C", "w", "a") and joint.total_steps == JOINT_DEFAULTS[1]
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


# ------------------------------------------------------------------------- bad input
C_STAGE = {"name": "s", "params": ("C",), "lr": 1.0, "steps": 3}
BAD_STAGES = [
    ({"name": ""}, "stage name"), ({"name": "init"}, "stage name"),
    ({"params": ()}, "params"), ({"params": ("X",)}, "params"), ({"params": ("C", "C")}, "params"),
    ({"lr": {"w": 1.0}}, "lr"), ({"lr": {"C": 0.0}}, "lr"), ({"lr": -1.0}, "lr"),
    ({"lr": math.nan}, "lr"), ({"lr": "fast"}, "lr"), ({"lr": [1.0]}, "lr"),
    ({"lr": (1.0,)}, "lr"), ({"lr": True}, "lr"), ({"lr": math.inf}, "lr"), ({"lr": "1.0"}, "lr"),
    ({"lr": torch.tensor(1.0)}, "lr"), ({"lr": None}, "lr"), ({"lr": {"C": True}}, "lr"),
    ({"lr": {"C": "1"}}, "lr"), ({"lr": [("C", 1.0), ("C", 2.0)]}, "lr"),
    ({"lr": 10 * MAX_LEARNING_RATE}, "lr"), ({"momentum": math.nan}, "momentum"),
    ({"steps": -1}, "steps"),
    ({"steps": 1.5}, "steps"), ({"steps": True}, "steps"), ({"optimizer": "rmsprop"}, "optimizer"),
    ({"momentum": 1.0}, "momentum"), ({"momentum": -0.1}, "momentum"),
    ({"optimizer": "adam", "momentum": 0.5}, "momentum"),
]


@pytest.mark.parametrize(("change", "what"), BAD_STAGES)
def test_bad_stage_config(change, what) -> None:
    with pytest.raises(InductionHeadsError, match=f"{what}.*: expected .*, received "):
        StageConfig(**{**C_STAGE, **change})


def test_numpy_numbers_are_accepted_in_stages() -> None:
    stage = StageConfig("s", ["C"], np.float32(0.5), np.int64(3), momentum=np.float64(0.25))
    assert (stage.lr, stage.steps, stage.momentum) == (0.5, 3, 0.25)
    assert type(stage.lr) is float and type(stage.steps) is int
    pairs = StageConfig("t", ("C", "a"), {"a": np.float64(2.0), "C": np.int64(7)}, 1)
    assert pairs.lr == (("C", 7.0), ("a", 2.0))
    assert StageConfig("t", ("C", "a"), pairs.lr, 1) == pairs, "stored pairs not accepted back"


def test_bad_stage_lookups() -> None:
    with pytest.raises(InductionHeadsError, match="param: expected one of .*received 'w'"):
        StageConfig(**C_STAGE).lr_of("w")
    for bad in ({"name": "s"}, {**C_STAGE, "extra": 1}, "not a dict"):
        with pytest.raises(InductionHeadsError, match="stage: expected a dict with keys"):
            StageConfig.from_dict(bad)


GOOD = {"mode": "stagewise", "stages": (StageConfig(**C_STAGE),), "sequences": 10,
        "seq_len": 8, "device": "cpu"}
BAD_CONFIGS = [
    ({"mode": "both"}, "mode"), ({"stages": ()}, "stages"),
    ({"stages": (StageConfig(**C_STAGE),) * 2}, "stage names"),
    ({"mode": "joint"}, "joint stages"), ({"sequences": 0}, "sequences"),
    ({"seq_len": 1}, "seq_len"), ({"batch": 0}, "batch"), ({"batch": 11}, "batch"),
    ({"batch": "half"}, "batch"), ({"loss": "mse"}, "loss"), ({"dtype": "float16"}, "dtype"),
    ({"device": "tpu"}, "device"), ({"log_points": 1}, "log_points"),
    ({"start": "weird"}, "start"), ({"burn_in": -1}, "burn_in"), ({"start": "burn_in"}, "start"),
    ({"dtype": ["float32"]}, "dtype"), ({"dtype": "float"}, "dtype"),
]


@pytest.mark.parametrize(("change", "what"), BAD_CONFIGS)
def test_bad_train_config(change, what) -> None:
    with pytest.raises(InductionHeadsError, match=f"{what}: expected .*, received "):
        TrainConfig(**{**GOOD, **change})


def test_bad_config_dicts_and_helpers() -> None:
    good = TrainConfig(**GOOD).to_dict()
    for bad, what in [({k: v for k, v in good.items() if k != "stages"}, "train config"),
                      ({**good, "colour": 1}, "train config"), ({**good, "stages": "C"}, "stages")]:
        with pytest.raises(InductionHeadsError, match=f"{what}: expected"):
            TrainConfig.from_dict(bad)
    for call, what in [(lambda: default_config("both"), "mode"),
                       (lambda: log_steps(-1, 5), "steps"), (lambda: log_steps(5, 1), "points"),
                       (lambda: resolve_device("tpu"), "device")]:
        with pytest.raises(InductionHeadsError, match=f"{what}: expected"):
            call()
    if not torch.cuda.is_available():
        with pytest.raises(InductionHeadsError, match="CUDA is not available.*'cuda'"):
            resolve_device("cuda")


def _model(**kwargs):
    return InductionHeadModel(PAPER_MODEL, 3, **kwargs)


FAR = Source(3, (1, 5), Dirichlet(0.1))
CFG = TrainConfig(**GOOD)
BAD_TRAIN = [
    ({"model": "model"}, "model: expected a numerics.InductionHeadModel"),
    ({"source": PAPER_SOURCE.to_dict()}, "source: expected a theory.Source"),
    ({"config": CFG.to_dict()}, "config: expected one of"),
    ({"generator": 0}, "generator: expected a torch.Generator"),
    ({"model": _model(loss="official_ce")}, "model loss: expected config.loss = 'nll'"),
    ({"model": InductionHeadModel(PAPER_MODEL, 4)}, "model vocab_size: expected the source's d"),
    ({"config": TrainConfig(**{**GOOD, "seq_len": 3})}, "seq_len: expected L > window M = 3"),
    ({"source": FAR, "config": TrainConfig(**{**GOOD, "seq_len": 4})},
     r"seq_len: expected L >= max\(parents\) = 5"),
    ({"checkpoint_every": 0}, "checkpoint_every: expected None or an integer >= 1"),
    ({"stop_after": 0}, "stop_after: expected None or a global step > 0"),
]


@pytest.mark.parametrize(("change", "message"), BAD_TRAIN)
def test_bad_train_arguments(change, message) -> None:
    kwargs = {"model": _model(), "source": PAPER_SOURCE, "config": CFG,
              "generator": torch.Generator().manual_seed(0), "progress": False, **change}
    with pytest.raises(InductionHeadsError, match=message):
        train(kwargs.pop("model"), kwargs.pop("source"), kwargs.pop("config"), **kwargs)


def test_bad_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "run.pt"
    _run(_resume_config("full", "sgd"), checkpoint_path=path, stop_after=4)
    with pytest.raises(InductionHeadsError, match="stop_after: expected None or a global step > 4"):
        resume(path, progress=False, stop_after=4)
    with pytest.raises(InductionHeadsError, match="checkpoint path: expected an existing"):
        resume(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InductionHeadsError, match="expected a file written by numerics.train"):
        load_checkpoint(tmp_path / "junk.pt")
    data = load_checkpoint(path)
    for change, message in [({"format": "other"}, "checkpoint format: expected"),
                            ({"version": 99}, "checkpoint version: expected 1 or 2, received 99")]:
        torch.save({**data, **change}, tmp_path / "bad.pt")
        with pytest.raises(InductionHeadsError, match=message):
            load_checkpoint(tmp_path / "bad.pt")
    torch.save({k: v for k, v in data.items() if k != "sample"}, tmp_path / "bad.pt")
    with pytest.raises(InductionHeadsError, match=r"checkpoint keys: .*missing \['sample'\]"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(InductionHeadsError, match="checkpoint: expected a dict with keys"):
        save_checkpoint(tmp_path / "x.pt", {"format": "x"})
    with pytest.raises(InductionHeadsError, match="expected a writable file"):
        save_checkpoint(tmp_path / "no" / "dir" / "x.pt", data)
    with pytest.raises(InductionHeadsError, match="history: expected a dict with keys"):
        History.from_dict({"sets": []})


# ------------------------------------------------------------------------- divergence
SELECTOR_FIRST = StageConfig("selector", ("C",), 3000.0, 3)
"""A healthy stage run before the diverging one, so the error must name the right stage."""


def _diverging(*stages: StageConfig, spec: ModelSpec = PAPER_MODEL, **kwargs):
    """Train ``stages`` with n = 200, L = 30."""
    config = TrainConfig("stagewise", stages, 200, 30, device="cpu", **kwargs)
    model = InductionHeadModel(spec, 3)
    return train(model, PAPER_SOURCE, config, generator=torch.Generator().manual_seed(0),
                 progress=False)


def test_huge_learning_rate_on_a_stops_with_the_stage_and_step() -> None:
    """lr = 1e30 throws a to ~1e29 at once: the hard-argmax loss sits > 1 nat above the start."""
    with pytest.raises(InductionHeadsError,
                       match=r"training loss at step 4 \(step 1 of stage 'classifier'\): "
                             r"expected at most the initial loss .* \+ EXPLOSION_NATS = .*"
                             r"lower the learning rate of stage 'classifier'.*received "):
        _diverging(SELECTOR_FIRST, StageConfig("classifier", ("a",), 1e30, 20))


@pytest.mark.parametrize("param", ["C", "w"])
def test_non_finite_parameters_stop_the_run_at_that_step(param) -> None:
    """At a = 1e6 the C and w gradients scale with a; lr 1e36 overflows float32 in one step."""
    with pytest.raises(InductionHeadsError,
                       match=rf"training parameters after step 1 \(step 1 of stage 'boom'\): "
                             rf"expected finite values .*\('{param}',\).*received \{{'{param}': "):
        _diverging(StageConfig("boom", (param,), MAX_LEARNING_RATE, 5),
                   spec=ModelSpec(3, 3, 2, a_init=1e6))


def test_non_finite_loss_stops_the_run() -> None:
    """lr 1e30 on C makes C² overflow float32: c̃ = inf/inf, the logged loss is nan."""
    with pytest.raises(InductionHeadsError,
                       match=r"training loss at step 4 \(step 1 of stage 'boom'\): "
                             r"expected a finite value .*received nan"):
        _diverging(SELECTOR_FIRST, StageConfig("boom", ("C",), 1e30, 5))


def test_resumed_run_diverges_against_the_original_initial_loss(tmp_path: Path) -> None:
    stage = StageConfig("classifier", ("a",), 1e30, 5)
    config = TrainConfig("stagewise", (SELECTOR_FIRST, stage), 200, 30, device="cpu")
    path = tmp_path / "run.pt"
    train(InductionHeadModel(PAPER_MODEL, 3), PAPER_SOURCE, config, progress=False,
          generator=torch.Generator().manual_seed(0), checkpoint_path=path, stop_after=3)
    with pytest.raises(InductionHeadsError, match=r"step 4 \(step 1 of stage 'classifier'\)"):
        resume(path, progress=False)


# ------------------------------------------------------------------------- progress output
class _Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_progress_to_a_log_file_is_one_line_per_stage(capsys) -> None:
    _run(_resume_config("full", "sgd"), progress=True)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err, f"carriage returns in non-terminal output: {err!r}"
    assert len(lines) == MAX_PROGRESS_LINES_PER_STAGE * len(STAGEWISE_DEFAULTS), lines
    for line, (name, params, _, _) in zip(lines, STAGEWISE_DEFAULTS):
        assert line.startswith(f"train: stage {name!r} ({', '.join(params)}) steps 1-8 of 8"), line


def test_progress_stopped_inside_a_stage_reports_the_steps_done(capsys) -> None:
    _run(_resume_config("full", "sgd"), progress=True, stop_after=11)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "'copier' (w) steps 1-3 of 8, global step 11/24" in lines[1], lines


def test_progress_on_a_terminal_is_a_tqdm_bar(monkeypatch) -> None:
    stream = _Terminal()
    monkeypatch.setattr("sys.stderr", stream)
    _run(_resume_config("full", "sgd"), progress=True)
    out = stream.getvalue()
    assert "\r" in out and "24/24" in out and "train: stage" not in out, out[-300:]


def test_no_progress_writes_nothing(capsys) -> None:
    _run(_resume_config("full", "sgd"))
    assert capsys.readouterr().err == ""
