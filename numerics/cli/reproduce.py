"""The ``reproduce`` subcommand of ``python -m numerics``: rerun a paper run and hold it to the
authors' numbers.

    python -m numerics reproduce NAME --out DIR [--w-plus W] [--lr LR] [--small] [--seed S]
        [--steps N] [--device auto|cpu|cuda[:N]] [--force] [--no-progress]

NAME is a recipe of :data:`numerics.experiments.recipes.RECIPES`: ``main-figure`` (the
simplified model's main-figure run) or ``appendix-full`` (the authors' full model; ``--w-plus``
1 (default) or 3, ``--lr`` 1e-3 (default) or 1e-2 with w+ 3). The authors' sizes by default;
``--small`` runs the recipe's small size (minutes on a 2-core CPU); ``--steps`` shortens either
(facts that need more steps are left out; fewer steps than any fact needs is refused).

Trains as ``train`` does (:func:`numerics.training.train`, the copier's parameters logged at
every history row: :func:`numerics.training.copier_parameter_callback`) and writes into DIR
``config.json`` (the recipe, size, ``w_+``, learning rate, seed, train config, source, model
spec, kind and options), ``checkpoint.pt``, ``history.json``, ``summary.json``,
``reproduction.json`` (:func:`numerics.experiments.recipes.reproduction_record`: every fact of
the authors' run with what this run measured and whether it holds, the verdict, the measured
and predicted first set), ``reproduction.png`` (``c̃``, ``a`` and the loss against the facts)
and ``copier_parameters.png`` (the copier's parameters at four logged steps); prints one line
per fact and the verdict.

One run per directory, as ``train`` (:mod:`numerics.cli.outputs`): a DIR holding another run's
results is refused unless ``--force``, which replaces that run once this one has succeeded; a
run that fails or is interrupted leaves DIR as it found it.

Exit status: 0 every fact holds; 1 a fact does not hold; 2 bad input (one ``error: ...`` line
on stderr: an unknown recipe, a ``w_+`` or learning rate the authors did not run, ``--steps``
out of range, options the recipe's model does not take, a bad device or output directory);
130 interrupted.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from numerics.cli.inputs import SEED_MAX, check_device, check_ints
from numerics.cli.outputs import CHECKPOINT_NAME, REPRODUCE_FILES, out_directory
from numerics.cli.status import EXIT_CHECK_FAILED, EXIT_OK
from numerics.experiments.recipes import (
    RECIPE_NAMES,
    RECIPES,
    RecipeRun,
    authors_curves,
    fact_marks,
    get_recipe,
    reproduction_record,
)
from numerics.io import write_json_atomic
from numerics.plots.reproduction import plot_parameter_heatmaps, plot_reproduction
from numerics.training import (
    copier_parameter_callback,
    learned_summary,
    parameter_trajectories,
)
from theory.sources.spec import PAPER_SOURCE

__all__ = ["REPRODUCE_SIZES", "add_reproduce_parser", "run_reproduce", "format_quantity"]

REPRODUCE_SIZES = "--small or --steps"
"""The flags that shrink a reproduction (named when memory runs out)."""

_BOUNDS = (("seed", 0, SEED_MAX), ("steps", 1, None))


def add_reproduce_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``reproduce`` on the subparsers of ``python -m numerics`` (module docstring)."""
    p = sub.add_parser(
        "reproduce", help="rerun a paper run and compare it with the authors' numbers",
        description="Rerun a paper run (a recipe) and hold it to the authors' saved numbers.",
        epilog="Recipes: " + "; ".join(f"{r.name}: {r.summary}" for r in RECIPES.values())
               + ". One run per --out directory (--force replaces another run once this one "
               "succeeds). Exit status: 0 every fact holds, 1 a fact does not hold, 2 bad input "
               "(one 'error:' line), 130 interrupted.")
    p.add_argument("name", choices=RECIPE_NAMES, metavar="NAME",
                   help=f"the recipe: {', '.join(RECIPE_NAMES)}")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="output directory (created)")
    p.add_argument("--w-plus", type=float, default=None, metavar="W",
                   help="w+ of the run (appendix-full: 1 (default) or 3)")
    p.add_argument("--lr", type=float, default=None, metavar="LR",
                   help="learning rate (appendix-full: 0.001 (default) or 0.01)")
    p.add_argument("--small", action="store_true",
                   help="the recipe's small size (minutes on a 2-core CPU)")
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help="train this many steps instead")
    p.add_argument("--seed", type=int, default=0,
                   help="torch generator seed in 0..2**64-1 (default 0)")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--force", action="store_true",
                   help="replace another run's results in --out (once this run succeeds)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def format_quantity(row: dict[str, Any]) -> str:
    """One printed line of a ``reproduction.json`` quantity."""
    def text(value: Any) -> str:
        if value is None:
            return "never"
        if isinstance(value, list):
            return "(" + ", ".join(str(v) for v in value) + ")"
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    verdict = "holds" if row["holds"] else "FAILS"
    return (f"{row['name']}: authors {text(row['authors_value'])}, measured "
            f"{text(row['measured'])} ({row['comparison']}, tolerance {row['tolerance']:.3g}) "
            f"{verdict}")


