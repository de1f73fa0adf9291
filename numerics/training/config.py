"""Configuration of a training run of TF(M, H, d, D) (docs/theory.md §2): stages, batches, defaults.

A run is a :class:`TrainConfig`: a list of :class:`StageConfig` stages, each training a subset of
the parameters ``{"C", "w", "a"}`` (the others frozen) with its own optimizer, learning rates and
step count. ``mode="stagewise"`` is the paper's protocol (by default C, then w, then a);
``mode="joint"`` is one stage training all three with per-parameter learning rates.
:func:`simplified_config` and :func:`full_config` give the library's defaults (each model kind
names its own in :mod:`numerics.training.kinds`); :func:`log_steps` the logged steps of a
stage. ``numerics.training.loop`` runs
a config (and re-exports every name of this module).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from numerics.data import START_MODES
from numerics.devices import DEVICE_NAMES, is_device_name
from numerics.models.inputs import DTYPES
from numerics.models.simplified import LOSS_KINDS
from theory.errors import require
from theory.validation import is_int, is_real

__all__ = ["PARAMS", "MODES", "OPTIMIZERS", "DTYPES", "DEFAULT_LOG_POINTS", "STAGEWISE_DEFAULTS",
           "JOINT_DEFAULTS", "FULL_STAGEWISE_DEFAULTS", "FULL_JOINT_DEFAULTS", "FULL_SEQUENCES",
           "FULL_BATCH", "FULL_REFERENCE", "MAX_LEARNING_RATE", "full_rate_scale",
           "StageConfig", "TrainConfig", "simplified_config", "full_config", "log_steps"]


PARAMS = ("C", "w", "a")
"""Trainable parameter groups: selector ``C`` (|𝒮|,), copier ``w`` (the logits (H, M); for the
full model every copier parameter, docs/theory.md §7), classifier temperature ``a`` ()."""


MODES = ("stagewise", "joint")
"""``stagewise``: stages train parameter subsets in turn; ``joint``: one stage trains all three."""

OPTIMIZERS = ("sgd", "adam")
"""``sgd`` (optionally with momentum; plain SGD is gradient descent) or ``adam``."""

DEFAULT_LOG_POINTS = 30
"""Log-spaced history rows per stage (fewer when a stage has fewer steps)."""

STAGEWISE_DEFAULTS = (("selector", ("C",), 3000.0, 150),
                      ("copier", ("w",), 3000.0, 150),
                      ("classifier", ("a",), 1.0, 150))
"""(name, params, lr, steps) of the default stage-wise run, for ``a_init = 0.01``, ``c_init = 1``.

The gradients in C and w scale with ``a`` (docs/theory.md §3), hence the large learning rates; plain
full-batch gradient descent. 150 steps a stage let each stage settle on the paper's setting
within seconds on a CPU (measurements in docs/results.md §1).
"""

JOINT_DEFAULTS = ({"C": 100.0, "w": 100.0, "a": 1.0}, 100)
"""(learning rates, steps) of the default joint run."""

FULL_STAGEWISE_DEFAULTS = (("selector", ("C",), 300.0, 40, "sgd"),
                           ("copier", ("w",), 10.0, 80, "sgd"),
                           ("classifier", ("a",), 1e-4, 20, "adam"))
"""(name, params, lr, steps, optimizer) of the full model's default stage-wise run (§7).

