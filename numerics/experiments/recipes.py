"""The paper's runs as named recipes: model, initialisation, loss, optimiser, sizes, and the
authors' facts each run is held to (``python -m numerics reproduce NAME``).

Both recipes follow the authors' scripts (``RPE/train_simplified.py``, ``RPE/train.py``): the
paper's source (d = 3, parents (1, 2), Dirichlet(0.1) rows, the first two tokens uniform),
sequences of L = 100 context tokens and a target, 10,000 drawn and split 9,000 / 1,000 of which
the 9,000 train (the 1,000 only give the authors' validation curve, which no fact uses),
full-batch SGD without momentum on every parameter at one learning rate, and the loss
``official_ce`` (``nn.CrossEntropyLoss`` on the output probabilities).

    main-figure    the simplified model :data:`numerics.experiments.OFFICIAL_MODEL`
                   (w+ 3, w- 0.1, C = a = 0.01), lr 1, 50,000 steps
    appendix-full  the authors' full model (:data:`numerics.models.full.OFFICIAL_FULL_OPTIONS`,
                   :func:`numerics.experiments.families.official_full_spec`), w+ 1 or 3,
                   w- 0.01, lr 1e-3 (50,000 steps) or 1e-2 (10,000 steps, w+ 3 only)

Each recipe has the authors' size and a ``small`` one (fewer steps; for the full model fewer
sequences too) that runs on a 2-core CPU in a few minutes; :meth:`Recipe.resolve` gives a
:class:`RecipeRun` (spec, options, config and the facts that apply at its step count).
The facts are constants (:mod:`numerics.experiments.authors`); a run is compared like with
like: ``a`` and the loss at the run's own last step, from the authors' trajectory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from numerics.experiments.authors import (
    A_INTERPOLATION_REL,
    FULL_FILES,
    LOSS_INTERPOLATION,
    MAIN_FIGURE_FILE,
    MAIN_FIGURE_TRAJECTORY,
    AuthorsTrajectory,
)
from numerics.experiments.facts import Fact, check_fact, first_lead_set
from numerics.experiments.families import OFFICIAL_MODEL, OFFICIAL_NORM_OFFSET, official_full_spec
from numerics.models.full import OFFICIAL_FULL_OPTIONS
from numerics.training.config import PARAMS, StageConfig, TrainConfig
from numerics.training.history import History, TrainResult
from numerics.training.kinds import get_kind, train
from theory.dynamics.first_move import FirstMove, predict_first_move
from theory.errors import require
from theory.sources.spec import PAPER_SOURCE, ModelSpec
from theory.validation import is_int

__all__ = ["SIZES", "MAIN_FIGURE_OPTIONS", "Recipe", "RecipeRun", "RECIPES", "RECIPE_NAMES",
           "get_recipe", "first_set_prediction", "reproduction_record", "fact_marks",
           "authors_curves"]

SIZES = ("authors", "small")
"""``authors``: the paper's run; ``small``: a few minutes on a 2-core CPU."""

MAIN_FIGURE_OPTIONS: dict[str, Any] = {"norm_offset": OFFICIAL_NORM_OFFSET}
"""The simplified model's constructor options in the main-figure recipe: the authors' norm
offset, so that the model is their function (docs/theory.md §4)."""

FIRST_MOVE_SAMPLES = 5000
"""Sequences a draw of the first-move prediction (about 2 s at L = 100)."""
FIRST_MOVE_BUDGET = 40_000
"""Sequences the first-move prediction may draw in all before calling the ranking undecidable."""

TRAIN_SEQUENCES = 9000
"""The authors' 10,000 sequences less their 1,000 validation sequences."""

LOSS_SAMPLE_TOLERANCE = 0.01
"""Loss difference (nats) allowed between two training samples of 9,000 sequences: the
per-sequence ``official_ce`` has a standard deviation near 0.1 at the start and 0.2 once
trained, so a mean over 9,000 moves by 0.001 to 0.002 (one standard error) between samples;
0.01 is over 3 standard errors of the difference of two samples at either end."""

A_SAMPLE_REL = 0.05
"""Relative difference allowed between the authors' ``a`` and a run's on another sample: ``a``
grows like the logarithm of the step count at a rate set by how well the sample's sequences are
predicted, which a sample of 9,000 fixes to within a few percent."""


