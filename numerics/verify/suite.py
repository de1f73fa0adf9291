"""The checks a verify run makes, by name: what each reads from the run.

A model kind lists the names of its checks (:attr:`numerics.training.ModelKind.checks`); this
module maps every name to the function that makes it from a :class:`CheckContext`, the one
record of what a finished run offers (the prediction, the history, the target set, the probe's
report and the losses read from it). :func:`run_checks` makes a kind's checks in its order.

    selector, copier, untouched_heads, temperature, gih_agreement, loss_vs_gih
                     :mod:`numerics.verify.checks` (TF's own selector, copier and temperature)
    probe_agreement, effective_set, loss_vs_best_gih, first_layer
                     :mod:`numerics.verify.probe_checks` (read through the probe)
    selector_path    :mod:`numerics.verify.joint_checks` (a joint run against theory's joint
                     path, which also gives the selector and temperature checks of such a run)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from numerics.probing import ProbeReport
from numerics.verify.checks import (
    Check,
    check_copier,
    check_gih_agreement,
    check_loss_vs_gih,
    check_selector,
    check_temperature,
    check_untouched,
)
from numerics.verify.joint_checks import (
    check_joint_selector,
    check_joint_temperature,
    check_selector_path,
)
from numerics.verify.probe_checks import (
    check_effective_set,
    check_first_layer,
    check_loss_vs_best_gih,
    check_probe_agreement,
)
from theory.dynamics.copier_stage import CopierStage
from theory.dynamics.joint_path import JointPath
from theory.errors import require
from theory.limit.prediction import LimitPrediction
from theory.limit.target import ends_split

__all__ = ["CheckContext", "CHECK_FUNCTIONS", "run_checks"]


@dataclass(frozen=True, eq=False)
class CheckContext:
    """What a finished verify run offers its checks.

    Attributes:
        prediction: theory's prediction.
        history: the logged trajectory (a :class:`numerics.training.TrainingHistory`).
        config: the training run's configuration.
        target_set: the set the run is checked against (``theory``'s training target).
        best_set: the set whose offsets the copier stage favours.
        probe: the final probe on the held-out sample.
        losses: the held-out losses (:func:`numerics.verify.evaluation.losses_view`, with
            ``best_gih`` where the kind's checks read it).
        learned: the report's ``learned`` block (``selected_set`` for a kind with a selector).
        first_layer_tap: the kind's first-layer attention tap.
        copier_stage: theory's copier stage on the run's training sample, where the copier
            check reads it (heads of the target outside the best set; None otherwise).
        joint: theory's joint path on the run's training sample, for a joint run it
            describes (the selector, temperature and selector_path checks read it); else None.
    """

    prediction: LimitPrediction
    history: Any
    config: Any
    target_set: tuple[int, ...]
    best_set: tuple[int, ...]
    probe: ProbeReport
    losses: Mapping[str, Any]
    learned: Mapping[str, Any]
    first_layer_tap: str
    copier_stage: CopierStage | None = None
    joint: JointPath | None = None


def _selector(ctx: CheckContext) -> Check:
    if ctx.joint is not None and ends_split(ctx.joint):
        return check_joint_selector(ctx.history, ctx.joint)
    return check_selector(ctx.prediction, ctx.history, ctx.target_set)


def _temperature(ctx: CheckContext) -> Check:
    if ctx.joint is not None:
        return check_joint_temperature(ctx.history, ctx.joint)
    return check_temperature(ctx.history, ctx.config)


def _selector_path(ctx: CheckContext) -> Check:
    require(ctx.joint is not None, "selector_path check", "a joint run theory's joint path "
            "describes", "no joint path")
    return check_selector_path(ctx.history, ctx.joint)


def _gih_agreement(ctx: CheckContext) -> Check:
    score = ctx.probe.last.score("gih_trained_a")
    return check_gih_agreement(score.tv, score.tv_se, ctx.target_set, score.temperature)


CHECK_FUNCTIONS: dict[str, Callable[[CheckContext], Check]] = {
    "selector": _selector,
    "copier": lambda c: check_copier(c.prediction, c.history, c.target_set, c.best_set,
                                     c.copier_stage),
    "untouched_heads": lambda c: check_untouched(c.prediction, c.history, c.target_set),
    "temperature": _temperature,
    "gih_agreement": _gih_agreement,
    "loss_vs_gih": lambda c: check_loss_vs_gih(c.losses),
    "probe_agreement": lambda c: check_probe_agreement(c.learned["selected_set"], c.probe),
    "effective_set": lambda c: check_effective_set(c.prediction, c.probe),
    "loss_vs_best_gih": lambda c: check_loss_vs_best_gih(c.losses["model"],
                                                         c.losses["best_gih"]),
    "first_layer": lambda c: check_first_layer(c.prediction, c.probe, c.first_layer_tap),
    "selector_path": _selector_path,
}
"""Check name -> the function that makes it from a :class:`CheckContext`."""


def run_checks(names: tuple[str, ...], context: CheckContext) -> tuple[Check, ...]:
    """The checks ``names`` (a kind's list) made from ``context``, in that order.

    Raises:
        InductionHeadsError: on a name no function makes.
    """
    unknown = [n for n in names if n not in CHECK_FUNCTIONS]
    require(not unknown, "check names", f"names among {sorted(CHECK_FUNCTIONS)}", unknown)
    return tuple(CHECK_FUNCTIONS[n](context) for n in names)