def _record(run: RecipeRun, seed: int) -> dict[str, Any]:
    """``config.json``: the recipe's run, written first."""
    return {"recipe": run.recipe.name, "size": run.size, "w_plus": run.w_plus, "lr": run.lr,
            "steps": run.steps, "seed": seed, "train": run.config.to_dict(),
            "source": PAPER_SOURCE.to_dict(), "model": run.spec.to_dict(),
            "model_kind": run.recipe.kind, "model_options": dict(run.options),
            "torch": torch.__version__}


def _figures(run: RecipeRun, history: Any, out: Path) -> None:
    title = (f"reproduce {run.recipe.name} ({run.size} size, w+ {run.w_plus:g}, lr "
             f"{run.lr:g}, {run.steps} steps, n = {run.config.sequences})")
    plot_reproduction(history.steps, history.selector, history.sets, history.a, history.loss,
                      marks=fact_marks(run), authors=authors_curves(run), title=title,
                      path=out / "reproduction.png")
    steps, trajectories = parameter_trajectories(history)
    plot_parameter_heatmaps(steps, trajectories, path=out / "copier_parameters.png")


def run_reproduce(args: argparse.Namespace) -> int:
    """Run ``reproduce`` for the parsed ``args``; print; return 0 or 1 (module docstring).

    Raises:
        InductionHeadsError: on bad flags or values, all checked before anything is written
            (the caller exits with status 2); also for a run that fails later (divergence),
            after the output directory was restored.
    """
    check_ints(args, _BOUNDS)
    check_device(args.device, "--device")
    run = get_recipe(args.name).resolve(size="small" if args.small else "authors",
                                        w_plus=args.w_plus, lr=args.lr, steps=args.steps,
                                        device=args.device)
    model = run.build_model()
    out = out_directory(args.out, REPRODUCE_FILES, force=args.force)
    with out:
        write_json_atomic(args.out / "config.json", _record(run, args.seed))
        result = run.train(generator=torch.Generator().manual_seed(args.seed), model=model,
                           progress=not args.no_progress,
                           checkpoint_path=args.out / CHECKPOINT_NAME,
                           callback=copier_parameter_callback)
        history = result.history
        record = reproduction_record(run, history, seed=args.seed)
        write_json_atomic(args.out / "history.json", history.to_dict())
        write_json_atomic(args.out / "summary.json", learned_summary(history))
        write_json_atomic(args.out / "reproduction.json", record)
        _figures(run, history, args.out)
    for row in record["quantities"]:
        print(format_quantity(row))
    held = sum(r["holds"] for r in record["quantities"])
    first, predicted = record["measured_first_set"], record["predicted_first_set"]
    theory_says = (f"{tuple(predicted)}" if predicted is not None else
                   f"undecidable ({tuple(record['predicted_first_leader'])} ahead by "
                   f"{record['predicted_first_margin_se']:.1f} SE)")
    print(f"measured first set: {'none' if first is None else tuple(first)}; predicted by "
          f"theory: {theory_says}")
    print(f"verdict: {record['verdict']} ({held}/{len(record['quantities'])} facts hold); "
          f"wrote {', '.join(REPRODUCE_FILES)} to {args.out}")
    return EXIT_OK if record["verdict"] == "holds" else EXIT_CHECK_FAILED