@dataclass(frozen=True, eq=False)
class Recipe:
    """A paper run: what is trained, how, at which sizes, and the facts it is held to.

    Attributes:
        name: the recipe's name (``python -m numerics reproduce NAME``).
        summary: one line for help texts.
        kind: the model kind (:data:`numerics.training.KINDS`).
        spec_of: ``w_plus -> ModelSpec``, the sizes and initialisation.
        w_plus_values: the ``w_+`` the authors ran, the default first.
        options: the model's constructor options (passed through the kind's builder).
        loss: the loss kind.
        lr_values: the learning rates the authors ran, the default first.
        steps: ``{lr: steps}`` of the authors' runs.
        small_steps: ``{lr: steps}`` of the small size.
        sequences: n of the authors' runs.
        small_sequences: n of the small size.
        seq_len: L.
        log_points: history rows of a run (log-spaced; every step up to about 20).
        source_files: the authors' files the facts come from.
        facts_of: ``(w_plus, lr, steps) -> facts`` that apply to a run of that many steps.
        trajectory: the authors' trajectory kept as a table, or None.
    """

    name: str
    summary: str
    kind: str
    spec_of: Callable[[float], ModelSpec]
    w_plus_values: tuple[float, ...]
    options: Mapping[str, Any]
    loss: str
    lr_values: tuple[float, ...]
    steps: Mapping[float, int]
    small_steps: Mapping[float, int]
    sequences: int
    small_sequences: int
    seq_len: int
    log_points: int
    source_files: tuple[str, ...]
    facts_of: Callable[[float, float, int], tuple[Fact, ...]]
    trajectory: AuthorsTrajectory | None = None

    def resolve(self, *, size: str = "authors", w_plus: float | None = None,
                lr: float | None = None, steps: int | None = None, device: str = "auto"
                ) -> RecipeRun:
        """The run of this recipe at ``size`` (``w_plus``, ``lr``: None for the default;
        ``steps``: None for the size's).

        Raises:
            InductionHeadsError: on a size, ``w_+`` or learning rate the authors did not run
                with this recipe, or a step count too short for any of its facts.
        """
        require(size in SIZES, "size", f"one of {SIZES}", size)
        w_plus = self.w_plus_values[0] if w_plus is None else float(w_plus)
        require(w_plus in self.w_plus_values, "--w-plus",
                f"one of {self.w_plus_values} (the authors' runs of {self.name})", w_plus)
        lr = self.lr_values[0] if lr is None else float(lr)
        require(lr in self.lr_values, "--lr",
                f"one of {self.lr_values} (the authors' runs of {self.name})", lr)
        facts_any = self.facts_of(w_plus, lr, 10 ** 9)
        require(bool(facts_any), "--w-plus and --lr", f"a pair the authors ran with {self.name}",
                (w_plus, lr))
        default = (self.steps if size == "authors" else self.small_steps)[lr]
        steps = default if steps is None else steps
        least = min(f.min_steps for f in facts_any)
        require(is_int(steps) and least <= steps <= self.steps[lr], "--steps",
                f"an integer in {least}..{self.steps[lr]} (the fewest steps at which an authors' "
                "fact applies, the authors' step count)", steps)
        sequences = self.sequences if size == "authors" else self.small_sequences
        stage = StageConfig("joint", PARAMS, lr, steps)
        config = TrainConfig("joint", (stage,), sequences, self.seq_len, batch="full",
                             loss=self.loss, device=device, log_points=self.log_points)
        return RecipeRun(self, size, w_plus, lr, steps, self.spec_of(w_plus), dict(self.options),
                         config, self.facts_of(w_plus, lr, steps))


