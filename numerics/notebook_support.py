"""Helpers the notebooks call (issue 6), so that no notebook defines more than a one-liner.

- Size switch: :data:`SIZE_ENV` is ``small`` (the tests), ``default`` (minutes on 2 CPU cores) or
  ``full`` (research scale): :func:`notebook_size`, :func:`sized`, :func:`research_size`.
- A verification run inline: :func:`report_figures` (:mod:`numerics.plots`, plus the growth law
  with :func:`growth_coefficient`) and :func:`curve_gaps` (logged versus predicted curves).
- Trained selection over the mixture family: :func:`trained_selection_map`,
  :func:`selection_map_figure`.
- SPEC §4's official main-figure run, shortened, with its reduced dynamics: :func:`official_run`.
- Conveniences: :func:`torch_generator`, :func:`model_taps`, :func:`format_table`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from numerics.checkpoint import History
from numerics.data import sample_sequences
from numerics.experiments import (
    OFFICIAL_MODEL,
    OFFICIAL_REPORTED,
    SIZE_ENV,
    SelectionMap,
    mixture_family,
    official_temperature_trajectory,
)
from numerics.generalization import evaluate_predictors
from numerics.model import InductionHeadModel
from numerics.plots import plot_copier, plot_losses, plot_selector, plot_temperature
from numerics.train import PARAMS, StageConfig, TrainConfig, default_config, train
from numerics.verify import VerifyReport
from theory.criterion import exact_copier_similarity
from theory.dynamics import log_growth
from theory.errors import require
from theory.spec import PAPER_SOURCE, ModelSpec

__all__ = ["SIZE_ENV", "SIZES", "notebook_size", "sized", "research_size", "torch_generator",
           "model_taps", "report_figures", "curve_gaps", "growth_coefficient", "TrainedMap",
           "trained_selection_map", "selection_map_figure", "OfficialRun", "official_run",
           "format_table"]

_ODE_EXTRA_POINTS = 25
"""Log-spaced steps at which the official run's reduced dynamics are reported beyond training."""

SIZES = ("small", "default", "full")
"""``small``: seconds (tests); ``default``: minutes on 2 CPU cores; ``full``: research scale."""


def notebook_size(environ: Mapping[str, str] | None = None) -> str:
    """The size named by :data:`SIZE_ENV` (unset: ``"default"``); raises outside :data:`SIZES`."""
    env = os.environ if environ is None else environ
    size = env.get(SIZE_ENV, "default").strip().lower() or "default"
    require(size in SIZES, SIZE_ENV, f"one of {SIZES}", size)
    return size


def sized(size: str, *, small: Any, default: Any, full: Any = None) -> Any:
    """The value for ``size``; ``full`` falls back to ``default`` when not given."""
    require(size in SIZES, "size", f"one of {SIZES}", size)
    if size == "full" and full is not None:
        return full
    return small if size == "small" else default


def research_size(device: torch.device | str, environ: Mapping[str, str] | None = None) -> str:
    """:func:`notebook_size`, with ``default`` promoted to ``full`` on a CUDA device."""
    size = notebook_size(environ)
    return "full" if size == "default" and torch.device(device).type == "cuda" else size


