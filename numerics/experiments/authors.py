"""The numbers of the authors' saved trajectories, kept as constants (their files are not shipped).

The authors' repository (``RPE/results_paper/NGram/``) saves each paper run as an ``.npz`` file
whose name spells the run's settings. Its ``C_list`` (T+1, 7) holds the selector's ``C`` after
every full-batch step (row 0: the initialisation), its columns following ``alphas``, one
component string over ``(X, head 1, head 2, head 3)`` per column: ``'0110'`` is the head set
(1, 2), ``'0011'`` is (2, 3); ``c̃ = C² / ΣC²`` over those 7 columns. ``a_list`` (T+1,) holds
``a`` the same way. ``train_loss_list`` (T,) holds, at entry t, the loss at the parameters after
t steps (the loss of the batch the step t+1 is taken on), summed over batches and divided by
n_train = 9000; one full batch, so times 9000 it is the mean ``official_ce`` loss.

This module records what :mod:`numerics.experiments.recipes` compares a run with: the file
names, and for the main-figure run ``a``, the loss and ``c̃(1, 2)`` at the steps of
:data:`MAIN_FIGURE_STEPS`, rounded to 4 decimals. tests/numerics/experiments/test_recipes.py
reads the files, where a copy exists, and checks every constant here against them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from theory.errors import require

__all__ = ["MAIN_FIGURE_FILE", "FULL_FILES", "AuthorsTrajectory", "MAIN_FIGURE_STEPS",
           "MAIN_FIGURE_TRAJECTORY", "TABLE_ROUNDING", "A_INTERPOLATION_REL", "LOSS_INTERPOLATION"]

MAIN_FIGURE_FILE = ("CWa_parent2_n10000_L100_S3_H3_1.0_optsgd_w+3.0_w-0.1_D2_c_alpha_init0.01_"
                    "a_init0.01_alpha0.1_n-epochs[50000].npz")
"""The simplified model's main-figure run: joint C, W, a, lr 1, 50,000 steps."""

_FULL = ("Full_parent2_n10000_L100_S3_H3_lr{lr}_optsgd_w+{w}_w-0.01_D2_alpha0.1_"
         "n-epochs{steps}_[True, True]")
FULL_FILES = {
    "w+1 lr0.001 10000": _FULL.format(lr=0.001, w=1.0, steps=10000) + ".npz",
    "w+1 lr0.001 50000 a": _FULL.format(lr=0.001, w=1.0, steps=50000)
                           + "_seed2024_2024-08-26-10-46-15.npz",
    "w+1 lr0.001 50000 b": _FULL.format(lr=0.001, w=1.0, steps=50000)
                           + "_seed2024_2024-08-26-20-12-02.npz",
    "w+3 lr0.001 50000": _FULL.format(lr=0.001, w=3.0, steps=50000)
                         + "_seed2024_2024-08-26-01-22-59.npz",
    "w+3 lr0.01 10000": _FULL.format(lr=0.01, w=3.0, steps=10000)
                        + "_seed2024_2024-08-26-23-56-57.npz",
}
"""The full model's appendix runs (all parameters, joint SGD, ``w_-`` = 0.01), by a short key.
``"w+1 lr0.001 50000 b"`` and ``"w+3 lr0.01 10000"`` were saved part way (20,001 and 2,501 of
their steps: the authors' loop saves every 500 steps)."""

TABLE_ROUNDING = 5e-5
"""Half a unit of the tables' 4th decimal: their largest difference from the files."""

A_INTERPOLATION_REL = 0.01
"""Largest relative error of :meth:`AuthorsTrajectory.at` for ``a`` between table steps, over
every step 1..50,000 of the main-figure file (0.98 %, near step 12; the test checks it)."""

LOSS_INTERPOLATION = 0.015
"""Largest error (nats) of :meth:`AuthorsTrajectory.at` for the loss between table steps over
every step 1..50,000 (0.0132 near step 12, where the loss falls fastest; the test checks it)."""


