"""A training run's logged trajectory: :class:`History` and its rows, :class:`HistoryRecord`.

``numerics.training.loop`` logs the model at log-spaced steps of every stage (and at each
stage's last step), plus the initial state at global step 0 (stage name ``"init"``). Row ``t``
holds, after ``steps[t]`` parameter updates in total:

    steps     (T,)          global step (updates done so far, all stages)
    stages    (T,)          name of the stage that made the update (``"init"`` for step 0)
    loss      (T,)          training objective at the logged parameters (``numerics.training.loop``)
    selector  (T, |𝒮|)     c̃_S = C_S² / Σ_T C_T², in ``sets`` order
    copier    (T, H, M)     σ_h(i) = softmax(w_h)_i, head h's attention over offsets i = 1..M
    a         (T,)          classifier temperature
    reports   (T,)          what the run's ``callback(model, step)`` returned at that row (a JSON
                            dict), or None (no callback)

``copier`` is the attention the copier used at interior positions (all M offsets valid): for the
simplified model its σ_h, the same at every position; for the full model (docs/theory.md §7),
whose attention depends on the tokens, σ_h(l, ·) averaged over the fixed sample's sequences and
interior positions (without the mass on offset 0), so in both it is the weight that head h's copy
puts on ``x_{l-i}``.

When the callback probes the model (``numerics.probe(...).to_dict()``), :meth:`History.distances`,
:meth:`History.effective_sets` and :meth:`History.settled_step` read its reports
(:mod:`numerics.training.reports`).

:mod:`numerics.training.checkpoint` stores it in checkpoints (and re-exports both names).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch

from numerics.io import from_json_array
from numerics.training.reports import ProbedRows
from theory.errors import InductionHeadsError, require
from theory.notation import head_set_label

__all__ = ["HistoryRecord", "History", "TrainingHistory", "TrainResult"]


@runtime_checkable
class TrainingHistory(Protocol):
    """What every model kind's logged trajectory offers (:class:`History` for TF and its full
    variant, :class:`numerics.training.standard.StandardHistory` for the standard transformer).

    ``steps`` (T,) and ``reports`` (T,) are aligned rows; the three readers interpret the probe
    reports a ``callback`` left in ``reports`` (:mod:`numerics.training.reports`).
    """

    steps: np.ndarray
    reports: tuple[dict[str, Any] | None, ...]

    def __len__(self) -> int: ...

    def effective_sets(self) -> tuple[tuple[int, ...] | None, ...]: ...

    def distances(self, name: str) -> np.ndarray: ...

    def settled_step(self) -> int | None: ...

    def objective(self) -> np.ndarray: ...

    def summary(self) -> dict[str, Any]: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True, eq=False)
class TrainResult:
    """What every trainer returns (:func:`numerics.training.train` and
    :func:`numerics.training.resume`, whatever the model kind).

    Attributes:
        model: the trained model (the object passed to ``train``, or the restored one after
            ``resume``).
        history: the logged trajectory from the initial state on (a :class:`TrainingHistory`).
        config: the run's configuration (a :class:`numerics.training.config.TrainConfig`, or a
            :class:`numerics.training.standard.StandardTrainConfig`).
        sample: int64 ``(n, L+1)`` on the CPU: the fixed sample the logged loss is computed on
            (the training sample of a full-batch run; the fixed evaluation sample of a run on
            fresh sequences).
    """

    model: torch.nn.Module
    history: TrainingHistory
    config: Any
    sample: torch.Tensor


def _count_or_type(value: Any) -> Any:
    return f"{len(value)} entries" if isinstance(value, (tuple, list)) else type(value).__name__


_FLOAT_KEYS = ("loss", "selector", "copier", "a")
"""The float arrays of :meth:`History.to_dict`."""


class HistoryRecord(NamedTuple):
    """One logged row of a :class:`History` (shapes as in the module docstring, without T)."""

    step: int
    stage: str
    loss: float
    selector: np.ndarray  # (|𝒮|,)
    copier: np.ndarray    # (H, M)
    a: float
    report: dict[str, Any] | None = None


@dataclass(frozen=True, eq=False)
class History(ProbedRows):
    """Logged training trajectory; arrays are float64 / int64 and read-only.

    Attributes:
        sets: the selector's head sets (``selector`` columns), in ``head_sets`` order.
        steps: (T,) global steps.
        stages: (T,) stage names (``"init"`` for the initial state).
        loss: (T,) training objective.
        selector: (T, |𝒮|) c̃.
        copier: (T, H, M) copier attention over offsets.
        a: (T,) classifier temperature.
        reports: (T,) the callback's JSON dicts, None where there was none (default: all None).
    """

    sets: tuple[tuple[int, ...], ...]
    steps: np.ndarray
    stages: tuple[str, ...]
    loss: np.ndarray
    selector: np.ndarray
    copier: np.ndarray
    a: np.ndarray
    reports: tuple[dict[str, Any] | None, ...] | None = None

    def __post_init__(self) -> None:
        T = len(self.stages)
        reports = (None,) * T if self.reports is None else self.reports
        require(isinstance(reports, (tuple, list)) and len(reports) == T
                and all(r is None or isinstance(r, Mapping) for r in reports),
                "history reports", f"a sequence of T = {T} JSON dicts or None",
                _count_or_type(reports))
        object.__setattr__(self, "reports", tuple(reports))
        sets = tuple(tuple(int(h) for h in s) for s in self.sets)
        object.__setattr__(self, "sets", sets)
        object.__setattr__(self, "stages", tuple(str(s) for s in self.stages))
        fields = {"steps": (np.int64, (T,)), "loss": (np.float64, (T,)),
                  "selector": (np.float64, (T, len(sets))), "a": (np.float64, (T,))}
        for name, (dtype, shape) in fields.items():
            arr = np.array(getattr(self, name), dtype=dtype).reshape(shape)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        copier = np.array(self.copier, dtype=np.float64)
        if T == 0:
            copier = copier.reshape((0,) + copier.shape[1:] if copier.ndim == 3 else (0, 0, 0))
        require(copier.ndim == 3 and copier.shape[0] == T, "history copier",
                f"an array of shape (T={T}, H, M)", copier.shape)
        copier.setflags(write=False)
        object.__setattr__(self, "copier", copier)

    def __len__(self) -> int:
        return len(self.stages)

    @classmethod
    def from_records(cls, sets: Sequence[Sequence[int]], records: Sequence[HistoryRecord],
                     *, heads: int, window: int) -> History:
        """Stack records into a :class:`History` (``heads``/``window`` shape an empty one)."""
        if not records:
            return cls(tuple(tuple(s) for s in sets), np.zeros(0), (), np.zeros(0),
                       np.zeros((0, len(sets))), np.zeros((0, heads, window)), np.zeros(0))
        return cls(tuple(tuple(s) for s in sets), np.array([r.step for r in records]),
                   tuple(r.stage for r in records), np.array([r.loss for r in records]),
                   np.stack([r.selector for r in records]), np.stack([r.copier for r in records]),
                   np.array([r.a for r in records]), tuple(r.report for r in records))

    def records(self) -> list[HistoryRecord]:
        """The rows as :class:`HistoryRecord` (inverse of :meth:`from_records`)."""
        return [HistoryRecord(int(self.steps[t]), self.stages[t], float(self.loss[t]),
                              self.selector[t].copy(), self.copier[t].copy(), float(self.a[t]),
                              self.reports[t])
                for t in range(len(self))]

    def stage(self, name: str) -> History:
        """The rows logged by stage ``name`` (``"init"`` for the initial state)."""
        require(name in self.stages, "stage", f"one of {sorted(set(self.stages))}", name)
        keep = np.array([s == name for s in self.stages])
        return History(self.sets, self.steps[keep], tuple(np.array(self.stages)[keep]),
                       self.loss[keep], self.selector[keep], self.copier[keep], self.a[keep],
                       tuple(r for r, k in zip(self.reports, keep) if k))

    def objective(self) -> np.ndarray:
        """(T,) the training objective logged at each row (``loss``)."""
        return self.loss

    def summary(self) -> dict[str, Any]:
        """What the run learned, read off the last row (:func:`numerics.training.
        learned_summary`)."""
        require(len(self) >= 1, "history", "a History with at least one logged row", len(self))
        selector, copier = self.selector[-1], self.copier[-1]          # (|𝒮|,), (H, M)
        argmax = copier.argmax(axis=1)                                 # (H,)
        heads = range(1, copier.shape[0] + 1)
        return {
            "selected_set": list(self.sets[int(np.argmax(selector))]),
            "selector_weights": {head_set_label(s): float(w)
                                 for s, w in zip(self.sets, selector)},
            "copier_mass": {f"head {h}": float(copier[h - 1, h - 1]) for h in heads},
            "copier_argmax": {f"head {h}": [int(argmax[h - 1]) + 1,
                                            float(copier[h - 1, argmax[h - 1]])]
                              for h in heads},
            "copier_attention": copier.tolist(),
            "temperature": float(self.a[-1]),
            "loss_initial": float(self.loss[0]),
            "loss": float(self.loss[-1]),
            "steps": int(self.steps[-1]),
        }

    def to_dict(self) -> dict[str, Any]:
        """Dict of plain lists (exact: float64 values become Python floats; JSON-ready through
        :func:`numerics.io.to_json`)."""
        return {"sets": [list(s) for s in self.sets], "steps": self.steps.tolist(),
                "stages": list(self.stages), "loss": self.loss.tolist(),
                "selector": self.selector.tolist(), "copier": self.copier.tolist(),
                "a": self.a.tolist(), "reports": list(self.reports)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """Inverse of :meth:`to_dict`; raises :class:`InductionHeadsError` on missing keys.

        ``reports`` is optional (a dict without it has no reports: all None). Float entries
        read as :func:`numerics.io.to_json` writes them (``"inf"``, ``"nan"``) or as numbers.
        """
        keys = ("sets", "steps", "stages", "loss", "selector", "copier", "a")
        require(isinstance(data, dict) and set(keys) <= set(data), "history",
                f"a dict with keys {keys}", sorted(data) if isinstance(data, dict) else data)
        values = {k: from_json_array(data[k], f"history {k}") if k in _FLOAT_KEYS else data[k]
                  for k in keys}
        try:
            return cls(**values, reports=data.get("reports"))
        except (TypeError, ValueError) as err:
            raise InductionHeadsError(f"history: expected arrays of consistent shapes, "
                                      f"received {err}") from None