def torch_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (the samplers' keyword-only argument)."""
    require(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0, "seed",
            "an integer >= 0", seed)
    return torch.Generator().manual_seed(seed)


def model_taps(spec: ModelSpec, vocab_size: int, context: Any, *,
               selected: tuple[int, ...] | None = None, a: float = 1.0) -> dict[str, np.ndarray]:
    """The named taps (numpy) of a float64 model on the integer context ``(n, L)``.

    The model is at initialisation when ``selected`` is None, else the limiting model
    (:meth:`InductionHeadModel.at_limit`: exact copier, ``c̃`` one-hot on ``selected``) at ``a``.
    """
    if selected is None:
        model = InductionHeadModel(spec, vocab_size, dtype=torch.float64)
    else:
        model = InductionHeadModel.at_limit(spec, vocab_size, selected=tuple(selected), a=a,
                                            dtype=torch.float64)
    with torch.no_grad():
        _, taps = model(torch.as_tensor(np.asarray(context), dtype=torch.int64),
                        return_taps=True)
    return {name: value.numpy() for name, value in taps.items()}


def growth_coefficient(context: Any, targets: Any, parents: Sequence[int]) -> float:
    """``κ`` of ``-∂ℓ/∂a = κ e^{-a} + O(e^{-2a})`` for the GIH on ``parents`` (Lemma 7).

    With ``m`` positions matching the query's context, ``m_e`` of them holding the target, and
    ``u = L - m``, ``u_e`` the others, ``κ = mean_i 1{m_e >= 1}(u/m - u_e/m_e)`` over the
    contexts ``(n, L)`` and targets ``(n,)``; contexts with ``m_e = 0`` push ``a`` back with a
    constant force instead (which stops it at ``a*(L)``).
    """
    ctx = np.asarray(context)
    sim = exact_copier_similarity(ctx, tuple(parents))  # (n, L) in {0, 1}
    hit = (ctx == np.asarray(targets)[:, None]).astype(np.float64)  # (n, L): 1{x_l = e}
    m, m_e = sim.sum(axis=1), (sim * hit).sum(axis=1)  # (n,), (n,)
    u, u_e = ctx.shape[1] - m, hit.sum(axis=1) - m_e  # (n,), (n,)
    ok = m_e >= 1
    terms = np.zeros(len(ctx))
    terms[ok] = u[ok] / m[ok] - u_e[ok] / m_e[ok]
    return float(terms.mean())


def report_figures(report: VerifyReport, *, kappa: float | None = None) -> dict[str, Figure]:
    """``{"selector", "copier", "temperature", "losses"}`` figures of a run (nothing written).

    With ``kappa > 0`` and a stage training ``a`` alone, the temperature figure also shows the
    growth law ``a = log(e^{a_0} + κ·lr·(step - step_0))`` from that stage's start.
    """
    data = report.to_dict()
    hist, curves, losses = data["history"], data.get("curves") or {}, data["losses"]
    bounds = np.cumsum([s["steps"] for s in data["config"]["train"]["stages"]]).tolist()
    selected, steps = data["predicted"]["selected_parents"], hist["steps"]
    copier = data["predicted"]["copier"]
    figs = {
        "selector": plot_selector(steps, hist["selector"], hist["sets"], selected=selected,
                                  predicted=curves.get("selector"), stage_bounds=bounds),
        "copier": plot_copier(hist["copier"][0], hist["copier"][-1],
                              predicted_offsets=[o if isinstance(o, int) else None
                                                 for o in copier]),
        "temperature": plot_temperature(steps, hist["a"], predicted=curves.get("temperature"),
                                        a_star=losses.get("a_star"), stage_bounds=bounds),
        "losses": plot_losses(steps, hist["loss"], stage_bounds=bounds, references={
            "model (held-out)": losses.get("model"), "GIH, trained a": losses.get("gih_trained_a"),
            "GIH, a*(L)": losses.get("gih_a_star"), "GIH, a = ∞": losses.get("gih_inf"),
            "Bayes": losses.get("bayes"), "oracle": losses.get("oracle")}),
    }
    law = curves.get("temperature")
    if kappa is not None and kappa > 0 and law:
        t_steps = np.asarray(law["steps"])  # (T,)
        a_law = log_growth(law["lr"] * (t_steps - t_steps[0]), law["a"][0], kappa)  # (T,)
        ax = figs["temperature"].axes[0]
        ax.plot(t_steps, a_law, "-.", lw=1.2, label=f"growth law log(e^a0 + κt), κ = {kappa:.2f}")
        ax.legend(fontsize=8)
    return figs


def _interp(steps: np.ndarray, grid: Any, curve: Any) -> np.ndarray:
    """A predicted curve ``(T', k)`` on its ``grid`` (T',), read at ``steps`` (T,): ``(T, k)``."""
    curve = np.asarray(curve, dtype=np.float64).reshape(len(grid), -1)
    return np.stack([np.interp(steps, grid, col) for col in curve.T], axis=1)


def curve_gaps(report: VerifyReport) -> dict[str, float]:
    """Largest gap between a logged quantity and its predicted curve, over the curve's stage.

    Returns:
        ``selector_theory`` / ``selector_initial_copier``: ``max |c̃_S - predicted c̃_S|`` over
        the logged rows of stage 1 and all sets; ``temperature``: ``max |a - predicted a|`` over
        the last stage training ``a``. Keys are absent when the run has no such curve (joint).
    """
    data = report.to_dict()
    hist, curves, out = data["history"], data.get("curves") or {}, {}
    steps = np.asarray(hist["steps"], dtype=np.float64)  # (T,)
    for name, logged, keys in (("selector", hist["selector"], ("theory", "initial_copier")),
                               ("temperature", hist["a"], ("a",))):
        curve = curves.get(name)
        if not curve:
            continue
        grid = np.asarray(curve["steps"])  # (T',)
        rows = (steps >= grid[0]) & (steps <= grid[-1])
        measured = np.asarray(logged, dtype=np.float64).reshape(len(steps), -1)[rows]
        for key in keys:
            if curve.get(key) is not None:
                gap = np.abs(measured - _interp(steps[rows], grid, curve[key]))
                out[name if key == "a" else f"{name}_{key}"] = float(gap.max())
    return out


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
    def selected(self) -> np.ndarray:
        """``(n_w, n_a)`` index into ``sets`` of the set with the largest final ``c̃``."""
        return np.argmax(self.selector, axis=-1)

    def selected_set(self, i: int, j: int) -> tuple[int, ...]:
        """The trained choice at grid point ``(weights[i], alphas[j])``."""
        return self.sets[int(self.selected[i, j])]


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


def selection_map_figure(predicted: SelectionMap, trained: TrainedMap, *,
                         compare: tuple[tuple[int, ...], tuple[int, ...]] = ((1, 2), (1,))
                         ) -> Figure:
    """Heatmap of the predicted ``G(A) - G(B)`` for ``compare = (A, B)``; every cell is labelled
    with the predicted ``S*`` and the trained choice (same grid required)."""
    require(np.array_equal(predicted.weights, trained.weights)
            and np.array_equal(predicted.alphas, trained.alphas), "grids",
            "the same (w, α) grid for the predicted and the trained map",
            (predicted.weights.tolist(), trained.weights.tolist()))
    a, b = (predicted.sets.index(tuple(s)) for s in compare)
    diff = predicted.criterion[..., a] - predicted.criterion[..., b]  # (n_w, n_a)
    bound = float(np.max(np.abs(diff))) or 1.0
    fig = Figure(figsize=(max(5.5, 1.6 + 1.5 * len(predicted.alphas)),
                          max(3.0, 1.2 + 0.8 * len(predicted.weights))), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(diff, cmap="coolwarm", vmin=-bound, vmax=bound, aspect="auto",
                      origin="lower")
    for i, j in np.ndindex(diff.shape):
        pred, got = predicted.selected_set(i, j), trained.selected_set(i, j)
        ax.text(j, i, f"S* {pred}\ntrained {got}", ha="center", va="center", fontsize=7,
                color="k" if pred == got else "darkred", weight="normal" if pred == got else "bold")
    ax.set_xticks(range(len(predicted.alphas)), [f"{x:g}" for x in predicted.alphas])
    ax.set_yticks(range(len(predicted.weights)), [f"{x:g}" for x in predicted.weights])
    ax.set(xlabel="α (Dirichlet concentration)", ylabel="w (weight of the {1,2} component)",
           title=f"colour: {predicted.kind}{compare[0]} - {predicted.kind}{compare[1]}\n"
                 "text: predicted S* and trained choice (bold red: they differ)")
    ax.title.set_fontsize(9)
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
        heldout: ``{predictor: loss}`` on fresh sequences (:func:`evaluate_predictors`, nats).
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
    """SPEC §4's run on the paper's source: :data:`OFFICIAL_MODEL`, ``official_ce``, SGD lr 1.

    Args:
        train_sequences: ``n`` of the fixed training sample (the official run: 9000).
        heldout: fresh sequences for the held-out losses (the official run keeps 1000).
        steps: full-batch steps (the official run: 50000).
        seed: seeds the CPU generator: the training sample first, then the held-out sample.
        ode_sequences: first sequences of the training sample used by the reduced dynamics.
        device: training device.
        log_points: log-spaced history rows (enough to log every one of the first steps).
    """
    source, seq_len = PAPER_SOURCE, int(OFFICIAL_REPORTED["seq_len"])
    stage = StageConfig("joint", PARAMS, float(OFFICIAL_REPORTED["lr"]), steps)
    config = TrainConfig("joint", (stage,), train_sequences, seq_len, loss="official_ce",
                         device=device, log_points=log_points)
    gen = torch_generator(seed)
    replay = torch.Generator().manual_seed(0)
    replay.set_state(gen.get_state())  # train() draws its fixed sample first: replay it
    sample = sample_sequences(source, train_sequences, seq_len + 1, generator=replay).numpy()
    model = InductionHeadModel(OFFICIAL_MODEL, source.vocab_size, loss="official_ce")
    started = time.perf_counter()
    history = train(model, source, config, generator=gen, progress=False).history
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
    losses = evaluate_predictors(model, held, source, selected=learned, kernels=kernels)
    return OfficialRun(history, model, int(reached[0]) if reached.size else None, ode_steps,
                       ode_a, losses, seconds)


def format_table(rows: Sequence[Mapping[str, Any]], *, digits: int = 4) -> str:
    """Rows of equal keys as a fixed-width text table (floats to ``digits`` decimals)."""
    require(len(rows) >= 1, "rows", "at least one row", rows)
    cols = list(rows[0])
    cells = [[f"{r[c]:.{digits}f}" if isinstance(r[c], float) else str(r[c]) for c in cols]
             for r in rows]
    widths = [max(len(c), *(len(row[k]) for row in cells)) for k, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)