@dataclass(frozen=True)
class AuthorsTrajectory:
    """One quantity-per-step table of an authors' run (rounded to 4 decimals).

    Attributes:
        source_file: the ``.npz`` file the values come from.
        steps: (T,) strictly increasing steps, 0 first.
        a: (T,) ``a`` after that many steps.
        loss: (T,) the mean ``official_ce`` training loss at those parameters (the file's
            ``train_loss_list`` times 9000; at the last step, which the file does not log, its
            last entry, one step earlier).
        c_tilde_12: (T,) ``c̃(1, 2)``.
    """

    source_file: str
    steps: tuple[int, ...]
    a: tuple[float, ...]
    loss: tuple[float, ...]
    c_tilde_12: tuple[float, ...]

    def at(self, quantity: str, step: int) -> tuple[float, bool]:
        """``(value, exact)`` of ``quantity`` (``"a"``, ``"loss"``, ``"c_tilde_12"``) at ``step``.

        ``exact``: ``step`` is a table step. Between table steps the value is interpolated
        linearly in ``log(step)`` (``a`` grows like a logarithm of the step count), within
        :data:`A_INTERPOLATION_REL` / :data:`LOSS_INTERPOLATION` of the file.

        Raises:
            InductionHeadsError: on another quantity or a step outside ``0..steps[-1]``.
        """
        require(quantity in ("a", "loss", "c_tilde_12"), "quantity",
                "one of 'a', 'loss', 'c_tilde_12'", quantity)
        require(isinstance(step, int) and 0 <= step <= self.steps[-1], "step",
                f"an integer in 0..{self.steps[-1]} (the authors' run)", step)
        values = getattr(self, quantity)
        if step in self.steps:
            return float(values[self.steps.index(step)]), True
        logs = np.log(np.array(self.steps[1:], dtype=np.float64))
        return float(np.interp(math.log(step), logs, np.array(values[1:]))), False


MAIN_FIGURE_STEPS = tuple(range(13)) + (
    15, 20, 30, 50, 70, 100, 150, 200, 300, 500, 700, 1000, 1500, 2000, 3000, 5000, 7000, 10000,
    15000, 20000, 30000, 50000)
"""The steps of :data:`MAIN_FIGURE_TRAJECTORY`: every step to 12 (c̃(1, 2) passes 0.99 at
step 9), then about three a decade."""

MAIN_FIGURE_TRAJECTORY = AuthorsTrajectory(
    source_file=MAIN_FIGURE_FILE, steps=MAIN_FIGURE_STEPS,
    a=(0.01, 0.0641, 0.128, 0.1735, 0.2321, 0.308, 0.3854, 0.4636, 0.5425, 0.6217, 0.7011,
       0.7804, 0.8588, 1.0684, 1.4457, 2.111, 3.0617, 3.6739, 4.2781, 4.9061, 5.3179, 5.8588,
       6.4888, 6.8806, 7.2811, 7.7227, 8.0294, 8.4548, 8.9825, 9.3268, 9.6901, 10.1023,
       10.3954, 10.8117, 11.3512),
    loss=(0.9031, 0.8996, 0.8978, 0.8936, 0.8862, 0.8802, 0.874, 0.8677, 0.8613, 0.855, 0.8487,
          0.8429, 0.8407, 0.8198, 0.7912, 0.7469, 0.7007, 0.6815, 0.669, 0.6608, 0.6572,
          0.6542, 0.6521, 0.6513, 0.6507, 0.6503, 0.6501, 0.6499, 0.6498, 0.6497, 0.6497,
          0.6497, 0.6496, 0.6496, 0.6496),
    c_tilde_12=(0.1429, 0.2631, 0.45, 0.6366, 0.8449, 0.8894, 0.9277, 0.9592, 0.9804, 0.9919,
                0.9959, 0.9896, 0.9319, 0.998) + (1.0,) * 21)
"""The main-figure run (:data:`MAIN_FIGURE_FILE`) at :data:`MAIN_FIGURE_STEPS`."""
