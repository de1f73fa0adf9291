"""Training TF(M, H, d, D) (SPEC §2): stage-wise (C, then W, then a) or joint, with checkpoints.

A run is a :class:`TrainConfig`: a list of :class:`StageConfig` stages, each training a subset of
the parameters ``{"C", "W", "a"}`` (the others frozen) with its own optimizer, learning rates and
step count. ``mode="stagewise"`` is the paper's protocol (by default C, then W, then a);
``mode="joint"`` is one stage training all three with per-parameter learning rates.

Batches (``batch``), with n = ``sequences`` and sequences of ``L + 1 = seq_len + 1`` tokens:
    ``"full"``    full-batch gradient descent on one fixed sample of n sequences drawn at the start
                  (approximates gradient flow on the empirical loss); its copier inputs are
                  prepared once, so a step is cheap;
    int B         minibatches of B sequences of that fixed sample, drawn without replacement anew
                  at every step;
    ``"fresh"``   n fresh sequences every step (approximates the population loss).

Randomness comes only from the ``torch.Generator`` passed to :func:`train`, in this order: the
fixed sample (for ``"fresh"``: a fixed *evaluation* sample of n sequences), then per step the
minibatch permutation or the fresh sequences. The logged ``loss`` is the objective at the logged
parameters on the fixed sample (no gradient); for ``"fresh"`` that is the evaluation sample, an
unbiased estimate of the population loss.

The logged rows (:class:`numerics.checkpoint.History`) are the initial state and, within each
stage of S steps, the steps :func:`log_steps` (S, ``log_points``): log-spaced, first and last
included. Checkpoints (:mod:`numerics.checkpoint`) hold everything needed for :func:`resume`
to continue a run bit-identically on the same device.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from numerics.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    History,
    HistoryRecord,
    load_checkpoint,
    save_checkpoint,
)
from numerics.data import START_MODES, sample_sequences
from numerics.model import LOSS_KINDS, CopierInputs, InductionHeadModel, prepare_inputs
from theory.errors import require
from theory.spec import ModelSpec, Source

__all__ = ["PARAMS", "MODES", "OPTIMIZERS", "DTYPES", "DEFAULT_LOG_POINTS", "STAGEWISE_DEFAULTS",
           "JOINT_DEFAULTS", "StageConfig", "TrainConfig", "TrainResult", "default_config",
           "log_steps", "resolve_device", "train", "resume"]

logger = logging.getLogger(__name__)

PARAMS = ("C", "W", "a")
"""Trainable parameter groups: selector ``C`` (|𝒮|,), copier logits ``W`` (H, M), temperature ``a``."""

MODES = ("stagewise", "joint")
"""``stagewise``: stages train parameter subsets in turn; ``joint``: one stage trains all three."""

OPTIMIZERS = ("sgd", "adam")
"""``sgd`` (optionally with momentum; plain SGD is gradient descent) or ``adam``."""

DTYPES = {"float32": torch.float32, "float64": torch.float64}
"""Names accepted for ``TrainConfig.dtype``."""

DEFAULT_LOG_POINTS = 30
"""Log-spaced history rows per stage (fewer when a stage has fewer steps)."""

STAGEWISE_DEFAULTS = (("selector", ("C",), 3000.0, 150),
                      ("copier", ("W",), 3000.0, 150),
                      ("classifier", ("a",), 1.0, 150))
"""(name, params, lr, steps) of the default stage-wise run, for ``a_init = 0.01``, ``c_init = 1``.

