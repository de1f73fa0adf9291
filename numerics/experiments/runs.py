"""The training runs the notebooks launch, each one call returning what they show.

- Trained selection over the mixture family: :func:`trained_selection_map` (a :class:`TrainedMap`),
  :func:`selection_agreement` (predicted versus trained, over decidable points only) and
  :func:`selection_map_figure` (predicted versus trained, undecidable points hatched).
- The official main-figure run (docs/theory.md §4), shortened, with its reduced dynamics: :func:`official_run`
  (an :class:`OfficialRun`).

Sizing and presentation helpers are in :mod:`numerics.experiments.support`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from numerics.data import sample_sequences
from numerics.experiments.families import (
    OFFICIAL_MODEL,
    OFFICIAL_NORM_OFFSET,
    OFFICIAL_REPORTED,
    SelectionMap,
    mixture_family,
)
from numerics.experiments.support import torch_generator
from numerics.models.simplified import InductionHeadModel
from numerics.training import PARAMS, History, StageConfig, TrainConfig, default_config, train
from numerics.verify.evaluation import heldout_losses
from theory.dynamics.official import official_temperature_trajectory
from theory.errors import require
from theory.limit.prediction import DECIDABLE_Z
from theory.sources.spec import PAPER_SOURCE, ModelSpec

__all__ = ["TrainedMap", "trained_selection_map", "SelectionAgreement", "selection_agreement",
           "selection_map_figure", "OfficialRun", "official_run"]

_ODE_EXTRA_POINTS = 25
"""Log-spaced steps at which the official run's reduced dynamics are reported beyond training."""


@dataclass(frozen=True, eq=False)
class TrainedMap:
    """Final ``c̃`` ``(n_w, n_a, |𝒮|)`` of stage-wise training on a ``(w, α)`` grid, with the
    grid ``weights`` ``(n_w,)``, ``alphas`` ``(n_a,)``, the ``sets`` and the total ``seconds``."""

    weights: np.ndarray
    alphas: np.ndarray
    sets: tuple[tuple[int, ...], ...]
    selector: np.ndarray
    seconds: float

    @property
    def selected_index(self) -> np.ndarray:
        """``(n_w, n_a)`` index into ``sets`` of the set with the largest final ``c̃``."""
        return np.argmax(self.selector, axis=-1)

    def selected_set(self, i: int, j: int) -> tuple[int, ...]:
        """The trained choice at grid point ``(weights[i], alphas[j])``."""
        return self.sets[int(self.selected_index[i, j])]


def trained_selection_map(weights: Sequence[float], alphas: Sequence[float], *,
                          spec: ModelSpec, sequences: int, seq_len: int, seed: int,
                          vocab_size: int = 3) -> TrainedMap:
    """Train ``spec`` stage-wise (default schedule, CPU, n sequences of length L) on
    :func:`numerics.experiments.mixture_family` at every ``(w, α)``; grid point ``k`` (row-major)
    uses the CPU generator seeded ``seed + k``."""
    started = time.perf_counter()
    shape = (len(weights), len(alphas), len(spec.sets))
    selector = np.zeros(shape)  # (n_w, n_a, |𝒮|)
    config = default_config(sequences=sequences, seq_len=seq_len, device="cpu")
    for k, (i, j) in enumerate(np.ndindex(shape[:2])):
        source = mixture_family(weights[i], alphas[j], vocab_size=vocab_size)
        result = train(InductionHeadModel(spec, vocab_size), source, config,
                       generator=torch_generator(seed + k), progress=False)
        selector[i, j] = result.history.selector[-1]
    return TrainedMap(np.asarray(weights, float), np.asarray(alphas, float), spec.sets, selector,
                      time.perf_counter() - started)


@dataclass(frozen=True)
class SelectionAgreement:
    """Predicted versus trained choice over a grid, counted over decidable points only.

    Each point is ``(w, α, predicted set, trained set)``.

    Attributes:
        agree: decidable points where the trained choice is the predicted set.
        decided: decidable points (``agree`` of these).
        disagreements: the decidable points where they differ.
        undecidable: the points the decidability rule leaves open, not counted either way.
    """

    agree: int
    decided: int
    disagreements: tuple[tuple[float, float, tuple[int, ...], tuple[int, ...]], ...]
    undecidable: tuple[tuple[float, float, tuple[int, ...], tuple[int, ...]], ...]

    @property
    def undecidable_count(self) -> int:
        """How many points are undecidable."""
        return len(self.undecidable)


