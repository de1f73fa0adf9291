"""A joint run whose selection moves with the temperature, against theory (docs/theory.md §3.8).

Stage-wise training ranks the head sets at ``a → 0`` by ``G_L``. A joint run trains ``C``, ``w``
and ``a`` together, so the selector keeps moving while ``a`` grows, and past a switch
temperature another set's GIH has the lower loss. On the weak-parent mixture of docs/theory.md §1
(:data:`theory.WEAK_PARENT_SOURCE`) a joint run under the authors' recipe leads with ``(1,)`` and then
hands the lead to ``(1, 2)``.

:func:`joint_selection` trains that run (:data:`OFFICIAL_MODEL`, ``official_ce``, SGD at lr 1 on
``C``, ``w`` and ``a``, full batch, ``L = 100``, a history row at every step) and sets next to it

- theory's path of the same run, :func:`theory.dynamics.joint_path_on_sample` on the run's own
  training sample (exact copier, so sampling does not enter the comparison), and the switch step
  of both by :func:`theory.dynamics.selector_leads` at the same steps;
- the loss of every set's GIH over a grid of ``a`` on a fresh sample, with the switch
  temperatures of :func:`theory.selection_path` under the same loss, given the trained ``a`` at
  the measured switch.

:func:`joint_selection_figure` draws the result with :func:`numerics.plots.plot_joint_selection`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from numerics.experiments.families import OFFICIAL_MODEL, OFFICIAL_REPORTED
from numerics.models.simplified import InductionHeadModel
from numerics.plots.joint import plot_joint_selection
from numerics.training import PARAMS, History, StageConfig, TrainConfig, train
from theory.dynamics.finite_temperature import TemperatureLosses
from theory.dynamics.joint_path import (
    JOINT_GROUPS,
    JointPath,
    JointSample,
    joint_path_on_sample,
    selector_leads,
)
from theory.dynamics.selection_path import SelectionPath, selection_path
from theory.errors import require
from theory.sources.spec import WEAK_PARENT_SOURCE
from theory.validation import as_int

__all__ = ["JOINT_LOSS", "JOINT_TEMPERATURES", "JointSelection",
           "joint_selection", "joint_selection_figure"]

JOINT_LOSS = "official_ce"
"""The authors' loss (docs/theory.md §4), for the run, its predicted path and the GIH losses."""

JOINT_TEMPERATURES = np.round(np.arange(0.25, 8.001, 0.25), 2)
"""The grid of ``a`` for the GIH losses: past the official-loss switch ``(1,) → (1, 2)`` near
``a ≈ 3.2`` (docs/theory.md §3.8) and past the ``a`` a joint run reaches in a few hundred steps."""
JOINT_TEMPERATURES.setflags(write=False)


@dataclass(frozen=True, eq=False)
class JointSelection:
    """A joint run on :data:`theory.WEAK_PARENT_SOURCE` next to theory's path and GIH losses.

    Attributes:
        history: the run's history, a row at every step ``0..steps`` (selector ``(T, |𝒮|)``,
            ``a`` ``(T,)``).
        predicted: theory's path on the run's own training sample (``T`` rows, same steps).
        measured_first: the set that takes the lead first in the run, or None.
        measured_switch: the step at which another set takes the lead in the run, or None.
        selection: the GIH losses of every set over :data:`JOINT_TEMPERATURES` on a fresh
            sample and their switch temperatures (``trained_temperature``: the run's ``a`` at
            ``measured_switch``, or None without a switch).
        sequences: ``n`` of the training sample.
        seconds: wall time of the training run.
    """

    history: History
    predicted: JointPath
    measured_first: tuple[int, ...] | None
    measured_switch: int | None
    selection: SelectionPath
    sequences: int
    seconds: float

    @property
    def sets(self) -> tuple[tuple[int, ...], ...]:
        """The head sets (columns of both selectors)."""
        return self.history.sets

    @property
    def losses(self) -> TemperatureLosses:
        """The per-sequence GIH losses behind :attr:`selection` (``(n, |𝒮|, A)``)."""
        return self.selection.losses

    @property
    def predicted_switch(self) -> int | None:
        """Theory's switch step on the training sample, or None."""
        return self.predicted.switch_step

    @property
    def measured_switch_a(self) -> float | None:
        """The run's ``a`` at its switch step, or None."""
        s = self.measured_switch
        return None if s is None else float(self.history.a[s])

    @property
    def predicted_switch_a(self) -> float | None:
        """Theory's ``a`` at its switch step, or None."""
        s = self.predicted_switch
        return None if s is None else float(self.predicted.a[s])

    def switch_rows(self) -> list[dict[str, object]]:
        """Rows for :func:`numerics.experiments.format_table`: the switch step and the ``a`` at
        it, predicted against measured, and each switch temperature beside the ``a`` the run
        had reached at its switch (nan where absent)."""
        nan = math.nan
        rows = [{"quantity": "switch step", "predicted": _or(self.predicted_switch, nan),
                 "± SE": self.predicted.switch_stderr,
                 "measured": _or(self.measured_switch, nan)},
                {"quantity": "a at the switch step (path)",
                 "predicted": _or(self.predicted_switch_a, nan), "± SE": nan,
                 "measured": _or(self.measured_switch_a, nan)}]
        for sw in self.selection.switches:
            # No run measures a switch temperature; beside it stands the a the run had reached
            # when its selector switched, which lies above it (the selector lags).
            rows.append({"quantity": f"switch temperature {sw.before} → {sw.after} "
                                     "(measured: the run's a at its switch)",
                         "predicted": sw.temperature, "± SE": sw.stderr,
                         "measured": _or(self.measured_switch_a, nan)})
        return rows