The rates are those of the reference vocabulary and degree :data:`FULL_REFERENCE` (the paper's
d = 3, D = 2); :func:`full_config` multiplies the copier's by :func:`full_rate_scale`.
Plain SGD on :data:`FULL_SEQUENCES` fresh sequences a step (:data:`FULL_BATCH`) for the selector
and the copier. The LayerNorm copy has norm sqrt(d), so the similarity is up to d times the l2
one and the selector's signal about d² larger: lr 300 for C plays the role of the simplified
model's 3000. The LN gain enters each ``k_h`` squared, a second temperature whose gradient grows
like its cube, so the copier stage (w, A, V and the LN affine) needs lr ~10 at the reference
(at 100 it blows up) and less for larger d and D (:func:`full_rate_scale`). After the copier the
similarity's scale is whatever gain the copier reached, so an SGD rate for ``a`` that suits one
source overshoots on another (SGD lr 1e-3 raised the loss on the paper's source); Adam's step does
not depend on that scale, and lr 1e-4 moves ``a`` by at most 0.002 over the 20 steps: the gain
already sets the temperature. Fresh sequences a step, because on one fixed sample of 2000
the copier overfits the targets. Measurements: docs/results.md §10.
"""

FULL_JOINT_DEFAULTS = ({"C": 1000.0, "w": 2.0, "a": 1e-4}, 60)
"""(learning rates, steps) of the full model's default joint run (docs/theory.md §7), plain SGD.

Rates of the reference :data:`FULL_REFERENCE`; :func:`full_config` multiplies the copier's
by :func:`full_rate_scale` and the classifier's by its square bound
``min(1, d0^D0 / d^D)²`` (the curvature in ``a`` grows with the similarity's square). Plain
SGD on :data:`FULL_SEQUENCES` fresh sequences a step. The copier's rate is 5 times below the
stage-wise one so that the selector settles on (1, 2) while the copier is still nearly
content-free; with the stage-wise rates (C 300, w 10) the selector stayed a mixture
(c̃(1,2) = 0.65 after 100 steps, the rest on (1, 3) and the empty set). Measurements at the
reference: docs/results.md §10.
"""

FULL_REFERENCE = (3, 2)
"""(d0, D0): the vocabulary and degree at which the ``FULL_*`` rates were tuned (the paper's)."""


def full_rate_scale(vocab_size: int, degree: int) -> float:
    """Factor on the full model's copier learning rate: ``min(1, D0 d0^D0 / (D d^D))``.

    docs/theory.md §7: a LayerNorm copy gives ``k_h`` up to ``d γ_h²``, so the similarity of a
    set S is up to ``d^|S| Π γ_h²`` and its derivative in a common gain γ at γ = 1 is
    ``2|S| d^|S|`` times the l2 one; the largest set the selector can pick has |S| = D. The
    copier's gradient, and the finite-time blow-up of the gain it drives, scale with
    ``D d^D``, so the rate is divided by it relative to :data:`FULL_REFERENCE` (18). Never
    raised above the reference rate: smaller d and D converge with it (down to d = 2, D = 1),
    and larger rates are untested.

    Args:
        vocab_size: d >= 2.
        degree: D >= 1.
    """
    require(is_int(vocab_size) and vocab_size >= 2, "vocab_size", "an integer d >= 2",
            vocab_size)
    require(is_int(degree) and degree >= 1, "degree", "an integer D >= 1", degree)
    d0, D0 = FULL_REFERENCE
    return min(1.0, (D0 * d0 ** D0) / (int(degree) * int(vocab_size) ** int(degree)))


FULL_SEQUENCES = 2000
"""n of the full model's default runs: fresh sequences per step (and of the evaluation sample)."""

FULL_BATCH = "fresh"
"""Batches of the full model's default runs: fresh sequences every step (see
:data:`FULL_STAGEWISE_DEFAULTS` for why not one fixed sample)."""

MAX_LEARNING_RATE = 1e36
"""Largest accepted learning rate. torch's optimizers turn ``lr`` into a scalar of the parameters'
dtype (Adam's first step scales it by ``1/(1 - β1) = 10``), which overflows float32 (3.4e38)
and fails inside torch well before a run could report its divergence; the defaults use <= 3000."""

LearningRate = float | tuple[tuple[str, float], ...]


def _is_number(value: object) -> bool:
    """A finite real number: Python or numpy int/float, not a bool."""
    return (is_real(value)
            and math.isfinite(float(value)))


def _is_pairs(value: object) -> bool:
    """A non-empty tuple/list of ``(param, lr)`` pairs (the stored form of a per-param lr)."""
    return (isinstance(value, (tuple, list)) and len(value) >= 1
            and all(isinstance(p, (tuple, list)) and len(p) == 2 and isinstance(p[0], str)
                    for p in value))


@dataclass(frozen=True)
class StageConfig:
    """One training stage: which parameters move, how, and for how many steps.

    Attributes:
        name: label of the stage in the history (not ``"init"``).
        params: non-empty subset of :data:`PARAMS`; stored in :data:`PARAMS` order.
        lr: one learning rate for all ``params``, or a mapping ``param -> lr`` with exactly the
            keys ``params`` (stored as ``((param, lr), ...)`` in :data:`PARAMS` order; that
            tuple of pairs is accepted too). A learning rate is a real number in
            ``(0, MAX_LEARNING_RATE]`` (Python or numpy int/float; not a bool, nan, string,
            list or tensor), stored as a float.
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
        if isinstance(lr, Mapping) or _is_pairs(lr):
            keys = list(lr) if isinstance(lr, Mapping) else [p for p, _ in lr]
            lr = dict(lr)
            require(len(keys) == len(lr) and set(lr) == set(params), f"stage {self.name!r} lr",
                    f"one learning rate for each of {params}", keys)
            for p, v in lr.items():
                require(_is_number(v) and 0 < float(v) <= MAX_LEARNING_RATE,
                        f"stage {self.name!r} lr[{p!r}]",
                        f"a real number in (0, MAX_LEARNING_RATE = {MAX_LEARNING_RATE:g}]", v)
            lr = tuple((p, float(lr[p])) for p in params)
        else:
            require(_is_number(lr) and 0 < float(lr) <= MAX_LEARNING_RATE,
                    f"stage {self.name!r} lr",
                    f"a real number in (0, MAX_LEARNING_RATE = {MAX_LEARNING_RATE:g}] or a "
                    "mapping param -> lr", lr)
            lr = float(lr)
        object.__setattr__(self, "lr", lr)
        require(is_int(self.steps) and self.steps >= 0, f"stage {self.name!r} steps",
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
    """A training run (batches and randomness: :mod:`numerics.training.loop`'s module docstring).

    Attributes:
        mode: one of :data:`MODES` (``joint``: exactly one stage training C, w and a).
        stages: the stages in order (dicts are converted); names distinct.
        sequences: n, sample size (or batch size of a ``"fresh"`` run), >= 1.
        seq_len: L, context length; sequences have L + 1 tokens. Must exceed the window M.
        batch: ``"full"``, ``"fresh"`` or a minibatch size B in 1..n.
        loss: one of ``numerics.models.simplified.LOSS_KINDS``.
        dtype: a key of :data:`DTYPES` (``"float32"`` or ``"float64"``).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        log_points: history rows per stage, >= 2.
        start: sampler start mode (``numerics.data.START_MODES``).
        burn_in: sampler burn-in steps run after the start and dropped (>= 0).
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
        require(is_int(self.sequences) and self.sequences >= 1, "sequences",
                "an integer n >= 1", self.sequences)
        object.__setattr__(self, "sequences", int(self.sequences))
        require(is_int(self.seq_len) and self.seq_len >= 2, "seq_len", "an integer L >= 2",
                self.seq_len)
        object.__setattr__(self, "seq_len", int(self.seq_len))
        if is_int(self.batch):
            require(1 <= self.batch <= self.sequences, "batch",
                    f"'full', 'fresh' or a minibatch size in 1..n = {self.sequences}", self.batch)
            object.__setattr__(self, "batch", int(self.batch))
        else:
            require(self.batch in ("full", "fresh"), "batch",
                    "'full', 'fresh' or a minibatch size (int)", self.batch)
        require(self.loss in LOSS_KINDS, "loss", f"one of {LOSS_KINDS}", self.loss)
        require(isinstance(self.dtype, str) and self.dtype in DTYPES, "dtype",
                f"one of {tuple(DTYPES)}", self.dtype)
        require(is_device_name(self.device), "device", DEVICE_NAMES, self.device)
        require(is_int(self.log_points) and self.log_points >= 2, "log_points",
                "an integer >= 2", self.log_points)
        object.__setattr__(self, "log_points", int(self.log_points))
        require(self.start in START_MODES, "start", f"one of {START_MODES}", self.start)
        require(is_int(self.burn_in) and self.burn_in >= 0, "burn_in", "an integer >= 0",
                self.burn_in)
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


def simplified_config(mode: str = "stagewise", *, sequences: int | None = None,
                      seq_len: int = 100, batch: str | int | None = None, loss: str = "nll",
                      dtype: str = "float32", device: str = "auto",
                      log_points: int = DEFAULT_LOG_POINTS, vocab_size: int | None = None,
                      degree: int | None = None) -> TrainConfig:
    """The library's default run of TF(M, H, d, D) (:class:`numerics.InductionHeadModel`).

    Tuned for ``ModelSpec``'s default initialisation (``w_- = 0``, ``C = 1``, ``a = 0.01``):
    :data:`STAGEWISE_DEFAULTS` or :data:`JOINT_DEFAULTS`, plain full-batch gradient descent on
    n = 2000 sequences; ``vocab_size`` and ``degree`` do not change it (they are accepted so
    that every kind's default run is asked for with the same keywords).

    Args:
        mode: one of :data:`MODES`.
        sequences: n (None: 2000).
        seq_len: L.
        batch: ``"full"``, ``"fresh"`` or a minibatch size (None: ``"full"``).
        loss: one of ``LOSS_KINDS``.
        dtype: a key of :data:`DTYPES`.
        device: a device name (:class:`TrainConfig`).
        log_points: history rows per stage.
        vocab_size: d of the source (unused).
        degree: D of the model (unused).
    """
    require(mode in MODES, "mode", f"one of {MODES}", mode)
    if mode == "stagewise":
        stages = tuple(StageConfig(name, params, lr, steps)
                       for name, params, lr, steps in STAGEWISE_DEFAULTS)
    else:
        lrs, steps = JOINT_DEFAULTS
        stages = (StageConfig("joint", PARAMS, dict(lrs), steps),)
    return TrainConfig(mode, stages, 2000 if sequences is None else sequences, seq_len,
                       batch="full" if batch is None else batch, loss=loss, dtype=dtype,
                       device=device, log_points=log_points)


def full_config(mode: str = "stagewise", *, sequences: int | None = None, seq_len: int = 100,
                batch: str | int | None = None, loss: str = "nll", dtype: str = "float32",
                device: str = "auto", log_points: int = DEFAULT_LOG_POINTS,
                vocab_size: int | None = None, degree: int | None = None) -> TrainConfig:
    """The library's default run of the full variant (:class:`numerics.FullInductionHeadModel`
    with its default options, docs/theory.md §7).

    :data:`FULL_STAGEWISE_DEFAULTS` or :data:`FULL_JOINT_DEFAULTS` on :data:`FULL_SEQUENCES`
    sequences, :data:`FULL_BATCH` batches, the copier's rate times :func:`full_rate_scale` of
    the model's d and D (and the joint classifier's times ``min(1, d0^D0 / d^D)²``);
    ``vocab_size`` and ``degree`` left at None take :data:`FULL_REFERENCE`, the paper's d = 3,
    D = 2, so pass the trained model's for any other source (the reference rates diverge at
    d = 5, D = 3). The simplified model's rates make the full model diverge (its LayerNorm copy
    has norm sqrt(d)). The scaled rates keep the full model's runs from diverging on every
    tested source while its selector and copier settle; 60 joint steps can leave its copier
    unconverged on drawn sources. Measurements over drawn sources: docs/results.md §10.

    Args:
        mode: one of :data:`MODES`.
        sequences: n (None: :data:`FULL_SEQUENCES`).
        seq_len: L.
        batch: ``"full"``, ``"fresh"`` or a minibatch size (None: :data:`FULL_BATCH`).
        loss: one of ``LOSS_KINDS``.
        dtype: a key of :data:`DTYPES`.
        device: a device name (:class:`TrainConfig`).
        log_points: history rows per stage.
        vocab_size: d of the source (None: :data:`FULL_REFERENCE`'s).
        degree: D of the model (None: :data:`FULL_REFERENCE`'s).
    """
    require(mode in MODES, "mode", f"one of {MODES}", mode)
    d0, D0 = FULL_REFERENCE
    d = d0 if vocab_size is None else vocab_size
    D = D0 if degree is None else degree
    copier_scale = full_rate_scale(d, D)
    if mode == "stagewise":
        stages = tuple(StageConfig(name, params, lr * copier_scale if params == ("w",) else lr,
                                   steps, optimizer)
                       for name, params, lr, steps, optimizer in FULL_STAGEWISE_DEFAULTS)
    else:
        lrs, steps = FULL_JOINT_DEFAULTS
        classifier_scale = min(1.0, d0 ** D0 / d ** D) ** 2
        lrs = {"C": lrs["C"], "w": lrs["w"] * copier_scale, "a": lrs["a"] * classifier_scale}
        stages = (StageConfig("joint", PARAMS, lrs, steps),)
    return TrainConfig(mode, stages, FULL_SEQUENCES if sequences is None else sequences,
                       seq_len, batch=FULL_BATCH if batch is None else batch, loss=loss,
                       dtype=dtype, device=device, log_points=log_points)


def log_steps(steps: int, points: int) -> np.ndarray:
    """Log-spaced steps of a stage: ``unique(round(geomspace(1, S, points)))``, (<= points,) int64.

    Always contains 1 and S (for S >= 1); every step when ``points >= S``; empty for S = 0.
    """
    require(is_int(steps) and steps >= 0, "steps", "an integer >= 0", steps)
    require(is_int(points) and points >= 2, "points", "an integer >= 2", points)
    if steps == 0:
        return np.zeros(0, dtype=np.int64)
    if points >= steps:
        return np.arange(1, steps + 1, dtype=np.int64)
    return np.unique(np.round(np.geomspace(1, steps, points)).astype(np.int64))