The gradients in C and W scale with ``a`` (SPEC §2), hence the large learning rates; plain
full-batch gradient descent. Measured on the paper's setting in ``numerics/train.py``'s report.
"""

JOINT_DEFAULTS = ({"C": 100.0, "W": 100.0, "a": 1.0}, 100)
"""(learning rates, steps) of the default joint run."""

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")

LearningRate = float | tuple[tuple[str, float], ...]


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
            and math.isfinite(float(value)))


@dataclass(frozen=True)
class StageConfig:
    """One training stage: which parameters move, how, and for how many steps.

    Attributes:
        name: label of the stage in the history (not ``"init"``).
        params: non-empty subset of :data:`PARAMS`; stored in :data:`PARAMS` order.
        lr: one learning rate > 0 for all ``params``, or a mapping ``param -> lr`` with exactly the
            keys ``params`` (stored as ``((param, lr), ...)`` in :data:`PARAMS` order).
        steps: number of updates, >= 0.
        optimizer: one of :data:`OPTIMIZERS`.
        momentum: SGD momentum in [0, 1) (0 for ``adam``).
    """

    name: str
    params: tuple[str, ...]
    lr: LearningRate
    steps: int
    optimizer: str = "sgd"
    momentum: float = 0.0

    def __post_init__(self) -> None:
        require(isinstance(self.name, str) and self.name.strip() != "" and self.name != "init",
                "stage name", "a non-empty string other than 'init'", self.name)
        params = self.params
        if isinstance(params, str):
            params = (params,)
        require(isinstance(params, (tuple, list)) and len(params) >= 1
                and all(p in PARAMS for p in params) and len(set(params)) == len(params),
                f"stage {self.name!r} params", f"distinct names from {PARAMS}", self.params)
        params = tuple(p for p in PARAMS if p in params)
        object.__setattr__(self, "params", params)
        lr = self.lr
        if isinstance(lr, Mapping) or (isinstance(lr, (tuple, list)) and not _is_number(lr)):
            lr = dict(lr)
            require(set(lr) == set(params), f"stage {self.name!r} lr",
                    f"one learning rate for each of {params}", sorted(lr))
            for p, v in lr.items():
                require(_is_number(v) and float(v) > 0, f"stage {self.name!r} lr[{p!r}]",
                        "a finite number > 0", v)
            lr = tuple((p, float(lr[p])) for p in params)
        else:
            require(_is_number(lr) and float(lr) > 0, f"stage {self.name!r} lr",
                    "a finite number > 0 or a mapping param -> lr", lr)
            lr = float(lr)
        object.__setattr__(self, "lr", lr)
        require(_is_int(self.steps) and self.steps >= 0, f"stage {self.name!r} steps",
                "an integer >= 0", self.steps)
        object.__setattr__(self, "steps", int(self.steps))
        require(self.optimizer in OPTIMIZERS, f"stage {self.name!r} optimizer",
                f"one of {OPTIMIZERS}", self.optimizer)
        require(_is_number(self.momentum) and 0 <= float(self.momentum) < 1,
                f"stage {self.name!r} momentum", "a number in [0, 1)", self.momentum)
        require(self.optimizer == "sgd" or float(self.momentum) == 0.0,
                f"stage {self.name!r} momentum", "0 with the adam optimizer", self.momentum)
        object.__setattr__(self, "momentum", float(self.momentum))

    def lr_of(self, param: str) -> float:
        """The learning rate of ``param`` (one of ``self.params``)."""
        require(param in self.params, f"stage {self.name!r} param", f"one of {self.params}", param)
        return self.lr if isinstance(self.lr, float) else dict(self.lr)[param]

    def to_dict(self) -> dict[str, Any]:
        lr = self.lr if isinstance(self.lr, float) else dict(self.lr)
        return {"name": self.name, "params": list(self.params), "lr": lr, "steps": self.steps,
                "optimizer": self.optimizer, "momentum": self.momentum}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageConfig:
        allowed = ("name", "params", "lr", "steps", "optimizer", "momentum")
        require(isinstance(data, dict) and {"name", "params", "lr", "steps"} <= set(data)
                and set(data) <= set(allowed), "stage",
                f"a dict with keys name, params, lr, steps and optionally {allowed[4:]}",
                sorted(data) if isinstance(data, dict) else data)
        return cls(**data)


@dataclass(frozen=True)
class TrainConfig:
    """A training run (module docstring).

    Attributes:
        mode: one of :data:`MODES` (``joint``: exactly one stage training C, W and a).
        stages: the stages in order (dicts are converted); names distinct.
        sequences: n, sample size (or batch size of a ``"fresh"`` run), >= 1.
        seq_len: L, context length; sequences have L + 1 tokens. Must exceed the window M.
        batch: ``"full"``, ``"fresh"`` or a minibatch size B in 1..n.
        loss: one of ``numerics.model.LOSS_KINDS``.
        dtype: a key of :data:`DTYPES`.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        log_points: history rows per stage, >= 2.
        start: sampler start mode (``numerics.data.START_MODES``).
        burn_in: sampler burn-in steps (0 for ``start="uniform"``).
    """

    mode: str
    stages: tuple[StageConfig, ...]
    sequences: int
    seq_len: int
    batch: str | int = "full"
    loss: str = "nll"
    dtype: str = "float32"
    device: str = "auto"
    log_points: int = DEFAULT_LOG_POINTS
    start: str = "uniform"
    burn_in: int = 0

    def __post_init__(self) -> None:
        require(self.mode in MODES, "mode", f"one of {MODES}", self.mode)
        require(isinstance(self.stages, (tuple, list)) and len(self.stages) >= 1, "stages",
                "a non-empty sequence of StageConfig", self.stages)
        stages = tuple(s if isinstance(s, StageConfig) else StageConfig.from_dict(s)
                       for s in self.stages)
        object.__setattr__(self, "stages", stages)
        names = [s.name for s in stages]
        require(len(set(names)) == len(names), "stage names", "distinct names", names)
        if self.mode == "joint":
            require(len(stages) == 1 and stages[0].params == PARAMS, "joint stages",
                    f"exactly one stage training {PARAMS}", [s.params for s in stages])
        require(_is_int(self.sequences) and self.sequences >= 1, "sequences",
                "an integer n >= 1", self.sequences)
        object.__setattr__(self, "sequences", int(self.sequences))
        require(_is_int(self.seq_len) and self.seq_len >= 2, "seq_len", "an integer L >= 2",
                self.seq_len)
        object.__setattr__(self, "seq_len", int(self.seq_len))
        if _is_int(self.batch):
            require(1 <= self.batch <= self.sequences, "batch",
                    f"'full', 'fresh' or a minibatch size in 1..n = {self.sequences}", self.batch)
            object.__setattr__(self, "batch", int(self.batch))
        else:
            require(self.batch in ("full", "fresh"), "batch",
                    "'full', 'fresh' or a minibatch size (int)", self.batch)
        require(self.loss in LOSS_KINDS, "loss", f"one of {LOSS_KINDS}", self.loss)
        require(self.dtype in DTYPES, "dtype", f"one of {tuple(DTYPES)}", self.dtype)
        require(isinstance(self.device, str) and _DEVICE_RE.match(self.device) is not None,
                "device", "'auto', 'cpu', 'cuda' or 'cuda:N'", self.device)
        require(_is_int(self.log_points) and self.log_points >= 2, "log_points",
                "an integer >= 2", self.log_points)
        object.__setattr__(self, "log_points", int(self.log_points))
        require(self.start in START_MODES, "start", f"one of {START_MODES}", self.start)
        require(_is_int(self.burn_in) and self.burn_in >= 0, "burn_in", "an integer >= 0",
                self.burn_in)
        require((self.start == "uniform") == (self.burn_in == 0), "burn_in",
                "0 with start='uniform' and >= 1 with start='burn_in'", self.burn_in)
        object.__setattr__(self, "burn_in", int(self.burn_in))

    @property
    def total_steps(self) -> int:
        """Updates over all stages."""
        return sum(s.steps for s in self.stages)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; :meth:`from_dict` inverts it exactly."""
        return {"mode": self.mode, "stages": [s.to_dict() for s in self.stages],
                "sequences": self.sequences, "seq_len": self.seq_len, "batch": self.batch,
                "loss": self.loss, "dtype": self.dtype, "device": self.device,
                "log_points": self.log_points, "start": self.start, "burn_in": self.burn_in}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        required = ("mode", "stages", "sequences", "seq_len")
        allowed = required + ("batch", "loss", "dtype", "device", "log_points", "start",
                              "burn_in")
        require(isinstance(data, dict) and set(required) <= set(data)
                and set(data) <= set(allowed), "train config",
                f"a dict with keys {required} and optionally {allowed[4:]}",
                sorted(data) if isinstance(data, dict) else data)
        require(isinstance(data["stages"], list), "stages", "a list of stage dicts",
                data["stages"])
        return cls(**{**data, "stages": tuple(StageConfig.from_dict(s) for s in data["stages"])})