def _or(value: float | int | None, default: float) -> float:
    return default if value is None else float(value)


def joint_selection(*, sequences: int, steps: int, generator: torch.Generator,
                    rng: np.random.Generator, heldout: int = 2000,
                    temperatures: np.ndarray = JOINT_TEMPERATURES, groups: int = JOINT_GROUPS,
                    device: str = "cpu") -> JointSelection:
    """The joint run of the module docstring, its predicted path and the GIH losses over ``a``.

    Args:
        sequences: ``n`` of the fixed training sample (the authors': 9000), at least
            ``2 · groups``.
        steps: full-batch SGD steps, >= 1 (every step is logged).
        generator: CPU torch generator, the training sample's and the run's only randomness.
        rng: numpy generator, the only randomness of the GIH losses' fresh sample.
        heldout: sequences of that fresh sample, >= 2.
        temperatures: increasing grid of ``a`` for the GIH losses, at least two points.
        groups: parts of the training sample for the predicted switch step's standard error
            (:func:`theory.dynamics.joint_path_on_sample`; 0 for none).
        device: training device.

    Returns:
        The :class:`JointSelection`.
    """
    require(isinstance(generator, torch.Generator), "generator", "a torch.Generator",
            type(generator).__name__)
    require(isinstance(rng, np.random.Generator), "rng", "a numpy.random.Generator",
            type(rng).__name__)
    steps = as_int(steps, "steps", minimum=1)
    groups = as_int(groups, "groups", minimum=0)
    sequences = as_int(sequences, "sequences", minimum=max(2, 2 * groups), symbol="n")
    heldout = as_int(heldout, "heldout", minimum=2)
    source, seq_len = WEAK_PARENT_SOURCE, int(OFFICIAL_REPORTED["seq_len"])
    lr = float(OFFICIAL_REPORTED["lr"])
    config = TrainConfig("joint", (StageConfig("joint", PARAMS, lr, steps),), sequences, seq_len,
                         batch="full", loss=JOINT_LOSS, device=device, log_points=steps + 1)
    model = InductionHeadModel(OFFICIAL_MODEL, source.vocab_size, loss=JOINT_LOSS)
    started = time.perf_counter()
    result = train(model, source, config, generator=generator, progress=False)
    seconds = time.perf_counter() - started
    history = result.history
    require(history.steps.size == steps + 1, "history", f"a row at each of {steps + 1} steps",
            history.steps.size)
    sample = JointSample.of(result.sample.cpu().numpy(), history.sets,
                            vocab_size=source.vocab_size)
    predicted = joint_path_on_sample(sample, lr_C=lr, lr_a=lr, steps=steps, loss=JOINT_LOSS,
                                     c_init=OFFICIAL_MODEL.c_init, a_init=OFFICIAL_MODEL.a_init,
                                     groups=groups)
    _, first, switch = selector_leads(history.selector)
    trained = None if switch is None else float(history.a[switch])
    selection = selection_path(source, OFFICIAL_MODEL, seq_len, temperatures=temperatures,
                               samples=heldout, rng=rng, loss=JOINT_LOSS,
                               trained_temperature=trained)
    return JointSelection(history, predicted, None if first is None else history.sets[first],
                          switch, selection, sequences, seconds)


def joint_selection_figure(result: JointSelection, *, path: str | Path | None = None) -> Figure:
    """:func:`numerics.plots.plot_joint_selection` of a :class:`JointSelection`."""
    require(isinstance(result, JointSelection), "result", "a JointSelection",
            type(result).__name__)
    history, predicted, losses = result.history, result.predicted, result.losses
    return plot_joint_selection(
        history.sets, history.steps, history.selector, history.a,
        predicted_selector=predicted.selector, predicted_a=predicted.a,
        measured_switch=result.measured_switch, predicted_switch=predicted.switch_step,
        predicted_switch_se=predicted.switch_stderr, temperatures=losses.temperatures,
        loss_mean=losses.values, loss_se=losses.stderr,
        switches=[s.to_dict() for s in result.selection.switches], loss_name=losses.loss,
        heldout=losses.samples, sequences=result.sequences, path=path)
