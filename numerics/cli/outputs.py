"""The result files of ``python -m numerics train``, ``verify`` and ``reproduce``: one run per
``--out`` DIR.

A directory holding any of :data:`RESULT_FILES` (every command's result files, a sweep's
included) holds a run; ``train``, ``verify`` and ``reproduce`` refuse to write into it (exit
status 2, naming the files found) unless ``--force`` replaces that run, or ``train --resume
DIR/checkpoint.pt --out DIR`` continues it; and refuse a directory another command is writing (its lock).
:class:`numerics.run_directory.RunDirectory` does the locking, checking, replacing and rolling
back.
"""

from __future__ import annotations

from pathlib import Path

from numerics.run_directory import ALL_RESULT_NAMES, RESULT_NAMES, RunDirectory

__all__ = ["CHECKPOINT_NAME", "TRAIN_FILES", "REPORT_FILES", "REPRODUCE_FILES", "RESULT_FILES",
           "out_directory"]

CHECKPOINT_NAME = "checkpoint.pt"
"""The checkpoint ``train`` writes into DIR."""

TRAIN_FILES = RESULT_NAMES["train"]
"""What ``train`` writes."""

REPORT_FILES = RESULT_NAMES["verify"]
"""What ``verify`` can write (:func:`numerics.verify.write_report`: the report, its config and
:data:`numerics.plots.ALL_FIGURE_NAMES`, the figures of every model kind)."""

REPRODUCE_FILES = RESULT_NAMES["reproduce"]
"""What ``reproduce`` writes: ``train``'s files, ``reproduction.json`` and its figures."""

RESULT_FILES = ALL_RESULT_NAMES
"""Every result file of every command."""


def out_directory(path: Path, names: tuple[str, ...], *, force: bool,
                  continuing: bool = False, resumable: bool = False) -> RunDirectory:
    """The ``--out`` directory of the command writing ``names`` (:data:`TRAIN_FILES` or
    :data:`REPORT_FILES`), checked now (raises ``InductionHeadsError``; module docstring).

    ``resumable``: on Ctrl-C keep the run's files when its checkpoint exists (``train``).
    """
    return RunDirectory(path, names, flag="--out", force=force, continuing=continuing,
                        keep_on_interrupt=CHECKPOINT_NAME if resumable else None)