def default_config(mode: str = "stagewise", *, sequences: int = 2000, seq_len: int = 100,
                   batch: str | int = "full", loss: str = "nll", dtype: str = "float32",
                   device: str = "auto", log_points: int = DEFAULT_LOG_POINTS) -> TrainConfig:
    """The library's default run: :data:`STAGEWISE_DEFAULTS` or :data:`JOINT_DEFAULTS`.

    Plain full-batch gradient descent (SGD without momentum), tuned for ``ModelSpec``'s default
    initialisation (``w_+ = 1``, ``w_- = 0``, ``C = 1``, ``a = 0.01``).
    """
    require(mode in MODES, "mode", f"one of {MODES}", mode)
    if mode == "stagewise":
        stages = tuple(StageConfig(name, params, lr, steps)
                       for name, params, lr, steps in STAGEWISE_DEFAULTS)
    else:
        lrs, steps = JOINT_DEFAULTS
        stages = (StageConfig("joint", PARAMS, dict(lrs), steps),)
    return TrainConfig(mode, stages, sequences, seq_len, batch=batch, loss=loss, dtype=dtype,
                       device=device, log_points=log_points)


def log_steps(steps: int, points: int) -> np.ndarray:
    """Log-spaced steps of a stage: ``unique(round(geomspace(1, S, points)))``, (<= points,) int64.

    Always contains 1 and S (for S >= 1); every step when ``points >= S``; empty for S = 0.
    """
    require(_is_int(steps) and steps >= 0, "steps", "an integer >= 0", steps)
    require(_is_int(points) and points >= 2, "points", "an integer >= 2", points)
    if steps == 0:
        return np.zeros(0, dtype=np.int64)
    if points >= steps:
        return np.arange(1, steps + 1, dtype=np.int64)
    return np.unique(np.round(np.geomspace(1, steps, points)).astype(np.int64))


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda..."`` must be available."""
    require(isinstance(name, str) and _DEVICE_RE.match(name) is not None, "device",
            "'auto', 'cpu', 'cuda' or 'cuda:N'", name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        require(torch.cuda.is_available(), "device", "'cpu' or 'auto' (CUDA is not available)",
                name)
    return torch.device(name)


# ------------------------------------------------------------------------------------ the run
@dataclass(frozen=True, eq=False)
class TrainResult:
    """What :func:`train` and :func:`resume` return.

    Attributes:
        model: the trained model (the same object that was passed to :func:`train`).
        history: the logged trajectory from the initial state on.
        config: the run's configuration.
    """

    model: InductionHeadModel
    history: History
    config: TrainConfig


def _draw(source: Source, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """n = ``config.sequences`` sequences (n, L+1) on the generator's device."""
    return sample_sequences(source, config.sequences, config.seq_len + 1, generator=generator,
                            device=generator.device, start=config.start, burn_in=config.burn_in)


def _select(inputs: CopierInputs, idx: torch.Tensor) -> CopierInputs:
    """The prepared inputs of the sequences ``idx`` (B,) of a fixed sample."""
    return CopierInputs(inputs.onehot[idx], inputs.cross[:, :, idx], inputs.gram[:, :, idx])


class _Run:
    """Mutable state of one run: position, fixed sample, history rows, current optimizer."""

    def __init__(self, model: InductionHeadModel, source: Source, config: TrainConfig,
                 generator: torch.Generator, sample: torch.Tensor,
                 records: list[HistoryRecord], checkpoint_every: int | None) -> None:
        self.model, self.source, self.config, self.generator = model, source, config, generator
        self.device = model.w.device
        self.sample = sample.to(self.device)                               # (n, L+1)
        self.inputs = prepare_inputs(self.sample[:, :-1], model.spec.window, model.vocab_size,
                                     model.w.dtype)
        self.records, self.checkpoint_every = records, checkpoint_every
        self.step = self.stage_index = self.stage_step = 0
        self.optimizer: torch.optim.Optimizer | None = None
        self.log_at = [set(log_steps(s.steps, config.log_points).tolist()) for s in config.stages]

    # ------------------------------------------------------------------------------ pieces
    def _params(self, stage: StageConfig) -> dict[str, torch.nn.Parameter]:
        named = {"C": self.model.C, "W": self.model.w, "a": self.model.a}
        return {p: named[p] for p in stage.params}

    def make_optimizer(self, stage: StageConfig) -> torch.optim.Optimizer:
        groups = [{"params": [t], "lr": stage.lr_of(p)} for p, t in self._params(stage).items()]
        if stage.optimizer == "adam":
            return torch.optim.Adam(groups)
        return torch.optim.SGD(groups, momentum=stage.momentum)

    def draw(self) -> torch.Tensor:
        return _draw(self.source, self.config, self.generator).to(self.device)  # (n, L+1)

    def batch(self) -> tuple[torch.Tensor, CopierInputs]:
        """Tokens (B, L+1) and prepared context of this step's batch."""
        batch, model = self.config.batch, self.model
        if batch == "full":
            return self.sample, self.inputs
        if batch == "fresh":
            tokens = self.draw()
            return tokens, prepare_inputs(tokens[:, :-1], model.spec.window, model.vocab_size,
                                          model.w.dtype)
        perm = torch.randperm(self.config.sequences, generator=self.generator,
                              device=self.generator.device)
        idx = perm[:batch].to(self.device)                                 # (B,)
        return self.sample[idx], _select(self.inputs, idx)

    def record(self, stage: str) -> None:
        model = self.model
        with torch.no_grad():
            loss = float(model.loss(self.sample, self.inputs))
            selector = model.selector_weights().double().cpu().numpy()     # (|𝒮|,)
            copier = model.copier_attention().double().cpu().numpy()       # (H, M)
            a = float(model.a)
        require(math.isfinite(loss) and math.isfinite(a), "training loss",
                f"a finite value at step {self.step} of stage {stage!r} (lower its learning "
                "rate)", loss)
        self.records.append(HistoryRecord(self.step, stage, loss, selector, copier, a))

    def history(self) -> History:
        spec = self.model.spec
        return History.from_records(self.model.sets, self.records, heads=spec.heads,
                                    window=spec.window)

    def payload(self) -> dict[str, Any]:
        opt = self.optimizer.state_dict() if self.optimizer is not None else None
        return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "config": self.config.to_dict(), "source": self.source.to_dict(),
                "model_spec": self.model.spec.to_dict(), "vocab_size": self.model.vocab_size,
                "model_state": {k: v.detach().cpu().clone()
                                for k, v in self.model.state_dict().items()},
                "optimizer_state": opt, "step": self.step, "stage_index": self.stage_index,
                "stage_step": self.stage_step, "generator_state": self.generator.get_state(),
                "generator_device": str(self.generator.device), "sample": self.sample.cpu(),
                "history": self.history().to_dict(), "checkpoint_every": self.checkpoint_every}

    # ------------------------------------------------------------------------------- loop
    def execute(self, *, progress: bool, checkpoint_path: str | Path | None,
                stop_after: int | None) -> TrainResult:
        cfg, model = self.config, self.model
        stop = cfg.total_steps if stop_after is None else min(stop_after, cfg.total_steps)
        bar = tqdm(total=cfg.total_steps, initial=self.step, disable=not progress, unit="step")
        try:
            while self.step < stop:
                stage = cfg.stages[self.stage_index]
                if self.stage_step >= stage.steps:
                    self.stage_index, self.stage_step, self.optimizer = self.stage_index + 1, 0, None
                    continue
                if self.optimizer is None:
                    self.optimizer = self.make_optimizer(stage)
                    logger.debug("stage %r: %s for %d steps", stage.name, stage.params,
                                 stage.steps)
                trained = self._params(stage)
                for p, t in (("C", model.C), ("W", model.w), ("a", model.a)):
                    t.requires_grad_(p in trained)
                bar.set_description(stage.name)
                while self.stage_step < stage.steps and self.step < stop:
                    tokens, inputs = self.batch()
                    self.optimizer.zero_grad(set_to_none=True)
                    model.loss(tokens, inputs).backward()
                    self.optimizer.step()
                    self.step, self.stage_step = self.step + 1, self.stage_step + 1
                    bar.update(1)
                    if self.stage_step in self.log_at[self.stage_index]:
                        self.record(stage.name)
                        bar.set_postfix(loss=f"{self.records[-1].loss:.4f}")
                    every = self.checkpoint_every
                    if checkpoint_path is not None and every and self.step % every == 0:
                        save_checkpoint(checkpoint_path, self.payload())
        finally:
            bar.close()
            for t in model.parameters():
                t.requires_grad_(True)
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, self.payload())
        return TrainResult(model, self.history(), cfg)