@dataclass(frozen=True, eq=False)
class RecipeRun:
    """One run of a recipe (:meth:`Recipe.resolve`).

    Attributes:
        recipe: the recipe.
        size: one of :data:`SIZES`.
        w_plus: its ``w_+``.
        lr: its learning rate.
        steps: its step count.
        spec: the model spec.
        options: the model's constructor options.
        config: the training run (joint, full batch, one learning rate).
        facts: the facts that apply at ``steps``.
    """

    recipe: Recipe
    size: str
    w_plus: float
    lr: float
    steps: int
    spec: ModelSpec
    options: dict[str, Any]
    config: TrainConfig
    facts: tuple[Fact, ...]

    def build_model(self) -> nn.Module:
        """A fresh model of the recipe's kind, built by the registry with the recipe's options
        (checked first as a checkpoint's would be).

        Raises:
            InductionHeadsError: on options the kind's model does not take.
        """
        kind = get_kind(self.recipe.kind)
        options = kind.model_class.check_options(self.options)
        return kind.build(self.spec, PAPER_SOURCE.vocab_size, self.config, options=options)

    def train(self, *, generator: torch.Generator, model: nn.Module | None = None,
              **kwargs: Any) -> TrainResult:
        """Train ``model`` (None: a fresh :meth:`build_model`) on the paper's source with this
        run's config; ``kwargs`` go to :func:`numerics.train` (``progress``, ``checkpoint_path``,
        ``callback``)."""
        model = self.build_model() if model is None else model
        return train(model, PAPER_SOURCE, self.config, generator=generator, **kwargs)


def first_set_prediction(run: RecipeRun, *, rng: np.random.Generator) -> FirstMove:
    """Theory's first move of the run's selector (:func:`theory.predict_first_move` on the
    paper's source, the run's spec, L and model ingredients, adaptive to the 3-SE rule within
    :data:`FIRST_MOVE_BUDGET` sequences drawn from ``rng``)."""
    model = run.build_model()
    return predict_first_move(PAPER_SOURCE, run.spec, model.first_move_ingredients(),
                              seq_len=run.config.seq_len, samples=FIRST_MOVE_SAMPLES,
                              max_samples=FIRST_MOVE_BUDGET, rng=rng)


def reproduction_record(run: RecipeRun, history: History, *, seed: int) -> dict[str, Any]:
    """``reproduction.json``: the run, every fact's row (:func:`numerics.experiments.facts.
    check_fact`), the verdict (``"holds"`` when every fact holds, else ``"fails"``), the
    predicted first set (:func:`first_set_prediction`, its generator seeded with ``seed``; null
    when its ranking is undecidable, with its margin in standard errors beside it) and the
    measured one (:func:`numerics.experiments.facts.first_lead_set`)."""
    rows = [check_fact(fact, history) for fact in run.facts]
    measured = first_lead_set(history)
    predicted = first_set_prediction(run, rng=np.random.default_rng(seed))
    return {"recipe": run.recipe.name, "size": run.size, "w_plus": run.w_plus, "lr": run.lr,
            "steps": run.steps, "sequences": run.config.sequences, "seed": seed,
            "quantities": rows,
            "verdict": "holds" if all(r["holds"] for r in rows) else "fails",
            "predicted_first_set": list(predicted.first_set) if predicted.decidable else None,
            "predicted_first_leader": list(predicted.first_set),
            "predicted_first_margin_se": predicted.margin_se,
            "measured_first_set": None if measured is None else list(measured)}


_PANEL_OF = {"first_step": "selector", "final_c_tilde": "selector", "max_c_tilde": "selector",
             "final_a": "a", "initial_loss": "loss", "final_loss": "loss"}


def _band(fact: Fact) -> tuple[float | None, float | None]:
    value, tol = float(fact.authors_value), fact.tolerance
    return {"close": (value - tol, value + tol), "at_least": (value - tol, None),
            "at_most": (None, value + tol)}[fact.comparison]


def fact_marks(run: RecipeRun) -> list[dict[str, Any]]:
    """The run's facts as marks of :func:`numerics.plots.plot_reproduction` (the first set,
    a head set, is not drawn)."""
    marks = []
    for fact in run.facts:
        if fact.measure not in _PANEL_OF:
            continue
        label = f"authors: {fact.name}"
        if fact.measure == "first_step":
            point = (float(fact.authors_value), fact.threshold)
            band = (fact.threshold, fact.threshold)
            label += f" = {fact.authors_value} ± {fact.tolerance:g}"
        elif fact.measure == "max_c_tilde":
            point, band = None, _band(fact)
            label += " bound " + (f">= {band[0]:g}" if band[0] is not None else f"<= {band[1]:g}")
        else:
            step = 0 if fact.measure == "initial_loss" else run.steps
            point, band = (float(step), float(fact.authors_value)), _band(fact)
            label += (f" = {fact.authors_value:.4g} ({fact.comparison}, tolerance "
                      f"{fact.tolerance:.3g})")
        marks.append({"panel": _PANEL_OF[fact.measure], "label": label, "point": point,
                      "band": band})
    return marks


