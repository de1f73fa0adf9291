"""The run of a standard transformer: the training loop, its checkpoints, resuming and loading.

What one run does, in which order it draws from the generator and what a checkpoint holds are
in the package docstring (:mod:`numerics.training.standard`). :func:`adamw_for` and
:func:`train_step` are the optimizer and the update of every step, shared with
:func:`numerics.bench.benchmark_standard_step`.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from numerics.data import sample_sequences
from numerics.devices import resolve_device
from numerics.io import save_torch_atomic
from numerics.models.standard import StandardTransformer
from numerics.training.checkpoint import restore_generator
from numerics.training.config import DTYPES, log_steps
from numerics.training.history import TrainResult
from numerics.training.loop import EXPLOSION_NATS
from numerics.training.reports import as_report, check_callback
from numerics.training.standard.checkpoint import (
    STANDARD_CHECKPOINT_FORMAT,
    STANDARD_CHECKPOINT_VERSION,
    adamw_for,
)
from numerics.training.standard.config import StandardTrainConfig
from numerics.training.standard.history import StandardHistory
from theory.errors import require
from theory.sources.spec import Source
from theory.validation import is_int

__all__ = ["train_standard", "continue_standard", "train_step", "Callback"]

logger = logging.getLogger(__name__)

_EVAL_CHUNK = 256
"""Evaluation sequences per forward pass (bounds the (n, heads, L, L) attention memory)."""

Callback = Callable[[StandardTransformer, int], Mapping[str, Any] | None]
"""``callback(model, step) -> JSON mapping or None``, run at every logged step."""


def _draw(source: Source, config: StandardTrainConfig, generator: torch.Generator, n: int
          ) -> torch.Tensor:
    """``n`` fresh sequences ``(n, L+1)`` on the generator's device."""
    return sample_sequences(source, n, config.seq_len + 1, generator=generator,
                            device=generator.device, start=config.start, burn_in=config.burn_in)


def _rows(history: StandardHistory) -> dict[str, list[Any]]:
    """The history as the run's growing column lists (NaN kept as float NaN)."""
    return {"steps": history.steps.tolist(), "lr": history.lr.tolist(),
            "train_loss": history.train_loss.tolist(), "eval_loss": history.eval_loss.tolist(),
            "eval_last_loss": history.eval_last_loss.tolist(), "reports": list(history.reports)}


def train_step(model: StandardTransformer, optimizer: torch.optim.Optimizer,
               tokens: torch.Tensor, config: StandardTrainConfig, *, lr: float) -> torch.Tensor:
    """One update: the loss of ``config.loss_positions`` on ``tokens``, backward, clip, step.

    Args:
        model: the transformer, in train mode.
        optimizer: its :func:`adamw_for` optimizer.
        tokens: int64 ``(B, L+1)`` on the model's device.
        config: the run (loss positions and gradient clipping).
        lr: the learning rate of this update (``config.lr_at(step)``).

    Returns:
        The objective on ``tokens`` before the update (a scalar tensor with its graph).
    """
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    loss = model.loss(tokens, positions=config.loss_positions)
    loss.backward()
    if config.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    return loss


