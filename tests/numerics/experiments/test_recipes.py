"""The paper's recipes: the authors' settings, the facts they are held to (checked against the
authors' saved files where a copy exists), the measurements of a history."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from numerics.experiments import OFFICIAL_MODEL
from numerics.experiments.authors import (
    A_INTERPOLATION_REL,
    FULL_FILES,
    LOSS_INTERPOLATION,
    MAIN_FIGURE_FILE,
    MAIN_FIGURE_TRAJECTORY,
    TABLE_ROUNDING,
)
from numerics.experiments.facts import Fact, check_fact, first_lead_set
from numerics.experiments.families import official_full_spec
from numerics.experiments.recipes import RECIPES, get_recipe
from numerics.models.full import OFFICIAL_FULL_OPTIONS
from numerics.training import PARAMS, History
from theory import InductionHeadsError
from theory.sources.spec import head_sets

AUTHORS_DIR = Path("/work/authors")
"""Where a copy of the authors' ``.npz`` files may be (not shipped: the file checks skip)."""

TRAIN_SEQUENCES = 9000
"""The authors' ``train_loss_list`` divides the batch mean by n_train = 9000."""

_COLUMNS = {"0000": (), "0001": (3,), "0010": (2,), "0100": (1,), "0011": (2, 3),
            "0101": (1, 3), "0110": (1, 2)}
"""The authors' component strings over (X, head 1, head 2, head 3) -> head sets."""

SETS = head_sets(3, 2)

FLOAT32_EPS = 1e-6
"""The files store C in float32: c̃ recomputed from them carries float32 rounding."""


def _authors_history(name: str) -> History:
    """An authors' file as a :class:`History` of every step (c̃ in our sets' order, a, the mean
    loss: ``train_loss_list`` times 9000, the last step's taken one step earlier)."""
    path = AUTHORS_DIR / name
    if not path.is_file() or path.stat().st_size == 0:
        pytest.skip(f"the authors' file {name} is not here")
    data = np.load(path)
    order = [list(data["alphas"]).index(next(k for k, v in _COLUMNS.items() if v == s))
             for s in SETS]
    C = data["C_list"].astype(np.float64)[:, order]                   # (T+1, 7)
    selector = C ** 2 / (C ** 2).sum(axis=1, keepdims=True)
    loss_key = next(k for k in data.files if k.startswith("train_loss_list"))
    loss = data[loss_key] * TRAIN_SEQUENCES                           # (T,)
    steps = np.arange(len(C))
    return History(SETS, steps, ("joint",) * len(C), np.append(loss, loss[-1]), selector,
                   np.zeros((len(C), 3, 3)), data["a_list"])


def test_main_figure_is_the_authors_simplified_run() -> None:
    run = get_recipe("main-figure").resolve()
    assert run.spec == OFFICIAL_MODEL and run.recipe.kind == "simplified"
    assert run.config.loss == "official_ce" and run.config.batch == "full"
    assert (run.config.sequences, run.config.seq_len, run.steps) == (9000, 100, 50_000)
    (stage,) = run.config.stages
    assert stage.params == PARAMS and stage.lr == 1.0 and stage.optimizer == "sgd"
    assert stage.momentum == 0.0 and run.config.mode == "joint"


@pytest.mark.parametrize(("w_plus", "lr", "steps"), [(1.0, 1e-3, 50_000), (3.0, 1e-3, 50_000),
                                                     (3.0, 1e-2, 10_000)])
def test_appendix_full_is_the_authors_full_run(w_plus: float, lr: float, steps: int) -> None:
    run = get_recipe("appendix-full").resolve(w_plus=w_plus, lr=lr)
    assert run.recipe.kind == "full" and run.options == OFFICIAL_FULL_OPTIONS
    assert run.spec == official_full_spec(w_plus)
    assert (run.spec.w_minus, run.spec.c_init, run.spec.a_init) == (0.01, 0.01, 0.01)
    (stage,) = run.config.stages
    assert stage.params == PARAMS and stage.lr == lr and stage.momentum == 0.0
    assert (run.config.sequences, run.steps, run.config.loss) == (9000, steps, "official_ce")


@pytest.mark.parametrize("kwargs", [{"w_plus": 2.0}, {"lr": 0.5}, {"size": "large"},
                                    {"steps": 0}, {"steps": 50_001}])
def test_runs_the_authors_did_not_make_are_refused(kwargs: dict) -> None:
    with pytest.raises(InductionHeadsError):
        get_recipe("appendix-full").resolve(**kwargs)


def test_a_pair_without_an_authors_run_is_refused() -> None:
    with pytest.raises(InductionHeadsError, match="a pair the authors ran"):
        get_recipe("appendix-full").resolve(w_plus=1.0, lr=1e-2)


def test_the_small_sizes_keep_every_fact() -> None:
    for recipe in RECIPES.values():
        for w_plus in recipe.w_plus_values:
            for lr in recipe.lr_values:
                every = recipe.facts_of(w_plus, lr, 10 ** 9)
                if not every:
                    continue
                small = recipe.resolve(size="small", w_plus=w_plus, lr=lr)
                assert len(small.facts) == len(every), (recipe.name, w_plus, lr)


def test_a_fact_applies_from_its_min_steps() -> None:
    recipe = get_recipe("main-figure")
    facts = {f.name for f in recipe.resolve(steps=12).facts}
    assert "first step with c̃(1, 2) >= 0.99" in facts
    assert not any(name.startswith("c̃(1, 2) at step") for name in facts)