def authors_curves(run: RecipeRun) -> dict[str, Any] | None:
    """The recipe's authors' trajectory for :func:`numerics.plots.plot_reproduction`, or None."""
    table = run.recipe.trajectory
    if table is None:
        return None
    return {"steps": list(table.steps), "a": list(table.a), "loss": list(table.loss),
            "c_tilde": {(1, 2): list(table.c_tilde_12)}}


# ----------------------------------------------------------------------------- the facts
def _main_figure_facts(w_plus: float, lr: float, steps: int) -> tuple[Fact, ...]:
    """The main-figure run's facts at ``steps`` (:data:`MAIN_FIGURE_FILE`)."""
    table, file = MAIN_FIGURE_TRAJECTORY, MAIN_FIGURE_FILE
    last = min(steps, table.steps[-1])
    a, a_exact = table.at("a", last)
    loss, loss_exact = table.at("loss", last)
    a_tol = a * (A_SAMPLE_REL + (0.0 if a_exact else A_INTERPOLATION_REL))
    loss_tol = LOSS_SAMPLE_TOLERANCE + (0.0 if loss_exact else LOSS_INTERPOLATION)
    between = "" if a_exact else ", plus the interpolation between the table's steps"
    facts = (
        Fact("first set", "first_set", (1, 2), "equal", 0.0,
             "a head set: the same or not (the first lead by FIRST_LEAD_MARGIN)", file,
             min_steps=3),
        Fact("first step with c̃(1, 2) >= 0.99", "first_step", 9, "close", 2.0,
             "another sample of 9,000 sequences moves the early growth of c̃(1, 2) by a few "
             "percent, and it gains 0.01 to 0.2 a step there: a step or two", file,
             head_set=(1, 2), threshold=0.99, min_steps=11),
        Fact(f"c̃(1, 2) at step {steps}", "final_c_tilde", 1.0, "at_least", 0.01,
             "the authors' c̃(1, 2) stays above 0.99 from step 15 on (it oscillates down to 0.78 "
             "at step 13)", file, head_set=(1, 2), min_steps=15),
        Fact(f"a at step {steps}", "final_a", a, "close", a_tol,
             f"{A_SAMPLE_REL:.0%} of the authors' a for another sample{between}", file),
        Fact("loss at step 0", "initial_loss", table.loss[0], "close", LOSS_SAMPLE_TOLERANCE,
             "another sample of 9,000 sequences (LOSS_SAMPLE_TOLERANCE)", file),
        Fact(f"loss at step {steps}", "final_loss", loss, "close", loss_tol,
             f"another sample of 9,000 sequences (LOSS_SAMPLE_TOLERANCE){between}; the "
             "authors' last entry is one step earlier", file),
    )
    return tuple(f for f in facts if f.min_steps <= steps)


_SPREAD = ("the authors' full-model runs differ between runs of one seed (GPU reductions), so "
           "the bound covers all of theirs with a margin")


