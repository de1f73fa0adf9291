"""The copier stage of stage-wise training in the steps it is given: its predicted trajectory.

Stage 2 of stage-wise training moves the copier logits ``w`` (H, M) alone, with the selector ``c̃``
where stage 1 left it and ``a`` at its initial value. §3.3 of docs/theory.md gives the direction
of its limit; a finite stage (150 steps by default) stops on the way, and from a soft initial
copier the first moves need not point toward that limit. This module predicts where the stage
stops, from the tokens and the spec alone, with the gradient of
:mod:`theory.dynamics.copier_gradient` (its derivation is there).

**The trajectory** iterates the optimizer's own steps (torch's SGD rule, with momentum when
given: ``buf = g`` at the first step, ``momentum·buf + g`` after, ``w -= lr·buf``), the
gradient re-evaluated at every step on one fixed sample. Not the gradient flow: the stage *is*
full-batch gradient descent on its fixed training sample, so the iteration reproduces it
without an Euler error to bound, and one fixed sample keeps the predicted trajectory a smooth
function of that sample. Its standard error is by batch means: the sample split into ``groups``
contiguous parts, the trajectory run on each, the spread of their end masses over
``sqrt(groups)``; it is the noise of a sample of this size, the scale on which another sample
(or the population) would end elsewhere. It assumes the end mass is close to linear in the
sample; where it is not (a head that slides off its offset at a time that depends on the
sample), groups an eighth of the sample's size spread wider than the whole sample would, and
the standard error tends to err on the large side. ``a`` and ``c̃`` stay frozen, as the stage
keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from theory.dynamics.copier_gradient import (
    CopierGradient,
    CopierSample,
    check_selector_weights,
    copier_gradient,
    initial_logits,
)
from theory.errors import require
from theory.sources.sequences import sample_sequences_np
from theory.sources.spec import ModelSpec, Source
from theory.validation import as_float, as_int, is_real

__all__ = ["COPIER_STAGE_GROUPS", "CopierStage", "copier_stage_on_sample",
           "predict_copier_stage"]

COPIER_STAGE_GROUPS = 8
"""Batch-means groups behind a trajectory's standard error: enough for a spread with seven
degrees of freedom, few enough that each group keeps an eighth of the sample."""


@dataclass(frozen=True, eq=False)
class CopierStage:
    """The copier stage's predicted trajectory on one fixed sample.

    Attributes:
        lr: the stage's learning rate on ``w``.
        steps: its steps ``k``.
        momentum: its SGD momentum.
        masses: ``(k+1, H)`` each head's mass ``σ_h(h)`` on its own offset, before every step
            and after the last.
        attention: ``(H, M)`` σ after the ``k`` steps.
        se: ``(H,)`` batch-means standard error of the end masses (NaN with fewer than two
            groups).
        gradient: the gradient at the start of the stage (:class:`CopierGradient`).
        samples: the sequences of the sample.
    """

    lr: float
    steps: int
    momentum: float
    masses: np.ndarray
    attention: np.ndarray
    se: np.ndarray
    gradient: CopierGradient
    samples: int

    @property
    def final(self) -> np.ndarray:
        """``(H,)`` each head's own-offset mass after the ``k`` steps."""
        return self.masses[-1]

    @property
    def change(self) -> np.ndarray:
        """``(H,)`` the end mass minus the initial mass, per head."""
        return self.masses[-1] - self.masses[0]

    def direction(self, z: float = 3.0) -> np.ndarray:
        """``(H,)`` int: +1 where a head gains own-offset mass by at least ``z`` standard
        errors, -1 where it loses that much, 0 where the stage leaves it undecided."""
        change, se = self.change, self.se
        decided = np.isfinite(se) & (np.abs(change) >= z * se)
        return np.where(decided, np.sign(change), 0).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``masses`` as the initial and end rows)."""
        return {"lr": self.lr, "steps": self.steps, "momentum": self.momentum,
                "initial": self.masses[0].tolist(), "final": self.final.tolist(),
                "se": [None if not np.isfinite(v) else float(v) for v in self.se],
                "drift": self.gradient.drift.tolist(),
                "drift_se": self.gradient.drift_se.tolist(), "samples": self.samples}


def _descend(sample: CopierSample, c: np.ndarray, lr: float, steps: int,
             momentum: float) -> tuple[np.ndarray, np.ndarray]:
    """Own-offset masses ``(k+1, H)`` along the SGD steps on ``sample``, and σ ``(H, M)`` after
    the last."""
    spec = sample.spec
    w = np.where(sample.inside, initial_logits(spec), 0.0)  # (H, M), finite
    own = np.arange(spec.heads)
    masses = [sample.attention(w)[own, own]]
    buf = None
    for _ in range(steps):
        g = sample.mean_gradient(w, c, spec.a_init)  # (H, M), 0 outside the windows
        buf = g if buf is None else momentum * buf + g
        w = w - lr * buf
        masses.append(sample.attention(w)[own, own])
    return np.array(masses), sample.attention(w)


def copier_stage_on_sample(tokens: Any, spec: ModelSpec, *, selector_weights: Any, lr: float,
                           steps: int, momentum: float = 0.0,
                           groups: int = COPIER_STAGE_GROUPS) -> CopierStage:
    """The copier stage's ``steps`` SGD steps on a fixed sample (module docstring).

    Starts at the spec's initial logits with ``a = spec.a_init`` and c̃ frozen at
    ``selector_weights`` (where stage 1 leaves it, e.g.
    :attr:`theory.criterion.training_sample.SampleSelection.weights`).

    Args:
        tokens: integer ``(n, L+1)``, the stage's sample (its training sample, or a Monte Carlo
            draw from the source).
        spec: the model's spec.
        selector_weights: ``(|𝒮|,)`` c̃ in ``spec.sets`` order.
        lr: the stage's learning rate on ``w``, > 0.
        steps: its steps, >= 0.
        momentum: SGD momentum in ``[0, 1)``.
        groups: batch-means groups for the standard error; below 2 (or more than ``n``) none is
            computed and ``se`` is NaN.

    Returns:
        :class:`CopierStage`.

    Raises:
        InductionHeadsError: on a bad spec, sample, selector, rate, step count or momentum.
    """
    sample = CopierSample(tokens, spec)
    c = check_selector_weights(selector_weights, spec)
    require(is_real(lr) and np.isfinite(lr) and lr > 0, "lr", "a finite number > 0", lr)
    steps = as_int(steps, "steps", minimum=0)
    momentum = as_float(momentum, "momentum")
    require(0 <= momentum < 1, "momentum", "a number in [0, 1)", momentum)
    groups = as_int(groups, "groups", minimum=0)
    masses, sigma = _descend(sample, c, float(lr), steps, momentum)  # (k+1, H), (H, M)
    n = sample.samples
    se = np.full(spec.heads, np.nan)
    if 2 <= groups <= n:
        ends = np.array([_descend(CopierSample(part, spec), c, float(lr), steps, momentum)[0][-1]
                         for part in np.array_split(sample.tokens, groups)])  # (groups, H)
        se = ends.std(axis=0, ddof=1) / np.sqrt(groups)
    gradient = copier_gradient(sample, spec, selector_weights=c)
    for arr in (masses, sigma, se):
        arr.setflags(write=False)
    return CopierStage(float(lr), steps, momentum, masses, sigma, se, gradient, n)


def predict_copier_stage(source: Source, spec: ModelSpec, *, selector_weights: Any,
                         seq_len: int, lr: float, steps: int, samples: int,
                         rng: np.random.Generator, momentum: float = 0.0,
                         groups: int = COPIER_STAGE_GROUPS) -> CopierStage:
    """The copier stage on ``samples`` sequences of length ``seq_len + 1`` drawn from the source
    (uniform start, as training draws them): the Monte Carlo prediction, with the batch-means
    standard error of a sample of that size. Arguments as :func:`copier_stage_on_sample`.
    """
    require(isinstance(source, Source), "source", "a theory.Source", type(source).__name__)
    L = as_int(seq_len, "seq_len", minimum=1, symbol="L")
    n = as_int(samples, "samples", minimum=1)
    tokens = sample_sequences_np(source, n, L + 1, rng=rng)  # (n, L+1)
    return copier_stage_on_sample(tokens, spec, selector_weights=selector_weights, lr=lr,
                                  steps=steps, momentum=momentum, groups=groups)