def _check_stop(stop_after: int | None, step: int) -> None:
    require(stop_after is None or (_is_int(stop_after) and stop_after > step), "stop_after",
            f"None or a global step > {step}", stop_after)


def train(model: InductionHeadModel, source: Source, config: TrainConfig, *,
          generator: torch.Generator, progress: bool = True,
          checkpoint_path: str | Path | None = None, checkpoint_every: int | None = None,
          stop_after: int | None = None) -> TrainResult:
    """Train ``model`` on sequences of ``source`` as ``config`` says (module docstring).

    The model is moved in place to the config's device and dtype. Sequences are sampled on the
    generator's device and moved to the model's.

    Args:
        model: TF(M, H, d, D) whose loss kind equals ``config.loss`` and vocabulary ``source``'s.
        source: the data source (d, P, prior).
        config: the run.
        generator: torch generator, the only randomness (module docstring).
        progress: show a tqdm progress bar (stderr).
        checkpoint_path: write a checkpoint here every ``checkpoint_every`` steps and at the end.
        checkpoint_every: steps between checkpoints (``None``: only at the end).
        stop_after: stop after this global step (a checkpoint is written there when a path is
            given); :func:`resume` continues the run.

    Returns:
        :class:`TrainResult`.
    """
    require(isinstance(model, InductionHeadModel), "model", "a numerics.InductionHeadModel",
            type(model).__name__)
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    require(isinstance(config, TrainConfig), "config", "a TrainConfig", type(config).__name__)
    require(isinstance(generator, torch.Generator), "generator", "a torch.Generator",
            type(generator).__name__)
    require(model.loss_kind == config.loss, "model loss", f"config.loss = {config.loss!r}",
            model.loss_kind)
    require(model.vocab_size == source.vocab_size, "model vocab_size",
            f"the source's d = {source.vocab_size}", model.vocab_size)
    require(config.seq_len > model.spec.window, "seq_len",
            f"L > window M = {model.spec.window}", config.seq_len)
    require(config.seq_len >= source.max_parent, "seq_len",
            f"L >= max(parents) = {source.max_parent}", config.seq_len)
    require(checkpoint_every is None or (_is_int(checkpoint_every) and checkpoint_every >= 1),
            "checkpoint_every", "None or an integer >= 1", checkpoint_every)
    _check_stop(stop_after, 0)
    model.to(device=resolve_device(config.device), dtype=DTYPES[config.dtype])
    run = _Run(model, source, config, generator, _draw(source, config, generator), [],
               None if checkpoint_every is None else int(checkpoint_every))
    run.record("init")
    return run.execute(progress=progress, checkpoint_path=checkpoint_path, stop_after=stop_after)


