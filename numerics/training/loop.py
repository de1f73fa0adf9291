"""Training TF(M, H, d, D) (docs/theory.md §2): stage-wise (C, then w, then a) or joint, with checkpoints.

:func:`train` runs a :class:`TrainConfig` (stages, optimizers, sizes; defined in
:mod:`numerics.training.config`) and :func:`resume` continues a checkpoint. Both return a
:class:`TrainResult` holding the fixed sample the run trained on, so nothing downstream needs to
replay the generator to rebuild it.

The model is any ``nn.Module`` with the :class:`numerics.models.full.TrainableModel` interface:
the simplified :class:`numerics.InductionHeadModel` (§2) or the full
:class:`numerics.FullInductionHeadModel` (§7). A stage's names ``C``, ``w``, ``a`` select the
model's ``parameter_groups()`` (for the full model ``w`` is the whole copier: w, A, V and the
LayerNorm affine); the optimizer has one parameter group per name at that name's learning rate.
The logged copier row is ``loss_and_copier``'s attention on the fixed sample (the history's
module docstring says what it means for each model). Checkpoints store the model's kind and
constructor options, so :func:`numerics.training.load_model` and :func:`numerics.training.resume`
rebuild the same class.

Batches (``batch``), with n = ``sequences`` and sequences of ``L + 1 = seq_len + 1`` tokens:
    ``"full"``    full-batch gradient descent on one fixed sample of n sequences drawn at the start
                  (approximates gradient flow on the empirical loss); its copier inputs are
                  prepared once, so a step is cheap;
    int B         minibatches of B sequences of that fixed sample, drawn without replacement anew
                  at every step;
    ``"fresh"``   n fresh sequences every step (approximates the population loss).

Randomness comes only from the ``torch.Generator`` passed to :func:`train_schedule`, in this order: the
fixed sample (for ``"fresh"``: a fixed *evaluation* sample of n sequences), then per step the
minibatch permutation or the fresh sequences. The logged ``loss`` is the objective at the logged
parameters on the fixed sample (no gradient); for ``"fresh"`` that is the evaluation sample, an
unbiased estimate of the population loss.

The logged rows (:class:`numerics.training.checkpoint.History`) are the initial state and,
within each stage of S steps, the steps :func:`log_steps` (S, ``log_points``): log-spaced, first
and last included. Checkpoints (:mod:`numerics.training.checkpoint`) hold everything needed for
:func:`continue_schedule` to continue a run bit-identically on the same device.

Divergence stops a run with an :class:`InductionHeadsError` naming the global step, the stage and
its step: a trained parameter that is not finite after any step (checked after every update),
or a logged loss that is not finite or exceeds the initial loss by more than
:data:`EXPLOSION_NATS`.

Callback: ``callback(model, step) -> JSON mapping | None`` runs at every logged row (the initial
state included) with the model in eval mode under ``torch.no_grad()``; what it returns is kept in
``history.reports`` and in the checkpoint, so :func:`continue_schedule` (given the callback again) continues
them. It must not use the training generator (that would change the run). A callback that returns
``numerics.probe(model, ...).to_dict()`` (e.g. ``numerics.probing.callback.probe_callback``) gives
:meth:`History.distances`, :meth:`History.effective_sets` and :meth:`History.settled_step`.

Progress (``progress=True``, on stderr): a tqdm bar when stderr is a terminal; otherwise (a log
file, CI) one line per stage, written when the stage ends or the run stops inside it.

Determinism (docs/theory.md §6.1): with the same seed and the same number of torch threads, a CPU
run is bit-identical (history and parameters). Across thread counts the float reductions run in
another order: between 1 and 2 threads float32 results differed by up to 2e-6 in the logged
history and 6e-6 in the parameters (default run), float64 results by up to 1e-14.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from numerics.data import require_sample_fits, sample_sequences
from numerics.devices import resolve_device
from numerics.models.full import TrainableModel
from numerics.training.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    restore_generator,
    save_checkpoint,
    stage_optimizer,
)
from numerics.training.config import DTYPES, PARAMS, StageConfig, TrainConfig, log_steps
from numerics.training.history import History, HistoryRecord, TrainResult
from numerics.training.reports import as_report, check_callback
from theory.errors import require
from theory.sources.spec import Source
from theory.validation import is_int

__all__ = ["Callback", "train_schedule", "continue_schedule", "EXPLOSION_NATS",
           "require_training_fits"]

logger = logging.getLogger(__name__)

STAGE_CACHE = True
"""Reuse, within a stage on a full batch, the part of TF's forward the stage cannot change (the
head-set products while only C trains, the similarity while only a trains): bit-identical
results, and the selector and classifier stages of a stage-wise run cost a fraction of a full
step. False runs every step through the whole forward (the tests compare the two)."""

EXPLOSION_NATS = 1.0
"""A logged loss above ``initial loss + EXPLOSION_NATS`` stops the run as diverged.