def _require_same_grid(predicted: SelectionMap, trained: TrainedMap) -> None:
    require(isinstance(predicted, SelectionMap) and isinstance(trained, TrainedMap), "maps",
            "a SelectionMap and a TrainedMap", (type(predicted).__name__, type(trained).__name__))
    require(np.array_equal(predicted.weights, trained.weights)
            and np.array_equal(predicted.alphas, trained.alphas), "grids",
            "the same (w, α) grid for the predicted and the trained map",
            ((predicted.weights.tolist(), predicted.alphas.tolist()),
             (trained.weights.tolist(), trained.alphas.tolist())))


def selection_agreement(predicted: SelectionMap, trained: TrainedMap) -> SelectionAgreement:
    """Count where training chose the predicted set, over the predicted map's decidable points.

    Undecidable points (:attr:`SelectionMap.decidable` false) are listed apart, not counted:
    the rule does not say which set wins there. Points are visited in row-major order.

    Raises:
        InductionHeadsError: unless both maps cover the same ``(w, α)`` grid.
    """
    _require_same_grid(predicted, trained)
    decided, undecided = [], []
    decidable = predicted.decidable  # (n_w, n_a)
    for i, j in np.ndindex(decidable.shape):
        point = (float(predicted.weights[i]), float(predicted.alphas[j]),
                 predicted.selected_set(i, j), trained.selected_set(i, j))
        (decided if decidable[i, j] else undecided).append(point)
    return SelectionAgreement(sum(p[2] == p[3] for p in decided), len(decided),
                              tuple(p for p in decided if p[2] != p[3]), tuple(undecided))


def _undecidable_label(predicted: SelectionMap) -> str:
    """The legend text for a hatched cell of :func:`selection_map_figure`."""
    noise = "" if predicted.margin_train_noise is None else \
        f" or < {DECIDABLE_Z:g} training-noise units"
    return f"hatched: undecidable (margin < {DECIDABLE_Z:g} SE{noise})"


def selection_map_figure(predicted: SelectionMap, trained: TrainedMap, *,
                         compare: tuple[tuple[int, ...], tuple[int, ...]] = ((1, 2), (1,))
                         ) -> Figure:
    """Heatmap of the predicted criterion difference ``value(A) - value(B)`` (the map's kind).

    Every cell is labelled with the predicted set and the trained choice (bold red where they
    differ at a decidable point); undecidable cells (:attr:`SelectionMap.decidable` false) are
    greyed and hatched, with a legend entry saying so.

    Args:
        predicted: the predicted map (colour, predicted set, decidability).
        trained: the trained map on the same grid.
        compare: the sets ``(A, B)`` whose difference is coloured.

    Raises:
        InductionHeadsError: unless both maps cover the same ``(w, α)`` grid.
    """
    _require_same_grid(predicted, trained)
    a, b = (predicted.sets.index(tuple(s)) for s in compare)
    diff = predicted.criterion[..., a] - predicted.criterion[..., b]  # (n_w, n_a)
    bound = float(np.max(np.abs(diff))) or 1.0
    fig = Figure(figsize=(max(5.5, 1.6 + 1.5 * len(predicted.alphas)),
                          max(3.4, 1.6 + 0.8 * len(predicted.weights))), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(diff, cmap="coolwarm", vmin=-bound, vmax=bound, aspect="auto",
                      origin="lower")
    hatch = {"facecolor": (0.5, 0.5, 0.5, 0.55), "edgecolor": "0.25", "hatch": "///", "lw": 0}
    decidable = predicted.decidable  # (n_w, n_a)
    for i, j in np.ndindex(diff.shape):
        pred, got = predicted.selected_set(i, j), trained.selected_set(i, j)
        is_open = not decidable[i, j]
        if is_open:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, **hatch))
        wrong = pred != got and not is_open
        ax.text(j, i, f"predicted {pred}\ntrained {got}", ha="center", va="center", fontsize=7,
                color="darkred" if wrong else "k", weight="bold" if wrong else "normal",
                bbox={"facecolor": "white", "alpha": 0.7, "lw": 0, "pad": 1} if is_open else None)
    ax.set_xticks(range(len(predicted.alphas)), [f"{x:g}" for x in predicted.alphas])
    ax.set_yticks(range(len(predicted.weights)), [f"{x:g}" for x in predicted.weights])
    ax.set(xlabel="α (Dirichlet concentration)", ylabel="w (weight of the {1,2} component)",
           title=f"colour: {predicted.kind}{compare[0]} - {predicted.kind}{compare[1]}\n"
                 "text: predicted set and trained choice (bold red: they differ where "
                 "decidable)")
    ax.title.set_fontsize(9)
    fig.legend(handles=[Patch(**hatch, label=_undecidable_label(predicted))],
               loc="outside lower center", fontsize=8, frameon=False)
    fig.colorbar(image, ax=ax, shrink=0.85)
    return fig