class _Run:
    """Mutable state of one run: model, optimizer, generator, position and history rows."""

    def __init__(self, model: StandardTransformer, source: Source, config: StandardTrainConfig,
                 generator: torch.Generator, eval_sample: torch.Tensor,
                 rows: dict[str, list[Any]], checkpoint_every: int | None,
                 callback: Callback | None) -> None:
        self.model, self.source, self.config, self.generator = model, source, config, generator
        self.eval_sample = eval_sample.to(model.device)                     # (n_eval, L+1)
        self.rows, self.checkpoint_every, self.callback = rows, checkpoint_every, callback
        self.step = 0
        self.optimizer = adamw_for(model, config)
        self.log_at = set(log_steps(config.steps, config.log_points).tolist())

    def draw(self, n: int) -> torch.Tensor:
        return _draw(self.source, self.config, self.generator, n).to(self.model.device)

    def evaluate(self) -> tuple[float, float]:
        """(all-position loss, last-position loss) on the evaluation batch."""
        model, total, last = self.model, 0.0, 0.0
        n = self.eval_sample.shape[0]
        for lo in range(0, n, _EVAL_CHUNK):
            chunk = self.eval_sample[lo:lo + _EVAL_CHUNK]                   # (m, L+1)
            logits = model(chunk[:, :-1]).double()                          # (m, L, d)
            nll = -torch.log_softmax(logits, -1).gather(-1, chunk[:, 1:, None])[..., 0]  # (m, L)
            total += float(nll.mean(1).sum())
            last += float(nll[:, -1].sum())
        return total / n, last / n

    def check_finite(self, train_loss: float = 0.0) -> None:
        """Stop with the library's error when the run diverged: a non-finite training loss (the
        last update's, at a logged step) or parameter. Checked at logged steps and before each
        checkpoint, so that no step waits on the device and no checkpoint holds NaN."""
        advice = (f"the run diverged: lower the learning rate (lr = {self.config.lr:g})"
                  if self.step else "the initial state is not finite")
        require(math.isnan(train_loss) and not self.step or math.isfinite(train_loss),
                f"training loss at step {self.step}", f"a finite value ({advice})", train_loss)
        bad = [n for n, p in self.model.named_parameters() if not bool(p.isfinite().all())]
        require(not bad, f"model parameters after step {self.step}",
                f"finite values ({advice})", f"non-finite values in {bad[:3]}")

    def record(self, train_loss: float, lr: float) -> None:
        model = self.model
        self.check_finite(train_loss)
        model.eval()
        with torch.no_grad():
            eval_loss, eval_last = self.evaluate()
        advice = ("the run diverged: lower the learning rate" if self.step
                  else "the initial state is not finite")
        require(math.isfinite(eval_loss) and math.isfinite(eval_last),
                f"evaluation loss at step {self.step}", f"a finite value ({advice})", eval_loss)
        if self.rows["eval_loss"]:
            limit = self.rows["eval_loss"][0] + EXPLOSION_NATS
            require(eval_loss <= limit, f"evaluation loss at step {self.step}",
                    f"at most the initial loss {self.rows['eval_loss'][0]:.6g} + EXPLOSION_NATS "
                    f"= {limit:.6g} ({advice})", eval_loss)
        with torch.no_grad():
            report = None
            if self.callback is not None:
                report = as_report(self.callback(model, self.step), self.step)
        model.train()
        for key, value in (("steps", self.step), ("lr", lr), ("train_loss", train_loss),
                           ("eval_loss", eval_loss), ("eval_last_loss", eval_last),
                           ("reports", report)):
            self.rows[key].append(value)

    def history(self) -> StandardHistory:
        return StandardHistory(**self.rows)

    def payload(self) -> dict[str, Any]:
        return {"format": STANDARD_CHECKPOINT_FORMAT, "version": STANDARD_CHECKPOINT_VERSION,
                "config": self.config.to_dict(), "source": self.source.to_dict(),
                "model_spec": self.model.spec.to_dict(), "vocab_size": self.model.vocab_size,
                "model_state": {k: v.detach().cpu().clone()
                                for k, v in self.model.state_dict().items()},
                "optimizer_state": self.optimizer.state_dict(), "step": self.step,
                "generator_state": self.generator.get_state(),
                "generator_device": str(self.generator.device),
                "eval_sample": self.eval_sample.cpu(), "history": self.history().to_dict(),
                "checkpoint_every": self.checkpoint_every}

    def execute(self, *, progress: bool, checkpoint_path: str | Path | None,
                stop_after: int | None) -> TrainResult:
        cfg, model = self.config, self.model
        stop = cfg.steps if stop_after is None else min(stop_after, cfg.steps)
        bar = tqdm(total=cfg.steps, initial=self.step, unit="step",
                   disable=not (progress and sys.stderr.isatty()))
        model.train()
        try:
            while self.step < stop:
                lr = cfg.lr_at(self.step + 1)
                tokens = self.draw(cfg.batch_size)                          # (B, L+1)
                loss = train_step(model, self.optimizer, tokens, cfg, lr=lr)
                self.step += 1
                bar.update(1)
                if self.step in self.log_at:
                    self.record(float(loss.detach()), lr)
                    bar.set_postfix(eval_last=f"{self.rows['eval_last_loss'][-1]:.4f}")
                    (logger.info if progress else logger.debug)(
                        "step %d/%d: lr %.3g, train loss %.4f, eval loss %.4f, eval last %.4f",
                        self.step, cfg.steps, lr, self.rows["train_loss"][-1],
                        self.rows["eval_loss"][-1], self.rows["eval_last_loss"][-1])
                every = self.checkpoint_every
                if checkpoint_path is not None and every and self.step % every == 0:
                    self.check_finite()
                    _save(checkpoint_path, self.payload())
        finally:
            bar.close()
            model.eval()
        if checkpoint_path is not None:
            self.check_finite()
            _save(checkpoint_path, self.payload())
        return TrainResult(model, self.history(), cfg, self.eval_sample.cpu())


def _save(path: str | Path, payload: dict[str, Any]) -> None:
    """The checkpoint written atomically (:func:`numerics.io.save_torch_atomic`)."""
    save_torch_atomic(payload, path)


def _check_stop(stop_after: Any, step: int) -> None:
    require(stop_after is None or (is_int(stop_after) and stop_after > step), "stop_after",
            f"None or a step > {step}", stop_after)