Gradient descent on the loss does not raise it on a healthy run: runs that still converge rise
by at most about half a nat, while a learning rate that throws ``a`` to a hard argmax (its
gradient then vanishes) sticks the loss 2 to 3 nats above the initial one
(docs/results.md §13). The ``nll``
loss cannot exceed ``-log LOSS_FLOOR ≈ 27.6``, so a relative rule (e.g. 10 × the initial
loss) would never fire; ``official_ce`` lies within ``log d ± 1``, so for it only the finiteness
checks apply."""

Callback = Callable[[TrainableModel, int], Mapping[str, Any] | None]
"""``callback(model, step) -> JSON mapping | None`` (module docstring)."""

# ------------------------------------------------------------------------------------ the run
def require_training_fits(source: Source, config: TrainConfig) -> int:
    """Refuse, before anything is allocated, a training sample over the memory limit.

    The run holds its fixed sample of ``config.sequences`` sequences of ``L + 1`` tokens for its
    whole length; drawing it is estimated by :func:`numerics.data.sample_bytes` against the limit
    :mod:`theory.sizes` reads (``INDUCTION_HEADS_MEMORY_LIMIT_GIB``).

    Returns:
        The estimate in bytes.

    Raises:
        InductionHeadsError: naming the sample's size, the estimate and the limit.
    """
    return require_sample_fits(source, config.sequences, config.seq_len + 1, start=config.start,
                               burn_in=config.burn_in, what="training sample",
                               hint="pass fewer sequences or a shorter seq_len")


def _draw(source: Source, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """n = ``config.sequences`` sequences (n, L+1) on the generator's device."""
    return sample_sequences(source, config.sequences, config.seq_len + 1, generator=generator,
                            device=generator.device, start=config.start, burn_in=config.burn_in)


def _anchor(model: TrainableModel) -> torch.Tensor:
    """The temperature ``a``: its dtype and device are the model's."""
    return model.parameter_groups()["a"][0]


