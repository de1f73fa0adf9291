"""The configuration of a standard-transformer run: optimizer, schedule, batches, loss positions.

:class:`StandardTrainConfig` validates every field on construction and round-trips through JSON
(:meth:`StandardTrainConfig.to_dict` / :meth:`StandardTrainConfig.from_dict`, the form a
checkpoint stores); :meth:`StandardTrainConfig.lr_at` is the learning-rate schedule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from numerics.data import START_MODES
from numerics.devices import DEVICE_NAMES, is_device_name
from numerics.training.config import DEFAULT_LOG_POINTS, DTYPES, MAX_LEARNING_RATE
from theory.errors import require
from theory.validation import is_int, is_real

__all__ = ["StandardTrainConfig", "LOSS_POSITIONS", "SCHEDULES"]

LOSS_POSITIONS = ("all", "last")
"""``all``: next-token loss at every position; ``last``: only the prediction of ``x_{L+1}``."""

SCHEDULES = ("constant", "cosine")
"""Learning rate after the linear warm-up: constant, or cosine decay to ``min_lr_ratio · lr``."""


def _number(value: Any, what: str, expected: str, ok: Callable[[float], bool]) -> float:
    require(is_real(value)
            and math.isfinite(float(value)) and ok(float(value)), what, expected, value)
    return float(value)


def _count(value: Any, what: str, low: int) -> int:
    require(is_int(value) and value >= low, what, f"an integer >= {low}", value)
    return int(value)


@dataclass(frozen=True)
class StandardTrainConfig:
    """A training run of a :class:`StandardTransformer` (package docstring).

    The defaults are those of :data:`FAST_TRAINING` (only ``steps`` is required):
    AdamW at 1e-2 with 100 warm-up steps and a cosine decay, no gradient clipping, no weight
    decay, 128 fresh sequences of ``L = 50`` per step, loss at every position.

    Attributes:
        steps: parameter updates, >= 0.
        batch_size: fresh sequences per step, >= 1.
        seq_len: L; sequences have L + 1 tokens and the model reads L of them.
        lr: peak AdamW learning rate, in ``(0, MAX_LEARNING_RATE]``
            (:data:`numerics.training.config.MAX_LEARNING_RATE`: torch's float32 scalars).
        weight_decay: AdamW decoupled weight decay, >= 0 (weight matrices and embeddings only).
        betas: AdamW ``(β1, β2)``, each in [0, 1).
        eps: AdamW epsilon, > 0.
        warmup_steps: linear warm-up from ``lr / warmup_steps`` to ``lr``, >= 0.
        schedule: one of :data:`SCHEDULES` after the warm-up.
        min_lr_ratio: final learning rate of the cosine schedule in units of ``lr``, in [0, 1].
        grad_clip: clip the global gradient norm to this (> 0), or None.
        loss_positions: one of :data:`LOSS_POSITIONS`.
        eval_sequences: size of the fixed evaluation batch, >= 2.
        dtype: ``"float32"`` or ``"float64"``.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        log_points: log-spaced history rows after step 0, >= 2.
        start: sampler start mode (``numerics.data.START_MODES``).
        burn_in: sampler burn-in steps, >= 0.
    """

    steps: int
    batch_size: int = 128
    seq_len: int = 50
    lr: float = 1e-2
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-8
    warmup_steps: int = 100
    schedule: str = "cosine"
    min_lr_ratio: float = 0.1
    grad_clip: float | None = None
    loss_positions: str = "all"
    eval_sequences: int = 1000
    dtype: str = "float32"
    device: str = "auto"
    log_points: int = DEFAULT_LOG_POINTS
    start: str = "uniform"
    burn_in: int = 0

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("steps", _count(self.steps, "steps", 0))
        set_("batch_size", _count(self.batch_size, "batch_size", 1))
        set_("seq_len", _count(self.seq_len, "seq_len", 1))
        set_("lr", _number(self.lr, "lr", f"a number in (0, MAX_LEARNING_RATE = "
                           f"{MAX_LEARNING_RATE:g}]", lambda v: 0 < v <= MAX_LEARNING_RATE))
        set_("weight_decay", _number(self.weight_decay, "weight_decay", "a finite number >= 0",
                                     lambda v: v >= 0))
        require(isinstance(self.betas, (tuple, list)) and len(self.betas) == 2, "betas",
                "a pair (beta1, beta2)", self.betas)
        set_("betas", tuple(_number(b, "betas", "numbers in [0, 1)", lambda v: 0 <= v < 1)
                            for b in self.betas))
        set_("eps", _number(self.eps, "eps", "a finite number > 0", lambda v: v > 0))
        set_("warmup_steps", _count(self.warmup_steps, "warmup_steps", 0))
        require(self.schedule in SCHEDULES, "schedule", f"one of {SCHEDULES}", self.schedule)
        set_("min_lr_ratio", _number(self.min_lr_ratio, "min_lr_ratio", "a number in [0, 1]",
                                     lambda v: 0 <= v <= 1))
        if self.grad_clip is not None:
            set_("grad_clip", _number(self.grad_clip, "grad_clip", "None or a number > 0",
                                      lambda v: v > 0))
        require(self.loss_positions in LOSS_POSITIONS, "loss_positions",
                f"one of {LOSS_POSITIONS}", self.loss_positions)
        set_("eval_sequences", _count(self.eval_sequences, "eval_sequences", 2))
        require(self.dtype in DTYPES, "dtype", f"one of {tuple(DTYPES)}", self.dtype)
        require(is_device_name(self.device), "device", DEVICE_NAMES, self.device)
        set_("log_points", _count(self.log_points, "log_points", 2))
        require(self.start in START_MODES, "start", f"one of {START_MODES}", self.start)
        set_("burn_in", _count(self.burn_in, "burn_in", 0))

    def lr_at(self, step: int) -> float:
        """Learning rate of update number ``step`` (1-based): warm-up, then the schedule."""
        if self.warmup_steps and step <= self.warmup_steps:
            return self.lr * step / self.warmup_steps
        if self.schedule == "constant":
            return self.lr
        span = max(self.steps - self.warmup_steps, 1)
        done = min(max(step - self.warmup_steps, 0), span) / span
        low = self.min_lr_ratio * self.lr
        return low + (self.lr - low) * 0.5 * (1.0 + math.cos(math.pi * done))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; :meth:`from_dict` inverts it exactly."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StandardTrainConfig:
        """Inverse of :meth:`to_dict` (missing optional keys take their defaults)."""
        allowed = tuple(cls.__dataclass_fields__)
        require(isinstance(data, dict) and "steps" in data and set(data) <= set(allowed),
                "standard train config", f"a dict with 'steps' and keys among {allowed}",
                sorted(data) if isinstance(data, dict) else data)
        data = dict(data)
        if "betas" in data:
            data["betas"] = tuple(data["betas"])
        return cls(**data)