@dataclass(frozen=True, eq=False)
class OfficialRun:
    """The official main-figure run, shortened (:func:`official_run`).

    Attributes:
        history: the logged trajectory (every step at first, then log-spaced).
        model: the trained model.
        steps_to_099: first logged step with ``c̃(1, 2) >= 0.99`` (None if never).
        ode_steps: ``(T,)`` the logged steps, then log-spaced steps up to the reported run's
            step count (the last entry).
        ode_a: ``(T,)`` ``a`` of the reduced dynamics (exact copier, ``c̃`` one-hot on (1, 2),
            official loss, lr 1) from ``a_init`` at those steps.
        heldout: ``{predictor: loss}`` on fresh sequences (:func:`numerics.verify.heldout_losses`, nats).
        seconds: wall-clock time of training.
    """

    history: History
    model: InductionHeadModel
    steps_to_099: int | None
    ode_steps: np.ndarray
    ode_a: np.ndarray
    heldout: dict[str, float]
    seconds: float

    def reduced_a(self, step: float) -> float:
        """``a`` of the reduced dynamics at ``step`` (linear interpolation of ``ode_a``)."""
        return float(np.interp(step, self.ode_steps, self.ode_a))


def official_run(*, train_sequences: int, heldout: int, steps: int, seed: int,
                 ode_sequences: int, device: str = "cpu", log_points: int = 120) -> OfficialRun:
    """The official run (docs/theory.md §4) on the paper's source: :data:`OFFICIAL_MODEL` with
    :data:`OFFICIAL_NORM_OFFSET`, ``official_ce``, SGD lr 1.

    Args:
        train_sequences: ``n`` of the fixed training sample (the official run: 9000).
        heldout: fresh sequences for the held-out losses (the official run keeps 1000).
        steps: full-batch steps (the official run: 50000).
        seed: seeds the CPU generator (the training sample first, then the held-out sample)
            and, as ``np.random.default_rng(seed)``, the numpy generator of the held-out Bayes
            column's particle filter (:func:`theory.predictors.bayes.mixture_bayes_smc`), which is drawn
            from only for a mixture prior of two or more components (the paper's source is
            ``Dirichlet``, scored in closed form).
        ode_sequences: first sequences of the training sample used by the reduced dynamics.
        device: training device.
        log_points: log-spaced history rows (enough to log every one of the first steps).
    """
    source, seq_len = PAPER_SOURCE, int(OFFICIAL_REPORTED["seq_len"])
    stage = StageConfig("joint", PARAMS, float(OFFICIAL_REPORTED["lr"]), steps)
    config = TrainConfig("joint", (stage,), train_sequences, seq_len, loss="official_ce",
                         device=device, log_points=log_points)
    gen = torch_generator(seed)
    model = InductionHeadModel(OFFICIAL_MODEL, source.vocab_size, loss="official_ce",
                               norm_offset=OFFICIAL_NORM_OFFSET)
    started = time.perf_counter()
    result = train(model, source, config, generator=gen, progress=False)
    history, sample = result.history, result.sample.numpy()
    seconds = time.perf_counter() - started
    column = history.selector[:, history.sets.index((1, 2))]  # (T,)
    reached = history.steps[column >= 0.99]
    ode_steps = np.union1d(history.steps, np.geomspace(max(steps, 1), OFFICIAL_REPORTED["steps"],
                                                       _ODE_EXTRA_POINTS)).astype(np.float64)
    ode_a = official_temperature_trajectory(
        sample[:ode_sequences, :-1], sample[:ode_sequences, -1], (1, 2),
        vocab_size=source.vocab_size, a0=OFFICIAL_MODEL.a_init, times=ode_steps)
    held, kernels = sample_sequences(source, heldout, seq_len + 1, generator=gen,
                                     return_kernels=True)
    learned = history.sets[int(np.argmax(history.selector[-1]))]
    losses = heldout_losses(model, held, source, selected_set=learned, kernels=kernels,
                            rng=np.random.default_rng(seed))
    return OfficialRun(history, model, int(reached[0]) if reached.size else None, ode_steps,
                       ode_a, losses, seconds)