class _Run:
    """Mutable state of one run: position, fixed sample, history rows, current optimizer."""

    def __init__(self, model: TrainableModel, source: Source, config: TrainConfig,
                 generator: torch.Generator, sample: torch.Tensor,
                 records: list[HistoryRecord], checkpoint_every: int | None,
                 callback: Callback | None) -> None:
        self.model, self.source, self.config, self.generator = model, source, config, generator
        self.groups = model.parameter_groups()                             # name -> parameters
        self.device = _anchor(model).device
        self.sample = sample.to(self.device)                               # (n, L+1)
        self.inputs = model.prepare_inputs(self.sample[:, :-1])
        self.records, self.checkpoint_every = records, checkpoint_every
        self.callback = callback
        self.step = self.stage_index = self.stage_step = 0
        self.optimizer: torch.optim.Optimizer | None = None
        self.stage_inputs: object | None = None
        self.log_at = [set(log_steps(s.steps, config.log_points).tolist()) for s in config.stages]

    # ------------------------------------------------------------------------------ pieces
    def cached_inputs(self, stage: StageConfig) -> object | None:
        """The fixed sample's inputs with what ``stage`` cannot change computed once, or None.

        Only for a full batch and a model with ``stage_inputs`` (TF: a stage training ``C``
        alone or ``a`` alone); the forward then reuses that part with the same operations, so the
        run is bit-identical to one without the cache (:data:`STAGE_CACHE`).
        """
        build = getattr(self.model, "stage_inputs", None)
        if not STAGE_CACHE or self.config.batch != "full" or build is None:
            return None
        cached = build(self.inputs, stage.params)
        return None if cached is self.inputs else cached

    def make_optimizer(self, stage: StageConfig) -> torch.optim.Optimizer:
        return stage_optimizer(stage, self.groups)

    def draw(self) -> torch.Tensor:
        return _draw(self.source, self.config, self.generator).to(self.device)  # (n, L+1)

    def batch(self) -> tuple[torch.Tensor, object]:
        """Tokens (B, L+1) and prepared context of this step's batch."""
        batch, model = self.config.batch, self.model
        if batch == "full":
            return self.sample, self.stage_inputs if self.stage_inputs is not None else self.inputs
        if batch == "fresh":
            tokens = self.draw()
            return tokens, model.prepare_inputs(tokens[:, :-1])
        perm = torch.randperm(self.config.sequences, generator=self.generator,
                              device=self.generator.device)
        idx = perm[:batch].to(self.device)                                 # (B,)
        return self.sample[idx], model.select_inputs(self.inputs, idx)

    def where(self, stage: str) -> str:
        """``"step k (step j of stage 'name')"`` for error messages and progress lines."""
        if stage == "init":
            return "step 0 (the initial state)"
        return f"step {self.step} (step {self.stage_step} of stage {stage!r})"

    def check_parameters(self, stage: StageConfig) -> None:
        """Stop when a trained parameter is no longer finite (one reduction, after each step)."""
        trained = [(p, t) for p in stage.params for t in self.groups[p]]
        flat = torch.cat([t.detach().reshape(-1) for _, t in trained])
        if bool(torch.isfinite(flat).all()):
            return
        bad: dict[str, list[float]] = {}
        for p, t in trained:
            values = t.detach().flatten()
            bad.setdefault(p, []).extend(values[~torch.isfinite(values)][:3].tolist())
        require(False, f"training parameters after {self.where(stage.name)}",
                f"finite values (the run diverged: lower the learning rate of {stage.params})",
                {p: v[:3] for p, v in bad.items() if v})

    def record(self, stage: str) -> None:
        model = self.model
        with torch.no_grad():
            loss_t, copier_t = model.loss_and_copier(self.sample, self.inputs)
            loss = float(loss_t)
            selector = model.selector_weights().double().cpu().numpy()     # (|𝒮|,)
            copier = copier_t.double().cpu().numpy()                       # (H, M)
            a = float(_anchor(model))
        advice = ("the initial state is not finite" if stage == "init"
                  else "the run diverged: lower the learning rate of stage "
                       f"{stage!r}")
        require(math.isfinite(loss), f"training loss at {self.where(stage)}",
                f"a finite value ({advice})", loss)
        if self.records:
            limit = self.records[0].loss + EXPLOSION_NATS
            require(loss <= limit, f"training loss at {self.where(stage)}",
                    f"at most the initial loss {self.records[0].loss:.6g} + EXPLOSION_NATS = "
                    f"{limit:.6g} ({advice})", loss)
        self.records.append(HistoryRecord(self.step, stage, loss, selector, copier, a,
                                          self.report()))

    def report(self) -> dict[str, Any] | None:
        """The callback's result at this step, run in eval mode without gradients."""
        if self.callback is None:
            return None
        model, training = self.model, self.model.training
        model.eval()
        try:
            with torch.no_grad():
                value = self.callback(model, self.step)
        finally:
            model.train(training)
        return as_report(value, self.step)

    def history(self) -> History:
        spec = self.model.spec
        return History.from_records(self.model.sets, self.records, heads=spec.heads,
                                    window=spec.window)

    def payload(self) -> dict[str, Any]:
        opt = self.optimizer.state_dict() if self.optimizer is not None else None
        model = self.model
        return {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "config": self.config.to_dict(), "source": self.source.to_dict(),
                "model_spec": model.spec.to_dict(), "vocab_size": model.vocab_size,
                "model_kind": model.kind, "model_options": model.constructor_options(),
                "model_state": {k: v.detach().cpu().clone()
                                for k, v in model.state_dict().items()},
                "optimizer_state": opt, "step": self.step, "stage_index": self.stage_index,
                "stage_step": self.stage_step, "generator_state": self.generator.get_state(),
                "generator_device": str(self.generator.device), "sample": self.sample.cpu(),
                "history": self.history().to_dict(), "checkpoint_every": self.checkpoint_every}

    # ------------------------------------------------------------------------------- loop
    def stage_line(self, stage: StageConfig, first: int, seconds: float) -> str:
        """One progress line for the steps ``first..stage_step`` of ``stage`` just run."""
        loss = self.records[-1].loss
        return (f"train: stage {stage.name!r} ({', '.join(stage.params)}) steps "
                f"{first}-{self.stage_step} of {stage.steps}, global step {self.step}/"
                f"{self.config.total_steps}, last logged loss {loss:.6g}, {seconds:.1f} s")

    def execute(self, *, progress: bool, checkpoint_path: str | Path | None,
                stop_after: int | None) -> TrainResult:
        cfg, model = self.config, self.model
        stop = cfg.total_steps if stop_after is None else min(stop_after, cfg.total_steps)
        stream = sys.stderr
        lines = progress and not _is_terminal(stream)   # a log file or CI: one line per stage
        bar = tqdm(total=cfg.total_steps, initial=self.step, disable=not progress or lines,
                   unit="step", file=stream)
        try:
            while self.step < stop:
                stage = cfg.stages[self.stage_index]
                if self.stage_step >= stage.steps:
                    self.stage_index, self.stage_step = self.stage_index + 1, 0
                    self.optimizer = None
                    continue
                if self.optimizer is None:
                    self.optimizer = self.make_optimizer(stage)
                    logger.debug("stage %r: %s for %d steps", stage.name, stage.params,
                                 stage.steps)
                for p, params in self.groups.items():
                    for t in params:
                        t.requires_grad_(p in stage.params)
                self.stage_inputs = self.cached_inputs(stage)
                bar.set_description(stage.name)
                first, started = self.stage_step + 1, time.perf_counter()
                while self.stage_step < stage.steps and self.step < stop:
                    tokens, inputs = self.batch()
                    self.optimizer.zero_grad(set_to_none=True)
                    model.loss(tokens, inputs).backward()
                    self.optimizer.step()
                    self.step, self.stage_step = self.step + 1, self.stage_step + 1
                    self.check_parameters(stage)
                    bar.update(1)
                    if self.stage_step in self.log_at[self.stage_index]:
                        self.record(stage.name)
                        bar.set_postfix(loss=f"{self.records[-1].loss:.4f}")
                    every = self.checkpoint_every
                    if checkpoint_path is not None and every and self.step % every == 0:
                        save_checkpoint(checkpoint_path, self.payload())
                line = self.stage_line(stage, first, time.perf_counter() - started)
                logger.debug(line)
                if lines:
                    tqdm.write(line, file=stream)
        finally:
            bar.close()
            for t in model.parameters():
                t.requires_grad_(True)
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, self.payload())
        return TrainResult(model, self.history(), cfg, self.sample.cpu())


