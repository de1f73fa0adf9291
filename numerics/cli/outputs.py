"""The result files of ``python -m numerics train`` and ``verify``: one run per ``--out`` DIR.

A directory holding any of :data:`RESULT_FILES` holds a run; ``train`` and ``verify`` refuse to
write into it (exit status 2, naming the files found) unless ``--force`` replaces that run, or
``train --resume DIR/checkpoint.pt --out DIR`` continues it. :class:`numerics.io.RunDirectory`
does the checking, replacing and rolling back.
"""

from __future__ import annotations

from pathlib import Path

from numerics.io import RunDirectory

__all__ = ["CHECKPOINT_NAME", "TRAIN_FILES", "REPORT_FILES", "RESULT_FILES", "out_directory"]

CHECKPOINT_NAME = "checkpoint.pt"
"""The checkpoint ``train`` writes into DIR."""

TRAIN_FILES = ("config.json", "history.json", "summary.json", CHECKPOINT_NAME)
"""What ``train`` writes."""

REPORT_FILES = ("report.json", "config.json", "selector.png", "copier.png", "temperature.png",
                "losses.png", "distances.png", "first_layer.png")
"""What ``verify`` can write (:func:`numerics.verify.write_report`: the report, its config and
:data:`numerics.plots.ALL_FIGURE_NAMES`, the figures of every model kind)."""

RESULT_FILES = tuple(dict.fromkeys(TRAIN_FILES + REPORT_FILES))
"""Every result file of either command."""


def out_directory(path: Path, *, force: bool, continuing: bool = False,
                  resumable: bool = False) -> RunDirectory:
    """The ``--out`` directory, checked now (raises ``InductionHeadsError``; module docstring).

    ``resumable``: on Ctrl-C keep the run's files when its checkpoint exists (``train``).
    """
    return RunDirectory(path, RESULT_FILES, flag="--out", force=force, continuing=continuing,
                        keep_on_interrupt=CHECKPOINT_NAME if resumable else None)
