"""The copier's parameters over training, logged at the history's rows through its callback.

The history logs the copier's attention, ``c̃`` and ``a`` at every logged row; the copier's own
parameters (for the full model: ``w``, the content and value matrices, the LayerNorm gain and
bias; for TF: ``w``) are logged beside them by :func:`copier_parameter_callback`, the training
callback (:mod:`numerics.training.loop`) that returns them under :data:`PARAMETERS_KEY`. They
are the parameters of the model's ``"w"`` group (``parameter_groups()["w"]``), named as
``model.named_parameters()`` names them, so whatever a model kind calls its copier's parameters
is logged. A callback does not touch the training generator, so a run logged this way is the
run without it, and its checkpoints keep the rows (``history.reports``) and resume as any other.

:func:`parameter_trajectories` reads them back from a history; :func:`run_parameters` from a
run directory (``history.json`` of ``train`` or ``reproduce``; without logged rows, the last
checkpoint's parameters at its step).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from numerics.training.history import History
from numerics.training.kinds import load_checkpoint, load_model
from theory.errors import InductionHeadsError, require

__all__ = ["PARAMETERS_KEY", "copier_parameters", "copier_parameter_callback",
           "parameter_trajectories", "run_parameters"]

PARAMETERS_KEY = "copier_parameters"
"""The key of a history report holding the copier's parameters (name -> nested lists)."""


def copier_parameters(model: torch.nn.Module) -> dict[str, list[Any]]:
    """The parameters of ``model``'s ``"w"`` group by name, as nested lists of floats.

    Args:
        model: a model with ``parameter_groups()`` (:class:`numerics.models.full.TrainableModel`).
    """
    copier = {id(t) for t in model.parameter_groups()["w"]}
    return {name: t.detach().double().cpu().tolist()
            for name, t in model.named_parameters() if id(t) in copier}


def copier_parameter_callback(model: torch.nn.Module, step: int) -> dict[str, Any]:
    """A training callback (``(model, step) -> report``) logging :func:`copier_parameters`."""
    return {PARAMETERS_KEY: copier_parameters(model)}


def parameter_trajectories(history: History) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The logged copier parameters of ``history``: ``(steps (T',), {name: (T', *shape)})``.

    Only the rows whose report holds :data:`PARAMETERS_KEY` count (T' of the T rows); a history
    without any gives ``(empty, {})``.
    """
    rows = [(int(step), report[PARAMETERS_KEY]) for step, report
            in zip(history.steps, history.reports)
            if isinstance(report, dict) and PARAMETERS_KEY in report]
    if not rows:
        return np.zeros(0, dtype=np.int64), {}
    names = list(rows[0][1])
    require(all(list(r) == names for _, r in rows), "history reports",
            f"the same copier parameters {names} at every logged row",
            [list(r) for _, r in rows if list(r) != names][:1])
    steps = np.array([s for s, _ in rows], dtype=np.int64)
    return steps, {name: np.array([r[name] for _, r in rows], dtype=np.float64)
                   for name in names}


def run_parameters(directory: str | Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The copier parameters of the run in ``directory`` (``train`` or ``reproduce``).

    From ``history.json``'s rows when they were logged (:func:`copier_parameter_callback`),
    else the parameters of ``checkpoint.pt`` at its step (one row).

    Raises:
        InductionHeadsError: on an unreadable history or checkpoint, or a directory holding
            neither logged rows nor a checkpoint.
    """
    directory = Path(directory)
    history_path, checkpoint_path = directory / "history.json", directory / "checkpoint.pt"
    if history_path.is_file():
        try:
            data = json.loads(history_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InductionHeadsError(f"run directory: expected a readable history.json, "
                                      f"received {str(history_path)!r} ({err})") from None
        steps, trajectories = parameter_trajectories(History.from_dict(data))
        if trajectories:
            return steps, trajectories
    require(checkpoint_path.is_file(), "run directory",
            "a history.json with logged copier parameters or a checkpoint.pt", str(directory))
    step = int(load_checkpoint(checkpoint_path)["step"])
    params = copier_parameters(load_model(checkpoint_path))
    return (np.array([step], dtype=np.int64),
            {name: np.array([value], dtype=np.float64) for name, value in params.items()})