def _history(selector: list[list[float]]) -> History:
    T = len(selector)
    return History(SETS, np.arange(T), ("joint",) * T, np.linspace(1.0, 0.5, T),
                   np.array(selector), np.zeros((T, 3, 3)), np.linspace(0.01, 1.0, T))


def test_the_first_lead_is_the_first_row_past_the_margin() -> None:
    uniform = [1 / 7] * 7
    lead_23 = [0.05, 0.05, 0.05, 0.05, 0.1, 0.1, 0.6]           # (2, 3) is the last set
    lead_12 = [0.05, 0.05, 0.05, 0.05, 0.6, 0.1, 0.1]
    assert first_lead_set(_history([uniform, lead_23, lead_12])) == (2, 3)
    assert first_lead_set(_history([uniform, uniform])) is None


def test_a_never_reached_threshold_holds_no_fact() -> None:
    fact = Fact("first step", "first_step", 9, "close", 100.0, "any", "file", head_set=(1, 2),
                threshold=0.99)
    row = check_fact(fact, _history([[1 / 7] * 7] * 3))
    assert row["measured"] is None and row["holds"] is False


@pytest.mark.parametrize(("comparison", "measured_a", "holds"), [
    ("close", 1.05, True), ("close", 1.2, False), ("at_least", 0.95, True),
    ("at_least", 0.8, False), ("at_most", 1.05, True), ("at_most", 1.2, False)])
def test_comparisons_hold_as_documented(comparison: str, measured_a: float, holds: bool) -> None:
    fact = Fact("a", "final_a", 1.0, comparison, 0.1, "any", "file")
    history = dataclasses.replace(_history([[1 / 7] * 7] * 2), a=np.array([0.01, measured_a]))
    row = check_fact(fact, history)
    assert row["holds"] is holds, row


# ------------------------------------------------------------------- against the files
def test_the_main_figure_table_is_the_authors_file() -> None:
    history = _authors_history(MAIN_FIGURE_FILE)
    table = MAIN_FIGURE_TRAJECTORY
    steps = np.array(table.steps)
    column = history.selector[:, SETS.index((1, 2))]
    for name, theirs in (("a", history.a), ("loss", history.loss), ("c_tilde_12", column)):
        gap = np.abs(np.array(getattr(table, name)) - theirs[steps]).max()
        assert gap <= TABLE_ROUNDING + FLOAT32_EPS, (name, gap)
    every = np.arange(1, len(history.a))
    a_rel = max(abs(table.at("a", int(s))[0] - history.a[s]) / history.a[s] for s in every)
    loss_gap = max(abs(table.at("loss", int(s))[0] - history.loss[s]) for s in every)
    assert a_rel <= A_INTERPOLATION_REL, a_rel
    assert loss_gap <= LOSS_INTERPOLATION, loss_gap


def _file_of(fact: Fact) -> History:
    return _authors_history(fact.source_file)


@pytest.mark.parametrize(("name", "w_plus", "lr"), [
    ("main-figure", 3.0, 1.0), ("appendix-full", 1.0, 1e-3), ("appendix-full", 3.0, 1e-3),
    ("appendix-full", 3.0, 1e-2)])
def test_every_fact_holds_on_the_authors_own_run(name: str, w_plus: float, lr: float) -> None:
    """Each fact, measured on the file it cites (truncated to the recipe's step count), holds:
    the constants are the files' numbers and the tolerances cover the authors' run itself."""
    recipe = get_recipe(name)
    run = recipe.resolve(w_plus=w_plus, lr=lr)
    for fact in run.facts:
        history = _file_of(fact)
        row = check_fact(fact, history)
        assert row["holds"], row


def test_the_w_plus_1_facts_hold_on_each_authors_run() -> None:
    """At w+ 1 the authors' three runs differ; every fact holds on each of them."""
    run = get_recipe("appendix-full").resolve(w_plus=1.0, lr=1e-3)
    for key in ("w+1 lr0.001 10000", "w+1 lr0.001 50000 a", "w+1 lr0.001 50000 b"):
        history = _authors_history(FULL_FILES[key])
        for fact in run.facts:
            row = check_fact(fact, history)
            assert row["holds"], (key, row)


@pytest.mark.parametrize(("name", "w_plus", "lr"), [
    ("main-figure", 3.0, 1.0), ("appendix-full", 1.0, 1e-3), ("appendix-full", 3.0, 1e-3),
    ("appendix-full", 3.0, 1e-2)])
def test_every_fact_holds_on_the_authors_run_cut_at_its_min_steps(name: str, w_plus: float,
                                                                  lr: float) -> None:
    """``min_steps`` is late enough: the authors' run, cut there, already shows each fact
    (facts read at the last step are measured against the authors' value at that step)."""
    recipe = get_recipe(name)
    for fact in recipe.resolve(w_plus=w_plus, lr=lr).facts:
        history = _file_of(fact)
        keep = history.steps <= fact.min_steps
        cut = History(history.sets, history.steps[keep], history.stages[:int(keep.sum())],
                      history.loss[keep], history.selector[keep], history.copier[keep],
                      history.a[keep])
        (same,) = [f for f in recipe.facts_of(w_plus, lr, fact.min_steps)
                   if (f.measure, f.head_set, f.threshold)
                   == (fact.measure, fact.head_set, fact.threshold)]
        row = check_fact(same, cut)
        assert row["holds"], (fact.min_steps, row)
