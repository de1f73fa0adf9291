"""The logged trajectory of a standard-transformer run.

:class:`StandardHistory` holds the rows of the package docstring as read-only arrays and reads
the probe reports of its ``reports`` column with :mod:`numerics.training.reports`; it is a
:class:`numerics.training.history.TrainingHistory`, as TF's :class:`History` is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from numerics.training.reports import ProbedRows
from theory.errors import require

__all__ = ["StandardHistory"]


@dataclass(frozen=True, eq=False)
class StandardHistory(ProbedRows):
    """Logged trajectory of a :func:`numerics.training.standard.loop.train_standard` run (rows
    in the package docstring).

    Attributes:
        steps: (T,) int64 updates done.
        lr: (T,) float64 learning rate of the last update.
        train_loss: (T,) float64 objective on the step's batch (NaN at step 0).
        eval_loss: (T,) float64 all-position loss on the evaluation batch.
        eval_last_loss: (T,) float64 last-position loss on the evaluation batch.
        reports: (T,) the callback's JSON dicts, or None where there was no callback.
    """

    steps: np.ndarray
    lr: np.ndarray
    train_loss: np.ndarray
    eval_loss: np.ndarray
    eval_last_loss: np.ndarray
    reports: tuple[dict[str, Any] | None, ...]

    def __post_init__(self) -> None:
        T = len(self.reports)
        for name, dtype in (("steps", np.int64), ("lr", np.float64), ("train_loss", np.float64),
                            ("eval_loss", np.float64), ("eval_last_loss", np.float64)):
            arr = np.array(getattr(self, name), dtype=dtype).reshape(-1)
            require(arr.shape == (T,), f"history {name}", f"shape ({T},) like reports",
                    arr.shape)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "reports", tuple(self.reports))

    def __len__(self) -> int:
        return len(self.reports)

    def objective(self) -> np.ndarray:
        """(T,) the objective logged at each row on the fixed evaluation batch (``eval_loss``)."""
        return self.eval_loss

    def summary(self) -> dict[str, Any]:
        """What the run reached at its last row: the evaluation losses and the step."""
        require(len(self) >= 1, "history", "a history with at least one logged row", len(self))
        return {"eval_last_loss": float(self.eval_last_loss[-1]),
                "eval_loss": float(self.eval_loss[-1]), "steps": int(self.steps[-1])}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN as None); :meth:`from_dict` inverts it exactly."""
        def floats(arr: np.ndarray) -> list[float | None]:
            return [None if math.isnan(v) else float(v) for v in arr.tolist()]
        return {"steps": self.steps.tolist(), "lr": floats(self.lr),
                "train_loss": floats(self.train_loss), "eval_loss": floats(self.eval_loss),
                "eval_last_loss": floats(self.eval_last_loss), "reports": list(self.reports)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StandardHistory:
        """Inverse of :meth:`to_dict`; raises :class:`InductionHeadsError` on missing keys."""
        keys = ("steps", "lr", "train_loss", "eval_loss", "eval_last_loss", "reports")
        require(isinstance(data, dict) and set(keys) <= set(data), "standard history",
                f"a dict with keys {keys}", sorted(data) if isinstance(data, dict) else data)
        nan = lambda xs: [math.nan if x is None else x for x in xs]  # noqa: E731
        return cls(steps=data["steps"], lr=nan(data["lr"]), train_loss=nan(data["train_loss"]),
                   eval_loss=nan(data["eval_loss"]), eval_last_loss=nan(data["eval_last_loss"]),
                   reports=tuple(data["reports"]))