def train_standard(model: StandardTransformer, source: Source, config: StandardTrainConfig, *,
                   generator: torch.Generator, progress: bool = True,
                   checkpoint_path: str | Path | None = None,
                   checkpoint_every: int | None = None, stop_after: int | None = None,
                   callback: Callback | None = None) -> TrainResult:
    """Train ``model`` on fresh sequences of ``source`` as ``config`` says (package docstring).

    The model is moved in place to the config's device and dtype; sequences are sampled on the
    generator's device and moved to the model's.

    Args:
        model: the transformer; its vocabulary must be the source's and ``max_len >= L``.
        source: the data source (d, P, prior).
        config: the run.
        generator: torch generator, the only randomness of the data (package docstring).
        progress: a tqdm bar on a terminal; elsewhere one ``logging`` INFO line per logged step.
        checkpoint_path: write a checkpoint here every ``checkpoint_every`` steps and at the end.
        checkpoint_every: steps between checkpoints (None: only at the end).
        stop_after: stop after this step (checkpointed when a path is given);
            :func:`numerics.resume` continues the run.
        callback: ``(model, step) -> JSON mapping or None`` at every logged step, stored in
            ``history.reports`` (e.g. :func:`numerics.probing.probe_callback`).

    Returns:
        :class:`~numerics.training.history.TrainResult` (its ``sample`` is the fixed evaluation
        batch).

    Raises:
        InductionHeadsError: on mismatched arguments, and when the run diverges (a non-finite
            training loss, parameter or evaluation loss, or an evaluation loss more than
            :data:`~numerics.training.loop.EXPLOSION_NATS` above the initial one, named with its
            step).
    """
    require(isinstance(model, StandardTransformer), "model", "a StandardTransformer",
            type(model).__name__)
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    require(isinstance(config, StandardTrainConfig), "config", "a StandardTrainConfig",
            type(config).__name__)
    require(isinstance(generator, torch.Generator), "generator", "a torch.Generator",
            type(generator).__name__)
    require(model.vocab_size == source.vocab_size, "model vocab_size",
            f"the source's d = {source.vocab_size}", model.vocab_size)
    require(config.seq_len <= model.spec.max_len, "seq_len",
            f"L <= the model's max_len = {model.spec.max_len}", config.seq_len)
    require(config.seq_len >= source.max_parent, "seq_len",
            f"L >= max(parents) = {source.max_parent}", config.seq_len)
    require(checkpoint_every is None or (is_int(checkpoint_every) and checkpoint_every >= 1),
            "checkpoint_every", "None or an integer >= 1", checkpoint_every)
    _check_stop(stop_after, 0)
    check_callback(callback)
    device = resolve_device(config.device)
    model.to(device=device, dtype=DTYPES[config.dtype])
    eval_sample = _draw(source, config, generator, config.eval_sequences)  # (n_eval, L+1)
    empty = StandardHistory([], [], [], [], [], ())
    run = _Run(model, source, config, generator, eval_sample, _rows(empty),
               None if checkpoint_every is None else int(checkpoint_every), callback)
    run.record(math.nan, 0.0)
    return run.execute(progress=progress, checkpoint_path=checkpoint_path, stop_after=stop_after)


def continue_standard(data: dict[str, Any], model: StandardTransformer, *,
                      checkpoint_path: str | Path, progress: bool = True,
                      stop_after: int | None = None, callback: Callback | None = None
                      ) -> TrainResult:
    """Continue the run of a checkpoint dict with its restored ``model``; bit-identical on the
    same CPU setup.

    Optimizer state, generator, evaluation batch and history are restored; checkpoints keep
    being written to ``checkpoint_path``. A callback is not saved: pass it again to keep filling
    ``history.reports``. :func:`numerics.training.resume` reads the file, rebuilds the model
    and calls this.

    Args:
        data: a checkpoint dict
            (:func:`numerics.training.standard.checkpoint.validate_standard_checkpoint`).
        model: the model it holds, on the run's device, with its saved state.
        checkpoint_path: the checkpoint file.
        progress: as in :func:`train_standard`.
        stop_after: stop again after this step.
        callback: as in :func:`train_standard`.
    """
    config = StandardTrainConfig.from_dict(data["config"])
    source = Source.from_dict(data["source"])
    generator = restore_generator(data)
    check_callback(callback)
    rows = _rows(StandardHistory.from_dict(data["history"]))
    run = _Run(model, source, config, generator, data["eval_sample"], rows,
               data["checkpoint_every"], callback)
    run.optimizer.load_state_dict(data["optimizer_state"])
    run.step = int(data["step"])
    _check_stop(stop_after, run.step)
    return run.execute(progress=progress, checkpoint_path=checkpoint_path, stop_after=stop_after)