def _is_terminal(stream: object) -> bool:
    """Whether ``stream`` is an interactive terminal (a tqdm bar then redraws in place)."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):  # a closed or detached stream
        return False


def _check_stop(stop_after: int | None, step: int) -> None:
    require(stop_after is None or (is_int(stop_after) and stop_after > step), "stop_after",
            f"None or a global step > {step}", stop_after)


def _check_model(model: Any) -> None:
    """An ``nn.Module`` with the :class:`TrainableModel` interface and the groups C, w, a."""
    require(isinstance(model, nn.Module) and isinstance(model, TrainableModel), "model",
            "a numerics.InductionHeadModel or numerics.FullInductionHeadModel (an nn.Module "
            "with the TrainableModel interface)", type(model).__name__)
    groups = model.parameter_groups()
    require(isinstance(groups, dict) and set(groups) == set(PARAMS)
            and all(isinstance(v, list) and v and all(isinstance(t, nn.Parameter) for t in v)
                    for v in groups.values()), "model parameter_groups()",
            f"a dict of non-empty parameter lists with keys {PARAMS}",
            sorted(groups) if isinstance(groups, dict) else type(groups).__name__)
    require(groups["a"][0].numel() == 1 and len(groups["a"]) == 1, "model parameter_groups()['a']",
            "one scalar temperature", [tuple(t.shape) for t in groups["a"]])


def train_schedule(model: TrainableModel, source: Source, config: TrainConfig, *,
                   generator: torch.Generator, progress: bool = True,
                   checkpoint_path: str | Path | None = None,
                   checkpoint_every: int | None = None, stop_after: int | None = None,
                   callback: Callback | None = None) -> TrainResult:
    """Train ``model`` on sequences of ``source`` as ``config`` says (module docstring).

    The trainer of the model kinds whose run is a :class:`TrainConfig`
    (:mod:`numerics.training.kinds`); :func:`numerics.training.train` is the entry point.

    The model is moved in place to the config's device and dtype. Sequences are sampled on the
    generator's device and moved to the model's.

    Args:
        model: TF(M, H, d, D), simplified or full (any ``nn.Module`` with the
            :class:`numerics.models.full.TrainableModel` interface; checkpoints need one of
            a registered model kind: a class with a ``kind`` name), whose loss kind equals
            ``config.loss`` and vocabulary ``source``'s.
        source: the data source (d, P, prior).
        config: the run.
        generator: torch generator, the only randomness (module docstring).
        progress: report progress on stderr: a tqdm bar on a terminal, else one line per stage.
        checkpoint_path: write a checkpoint here every ``checkpoint_every`` steps and at the end.
        checkpoint_every: steps between checkpoints (``None``: only at the end).
        stop_after: stop after this global step (a checkpoint is written there when a path is
            given); :func:`numerics.training.resume` continues the run.
        callback: ``(model, step) -> JSON mapping or None`` at every logged row, in eval mode
            under ``torch.no_grad()``; kept in ``history.reports`` (module docstring).

    Returns:
        :class:`~numerics.training.history.TrainResult`.

    Raises:
        InductionHeadsError: on bad arguments, a training sample over the memory limit
            (:func:`require_training_fits`, before anything is allocated), a callback result
            that is not a JSON mapping, and when the run diverges (module docstring): non-finite parameters after a step,
            or a logged loss that is non-finite or more than :data:`EXPLOSION_NATS` above the
            initial loss; the message names the stage and the step.

    Determinism: same seed and thread count give a bit-identical history and parameters on
    the CPU; across thread counts (1 vs 2) float32 results differ by up to ~6e-6 (parameters;
    2e-6 in the history), float64 results by up to ~1e-14
    (tests/numerics/training/test_determinism.py).
    """
    _check_model(model)
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
    require(checkpoint_every is None or (is_int(checkpoint_every) and checkpoint_every >= 1),
            "checkpoint_every", "None or an integer >= 1", checkpoint_every)
    # A subclass inherits ``kind`` but not the registry's constructor: only the class itself.
    require(checkpoint_path is None or isinstance(vars(type(model)).get("kind"), str),
            "model with a checkpoint", "a model of a registered kind (numerics.training.KINDS: "
            "InductionHeadModel, FullInductionHeadModel)", type(model).__name__)
    _check_stop(stop_after, 0)
    check_callback(callback)
    require_training_fits(source, config)
    model.to(device=resolve_device(config.device), dtype=DTYPES[config.dtype])
    run = _Run(model, source, config, generator, _draw(source, config, generator), [],
               None if checkpoint_every is None else int(checkpoint_every), callback)
    run.record("init")
    return run.execute(progress=progress, checkpoint_path=checkpoint_path, stop_after=stop_after)


def continue_schedule(data: dict[str, Any], model: TrainableModel, *,
                      checkpoint_path: str | Path, progress: bool = True,
                      stop_after: int | None = None, callback: Callback | None = None
                      ) -> TrainResult:
    """Continue the run of a validated checkpoint dict with its restored ``model``.

    The optimizer, generator, fixed sample and history (with its reports) are restored, so on
    the same device the result is bit-identical to an uninterrupted run. Checkpoints keep being
    written to ``checkpoint_path`` as the original run would. A callback is not saved: pass it
    again to keep filling ``history.reports``. :func:`numerics.training.resume` reads the file,
    rebuilds the model of its kind and calls this.

    Args:
        data: a checkpoint dict (:func:`numerics.training.validate_checkpoint`).
        model: the model it holds, on the run's device, with its saved state.
        checkpoint_path: the checkpoint file.
        progress: report progress on stderr, as :func:`train_schedule` does.
        stop_after: stop again after this global step.
        callback: as in :func:`train_schedule`.

    Raises:
        InductionHeadsError: on a bad ``stop_after`` or callback, and when the continued run
            diverges (as in :func:`train_schedule`; the threshold is the run's initial loss).
    """
    check_callback(callback)
    config = TrainConfig.from_dict(data["config"])
    source = Source.from_dict(data["source"])
    generator = restore_generator(data)
    history = History.from_dict(data["history"])
    run = _Run(model, source, config, generator, data["sample"], history.records(),
               data["checkpoint_every"], callback)
    run.step, run.stage_index, run.stage_step = (int(data["step"]), int(data["stage_index"]),
                                                 int(data["stage_step"]))
    _check_stop(stop_after, run.step)
    if data["optimizer_state"] is not None and run.stage_index < len(config.stages):
        run.optimizer = run.make_optimizer(config.stages[run.stage_index])
        run.optimizer.load_state_dict(data["optimizer_state"])
    return run.execute(progress=progress, checkpoint_path=checkpoint_path, stop_after=stop_after)