def resume(checkpoint_path: str | Path, *, progress: bool = True,
           stop_after: int | None = None) -> TrainResult:
    """Continue the run saved in ``checkpoint_path`` (written by :func:`train` or :func:`resume`).

    The model, optimizer, generator, fixed sample and history are restored, so on the same
    device the result is bit-identical to an uninterrupted run. Checkpoints keep being written
    to ``checkpoint_path`` as the original run would.

    Args:
        checkpoint_path: the checkpoint file.
        progress: show a tqdm progress bar.
        stop_after: stop again after this global step.
    """
    data = load_checkpoint(checkpoint_path)
    config = TrainConfig.from_dict(data["config"])
    source = Source.from_dict(data["source"])
    device, dtype = resolve_device(config.device), DTYPES[config.dtype]
    model = InductionHeadModel(ModelSpec.from_dict(data["model_spec"]), int(data["vocab_size"]),
                               loss=config.loss, dtype=dtype, device=device)
    model.load_state_dict(data["model_state"])
    gen_device = torch.device(data["generator_device"])
    if gen_device.type == "cuda":
        require(torch.cuda.is_available(), "checkpoint generator device",
                "a device available here", str(gen_device))
    generator = torch.Generator(device=gen_device)
    generator.set_state(data["generator_state"])
    history = History.from_dict(data["history"])
    run = _Run(model, source, config, generator, data["sample"], history.records(),
               data["checkpoint_every"])
    run.step, run.stage_index, run.stage_step = (int(data["step"]), int(data["stage_index"]),
                                                 int(data["stage_step"]))
    _check_stop(stop_after, run.step)
    if data["optimizer_state"] is not None and run.stage_index < len(config.stages):
        run.optimizer = run.make_optimizer(config.stages[run.stage_index])
        run.optimizer.load_state_dict(data["optimizer_state"])
    return run.execute(progress=progress, checkpoint_path=checkpoint_path, stop_after=stop_after)
