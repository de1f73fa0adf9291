"""The set a verify run is checked against: what theory says this training run should reach.

Three sources of that set, in order (docs/theory.md §3.7):

- ``population``: the prediction's own ranking decides. For stage-wise training of TF this is
  :attr:`theory.LimitPrediction.reached_set`, the argmax of ``G_L`` at the spec's initial
  copier (``S*`` when the initial copier is close enough to exact); for joint training and the
  full variant it is ``S*``. Decided when that ranking meets the 3-SE rule, in Monte Carlo
  standard errors and in units of a training sample's noise.
- ``training sample``: the population ranking is too close for ``n`` training sequences to
  resolve, so the run follows its own sample. Stage 1 of stage-wise training is the replicator
  on that sample's criterion (:func:`theory.training_sample.stage1_on_sample`, computed from
  the tokens and the spec, without a torch model); decided when the replicator puts at least
  :data:`SAMPLE_SETTLED` on one set by the end of stage 1.
- ``undecidable``: neither decides; the checks still run against the population set and the
  property tier discards the case.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from theory.limit import LimitPrediction
from theory.notation import head_set_label
from theory.spec import ModelSpec
from theory.training_sample import stage1_on_sample

__all__ = ["SAMPLE_SETTLED", "TARGET_BASES", "target_note", "training_target"]

SAMPLE_SETTLED = 0.99
"""Predicted c̃ on the sample's best set at the end of stage 1 for the sample to decide: above
the selector check's 0.95 with room for the prediction's error (second order in a, ~1e-4;
docs/results.md §12) and for later stages, which must not move the argmax)."""

TARGET_BASES = ("population", "training sample", "undecidable")
"""Where the target set comes from (module docstring)."""


def training_target(prediction: LimitPrediction, config: Any, stage1_replicator: bool,
                    spec: ModelSpec, tokens: np.ndarray) -> dict[str, Any]:
    """The set this run should reach, and why.

    Args:
        prediction: theory's prediction for the case.
        config: the run's configuration.
        stage1_replicator: the model kind's stage 1 is theory's replicator at the initial
            copier (:attr:`numerics.training.ModelKind.stage1_replicator`).
        spec: the model's spec.
        tokens: integer ``(n, L+1)``, the training sample.

    Returns:
        ``{"set": [...], "basis": one of TARGET_BASES, "best": [...], "training_sample":
        SampleSelection dict or None}``; ``best`` is the set whose offsets the copier stage
        favours (``S*``, or the set itself when the training sample decides): heads of ``set``
        outside ``best`` leave their offsets.
    """
    stagewise = getattr(config, "mode", None) == "stagewise" and stage1_replicator
    population = prediction.reached_set if stagewise else prediction.selected_set
    decided = prediction.reached_decidable if stagewise else prediction.decidable
    sample = None
    first = next((s for s in config.stages if s.params == ("C",)), None) if stagewise else None
    if first is not None and first.steps > 0:
        sample = stage1_on_sample(tokens, spec, lr=first.lr_of("C"), steps=first.steps)
    if decided:
        chosen, basis = population, "population"
    elif sample is not None and sample.settles(SAMPLE_SETTLED):
        chosen, basis = sample.selected_set, "training sample"
    else:
        chosen, basis = population, "undecidable"
    # The best set the copier stage moves toward: S* when the population decides; the sample's
    # own choice when the sample decides (the population ranking is a tie there).
    best = chosen if basis == "training sample" else prediction.selected_set
    return {"set": list(chosen), "basis": basis, "best": list(best),
            "training_sample": None if sample is None else sample.to_dict()}


def target_note(prediction: LimitPrediction, target: dict[str, Any]) -> str | None:
    """A report note when the target set is not ``S*`` or is undecidable, else None."""
    chosen = tuple(target["set"])
    if target["basis"] == "undecidable":
        return (f"neither the prediction nor the training sample decides which set stage 1 "
                f"reaches: the checks use {head_set_label(chosen)}")
    if chosen == prediction.selected_set:
        return None
    why = ("the initial copier ranks it first (G_L at the spec's initialisation)"
           if target["basis"] == "population" else
           "this training sample ranks it first at the initial copier")
    return (f"the checks use {head_set_label(chosen)}, not S* = "
            f"{head_set_label(prediction.selected_set)}: {why}")
