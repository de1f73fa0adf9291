"""The set a training run is checked against: what theory says this run should reach.

Three sources of that set, in order (docs/theory.md §3.7):

- ``population``: the prediction's own ranking decides. For stage-wise training of TF (stage 1
  trains the selector alone against the initial copier) this is
  :attr:`theory.limit.prediction.LimitPrediction.reached_set`, the best set of ``G_L`` at the
  spec's initial copier (``S*`` when the initial copier is close enough to exact); otherwise
  it is ``S*``. Decided when that ranking meets the 3-SE rule, in Monte Carlo standard errors
  and in units of a training sample's noise.
- ``training sample``: the population ranking is too close for ``n`` training sequences to
  resolve, so the run follows its own sample. Stage 1 of stage-wise training is the replicator
  on that sample's criterion (:func:`theory.criterion.training_sample.stage1_on_sample`,
  computed from the tokens and the spec); decided when the replicator puts at least
  :data:`SAMPLE_SETTLED` on one set by the end of stage 1.
- ``undecidable``: neither decides; the checks still run against the population set.

Joint training (``C``, ``w`` and ``a`` at once) has no selector-only stage: its set is decided
along the way at the temperature reached (docs/theory.md §3.8). :func:`joint_target` reads it
from theory's joint path on the run's own training sample
(:func:`theory.dynamics.joint_path.joint_path_on_sample`): basis ``training sample``, the set the
path ends on; where the path ends split (no set past :data:`JOINT_SETTLED`), the checks compare
the whole ``c̃`` with the path's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from theory.criterion.estimates import stage1_signal
from theory.criterion.training_sample import SampleSelection, stage1_on_sample
from theory.dynamics.joint_path import JointPath
from theory.errors import require
from theory.limit.prediction import LimitPrediction
from theory.notation import head_set_label
from theory.sources.spec import ModelSpec

__all__ = ["SAMPLE_SETTLED", "JOINT_SETTLED", "TARGET_BASES", "TrainingTarget", "target_note",
           "training_target", "joint_target", "ends_split"]

SAMPLE_SETTLED = 0.99
"""Predicted c̃ on the sample's best set at the end of stage 1 for the sample to decide: above
the selector check's 0.95 with room for the prediction's error (second order in ``a``; later
stages must not move the argmax)."""

JOINT_SETTLED = 0.98
"""Predicted c̃ on the joint path's final leader for a set to win the joint run: the selector
check's 0.95 plus the path's approximation (the copier exact from the first step moves c̃ by at
most 0.03 against the real run on the property tier's joint cases). Below it the path ends split
and the whole c̃ is the prediction."""

TARGET_BASES = ("population", "training sample", "undecidable")


def ends_split(path: JointPath) -> bool:
    """Whether a joint path ends with no set past :data:`JOINT_SETTLED`: its whole ``c̃`` is
    then the prediction."""
    return float(path.final_selector.max()) < JOINT_SETTLED
"""Where the target set comes from (module docstring)."""


@dataclass(frozen=True, eq=False)
class TrainingTarget:
    """The set a training run should reach, and why.

    Attributes:
        target_set: the set the run is checked against.
        basis: one of :data:`TARGET_BASES`.
        best_set: the set whose offsets the copier stage favours (``S*``, or the training
            sample's best set at the exact copier when the sample decides): heads of
            ``target_set`` outside it leave
            their offsets in the stage's limit, though a finite stage may not take them there
            (:mod:`theory.dynamics.copier_stage`).
        training_sample: stage 1 on the training sample, or None when there is no
            selector-only first stage.
        joint: theory's joint path on the training sample for a joint run it describes, else
            None.
    """

    target_set: tuple[int, ...]
    basis: str
    best_set: tuple[int, ...]
    training_sample: SampleSelection | None
    joint: JointPath | None = None

    @property
    def split(self) -> bool:
        """Whether the joint path ends with no set past :data:`JOINT_SETTLED` (False without a
        joint path)."""
        return self.joint is not None and ends_split(self.joint)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the report keys ``set``, ``basis``, ``best``,
        ``training_sample``, ``joint``."""
        return {"set": list(self.target_set), "basis": self.basis, "best": list(self.best_set),
                "training_sample": (None if self.training_sample is None
                                    else self.training_sample.to_dict()),
                "joint": None if self.joint is None else self.joint.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingTarget:
        """Rebuild a target from :meth:`to_dict` (e.g. ``report.json``'s ``target``).

        Raises:
            InductionHeadsError: when keys are missing or the basis is unknown.
        """
        keys = ("set", "basis", "best", "training_sample")
        require(isinstance(data, Mapping) and all(k in data for k in keys), "target",
                f"a dict from TrainingTarget.to_dict with keys {list(keys)}",
                sorted(data) if isinstance(data, Mapping) else type(data).__name__)
        require(data["basis"] in TARGET_BASES, "target basis", f"one of {TARGET_BASES}",
                data["basis"])
        sample, joint = data["training_sample"], data.get("joint")
        return cls(tuple(int(h) for h in data["set"]), str(data["basis"]),
                   tuple(int(h) for h in data["best"]),
                   None if sample is None else SampleSelection.from_dict(sample),
                   None if joint is None else JointPath.from_dict(joint))


def training_target(prediction: LimitPrediction, *, stagewise: bool, stage1_lr: float | None,
                    stage1_steps: int | None, spec: ModelSpec, tokens: np.ndarray
                    ) -> TrainingTarget:
    """The set this run should reach, and why (module docstring).

    Args:
        prediction: theory's prediction for the case.
        stagewise: whether training starts with a stage that trains TF's selector alone
            against the initial copier (stage-wise training of the simplified model).
        stage1_lr: that stage's learning rate on ``C``, or None when there is no such stage.
        stage1_steps: that stage's steps, or None when there is no such stage.
        spec: the model's spec.
        tokens: integer ``(n, L+1)``, the training sample.

    Returns:
        :class:`TrainingTarget`.
    """
    require(isinstance(stagewise, bool), "stagewise", "True or False", stagewise)
    population = prediction.reached_set if stagewise else prediction.selected_set
    decided = prediction.reached_decidable if stagewise else prediction.exact.decidable
    sample = None
    if stagewise and stage1_lr is not None and stage1_steps is not None and stage1_steps > 0:
        sample = stage1_on_sample(tokens, spec, lr=stage1_lr, steps=stage1_steps)
    if decided:
        chosen, basis = population, "population"
    elif sample is not None and sample.settles(SAMPLE_SETTLED):
        chosen, basis = sample.selected_set, "training sample"
    else:
        chosen, basis = population, "undecidable"
    # The best set the copier stage moves toward: S* when the population decides. When the
    # sample decides, the copier stage maximises this sample's criterion of the offsets its
    # heads copy, so its best set at the exact copier; stage 1 chose at the soft initial copier
    # and may have reached a larger set (docs/theory.md §3.9).
    best = (_exact_best(tokens, prediction.sets) if basis == "training sample"
            else prediction.selected_set)
    return TrainingTarget(tuple(chosen), basis, tuple(best), sample)


def _exact_best(tokens: np.ndarray, sets: tuple[tuple[int, ...], ...]) -> tuple[int, ...]:
    """``argmax_S G_n(S)``: the sample mean of the stage-1 signal at the exact copier
    (:func:`theory.criterion.estimates.stage1_signal`), first set on ties."""
    values = [float(stage1_signal(tokens, s).mean()) for s in sets]  # (|𝒮|,)
    return tuple(sets[int(np.argmax(values))])


def joint_target(prediction: LimitPrediction, path: JointPath) -> TrainingTarget:
    """The set a joint run should reach: where theory's joint path on its training sample ends.

    Args:
        prediction: theory's prediction for the case (its sets must be the path's).
        path: :func:`theory.dynamics.joint_path.joint_path_on_sample` on the run's training
            sample with the run's rates, steps, loss and initialisation.

    Returns:
        :class:`TrainingTarget` with basis ``training sample``: the set with the largest final
        ``c̃`` on the path (its heads are the ones the copier serves), the path attached.
    """
    require(isinstance(path, JointPath), "path", "a theory.JointPath", type(path).__name__)
    require(tuple(path.sets) == tuple(prediction.sets), "path sets",
            f"the prediction's head sets {prediction.sets}", path.sets)
    chosen = path.sets[int(np.argmax(path.final_selector))]
    return TrainingTarget(tuple(chosen), "training sample", tuple(chosen), None, path)


def target_note(prediction: LimitPrediction, target: TrainingTarget) -> str | None:
    """A report note when the target set is not ``S*`` or is undecidable, else None."""
    chosen = target.target_set
    if target.joint is not None:
        weights = ", ".join(f"{head_set_label(s)} {w:.3f}" for s, w in
                            zip(target.joint.sets, target.joint.final_selector) if w >= 0.01)
        if target.split:
            return (f"theory's joint path on the training sample ends split (c̃: {weights}): the "
                    f"selector check compares the whole c̃; S* = "
                    f"{head_set_label(prediction.selected_set)}")
        if chosen == prediction.selected_set:
            return None
        return (f"the checks use {head_set_label(chosen)}, not S* = "
                f"{head_set_label(prediction.selected_set)}: theory's joint path on the "
                f"training sample ends there (c̃: {weights})")
    if target.basis == "undecidable":
        return (f"neither the prediction nor the training sample decides which set stage 1 "
                f"reaches: the checks use {head_set_label(chosen)}")
    if chosen == prediction.selected_set:
        return None
    why = ("the initial copier ranks it first (G_L at the spec's initialisation)"
           if target.basis == "population" else
           "this training sample ranks it first at the initial copier")
    return (f"the checks use {head_set_label(chosen)}, not S* = "
            f"{head_set_label(prediction.selected_set)}: {why}")