def _appendix_full_facts(w_plus: float, lr: float, steps: int) -> tuple[Fact, ...]:
    """The full model's facts for ``(w_plus, lr)`` at ``steps`` (:data:`FULL_FILES`)."""
    if (w_plus, lr) == (1.0, 1e-3):
        facts = (
            Fact("first set", "first_set", (2, 3), "equal", 0.0,
                 "all three authors' runs at w+ 1 move to (2, 3) first (steps 795, 772 and "
                 "1191)", FULL_FILES["w+1 lr0.001 10000"], min_steps=1200),
            Fact("largest c̃(2, 3)", "max_c_tilde", 0.676, "at_least", 0.076,
                 "the lowest of the authors' three runs (1.0, 1.0 and 0.676, passing 0.6 by step "
                 "1925); " + _SPREAD, FULL_FILES["w+1 lr0.001 50000 a"], head_set=(2, 3),
                 min_steps=2000),
        )
    elif (w_plus, lr) == (3.0, 1e-3):
        facts = (
            Fact("first set", "first_set", (1, 2), "equal", 0.0,
                 "the authors' run at w+ 3 moves to (1, 2) first (step 338)",
                 FULL_FILES["w+3 lr0.001 50000"], min_steps=500),
            Fact("largest c̃(2, 3)", "max_c_tilde", 0.165, "at_most", 0.135,
                 "below 0.3, which bounds both authors' runs at w+ 3 (0.165, and 0.266 at lr "
                 "1e-2); " + _SPREAD, FULL_FILES["w+3 lr0.001 50000"], head_set=(2, 3)),
            Fact(f"c̃(1, 2) at step {steps}", "final_c_tilde", 0.971, "at_least", 0.071,
                 "at least 0.9, which the authors' c̃(1, 2) passes at step 1469 and keeps; "
                 + _SPREAD, FULL_FILES["w+3 lr0.001 50000"], head_set=(1, 2), min_steps=2000),
        )
    elif (w_plus, lr) == (3.0, 1e-2):
        facts = (
            Fact("first set", "first_set", (1, 2), "equal", 0.0,
                 "the authors' run at lr 1e-2 moves to (1, 2) first (step 5)",
                 FULL_FILES["w+3 lr0.01 10000"], min_steps=20),
            Fact("largest c̃(1, 2)", "max_c_tilde", 1.0, "at_least", 0.01,
                 "the authors' c̃(1, 2) passes 0.99 at step 16", FULL_FILES["w+3 lr0.01 10000"],
                 head_set=(1, 2), min_steps=20),
            Fact("largest c̃(2, 3)", "max_c_tilde", 0.266, "at_most", 0.034,
                 "below 0.3, which bounds both authors' runs at w+ 3; " + _SPREAD,
                 FULL_FILES["w+3 lr0.01 10000"], head_set=(2, 3)),
        )
    else:
        facts = ()
    return tuple(f for f in facts if f.min_steps <= steps)


MAIN_FIGURE = Recipe(
    name="main-figure", summary="the simplified model's main-figure run (joint C, w, a; lr 1)",
    kind="simplified", spec_of=lambda w_plus: OFFICIAL_MODEL,
    w_plus_values=(OFFICIAL_MODEL.w_plus,), options=MAIN_FIGURE_OPTIONS, loss="official_ce",
    lr_values=(1.0,), steps={1.0: 50_000}, small_steps={1.0: 5000},
    sequences=TRAIN_SEQUENCES, small_sequences=TRAIN_SEQUENCES, seq_len=100, log_points=200,
    source_files=(MAIN_FIGURE_FILE,), facts_of=_main_figure_facts,
    trajectory=MAIN_FIGURE_TRAJECTORY)

APPENDIX_FULL = Recipe(
    name="appendix-full",
    summary="the authors' full model, all parameters, w+ 1 or 3, lr 1e-3 or 1e-2",
    kind="full", spec_of=official_full_spec, w_plus_values=(1.0, 3.0),
    options=OFFICIAL_FULL_OPTIONS, loss="official_ce", lr_values=(1e-3, 1e-2),
    steps={1e-3: 50_000, 1e-2: 10_000}, small_steps={1e-3: 2000, 1e-2: 300},
    sequences=TRAIN_SEQUENCES, small_sequences=500, seq_len=100, log_points=200,
    source_files=tuple(FULL_FILES.values()), facts_of=_appendix_full_facts)

RECIPES: dict[str, Recipe] = {r.name: r for r in (MAIN_FIGURE, APPENDIX_FULL)}
"""Every recipe, by name."""

RECIPE_NAMES = tuple(RECIPES)
"""``("main-figure", "appendix-full")``."""


def get_recipe(name: Any) -> Recipe:
    """The recipe called ``name``.

    Raises:
        InductionHeadsError: naming the recipes.
    """
    require(isinstance(name, str) and name in RECIPES, "recipe", f"one of {RECIPE_NAMES}", name)
    return RECIPES[name]
