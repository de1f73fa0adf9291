"""The ``train`` subcommand of ``python -m numerics``: train TF(M, H, d, D) and save the run.

    python -m numerics train --out DIR [--source SOURCE.json] [--heads H] [--window M]
        [--degree D] [--seq-len L] [--sequences N] [--mode stagewise|joint]
        [--batch full|fresh|B] [--loss nll|official_ce] [--dtype float32|float64] [--seed S]
        [--device auto|cpu|cuda[:N]] [--config CONFIG.json] [--stop-after STEP]
        [--checkpoint-every K] [--resume CHECKPOINT] [--force] [--no-progress]

Defaults: the paper's source (d=3, P=(1, 2), Dirichlet(0.1)) and model (H=M=3, D=2; ``--window``
defaults to ``max(H, 3)``, ``--degree`` to ``min(H, 2)``), and
:func:`numerics.training.default_config` (n=2000, L=100, full batch, stage-wise C → w → a),
seed 0, device auto. ``--config`` takes a ``TrainConfig`` JSON (``TrainConfig.to_dict``) or a
``config.json`` written by this command; the flags ``--sequences --seq-len --batch --loss --dtype
--device`` given with it override its fields. ``--resume`` continues a checkpoint: its run
defines everything, and ``--out`` gets a copy of it unless it is ``DIR/checkpoint.pt`` itself
(a run continued in its own directory).

Writes ``DIR/config.json`` (train config, source, model spec, seed), ``DIR/checkpoint.pt``
(every ``--checkpoint-every`` steps and at the end), then ``DIR/history.json``
(:meth:`numerics.training.History.to_dict`) and ``DIR/summary.json``
(:func:`numerics.learned_summary`), all atomically, and prints the summary.

One run per directory (:mod:`numerics.run_directory`): a DIR holding another run's results, of
any command, is refused (exit 2, naming the files) unless ``--force``, which replaces that run
once this one has succeeded (its files wait in ``DIR/.replaced-run/`` meanwhile, through any
kill, and come back when this run fails); a DIR another command is writing is refused. A run
that fails (bad input found late, divergence) leaves DIR as it found it. Ctrl-C after this run's
first checkpoint, like a killed process, leaves its ``config.json`` and last checkpoint, which
``--resume DIR/checkpoint.pt --out DIR`` continues (bit-identically on the same device and
thread count); before it, DIR is restored too.
Every input, a ``--resume`` checkpoint included (:func:`numerics.training.kinds.validate_checkpoint`),
is checked before anything is written.

Exit status: 0 success; 2 bad input (one ``error: ...`` line on stderr; :mod:`numerics.cli.main`
lists the cases); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from numerics.cli.inputs import (
    SEED_MAX,
    check_device,
    check_ints,
    flag_name,
    read_json_file,
    read_train_config,
)
from numerics.cli.outputs import CHECKPOINT_NAME, TRAIN_FILES, out_directory
from numerics.io import copy_file_atomic, to_json, write_json_atomic
from numerics.models import LOSS_KINDS, InductionHeadModel
from numerics.training import (
    DTYPES,
    MODES,
    TrainConfig,
    checkpoint_kind,
    default_config,
    learned_summary,
    load_checkpoint,
    resume,
    train,
)
from numerics.verify.evaluation import floor_hits
from theory.errors import InductionHeadsError, require
from theory.sources.spec import PAPER_MODEL, PAPER_SOURCE, ModelSpec, Source, load_source
from theory.validation import is_int

__all__ = ["TRAIN_SIZES", "add_train_parser", "run_train", "format_summary", "TOP_SETS"]

TOP_SETS = 3
"""Head sets listed by the summary, largest c̃ first."""

TRAIN_SIZES = "--sequences, --seq-len or --heads"
"""The flags that size a run (named when memory runs out)."""

# Flags that define the run; with --resume the checkpoint defines it instead.
_RUN_FLAGS = ("source", "heads", "window", "degree", "seq_len", "sequences", "mode", "batch",
              "loss", "dtype", "seed", "device", "config")
_OVERRIDES = ("sequences", "seq_len", "batch", "loss", "dtype", "device")
_BOUNDS = (("heads", 1, None), ("window", 1, None), ("degree", 1, None), ("seq_len", 2, None),
           ("sequences", 1, None), ("seed", 0, SEED_MAX), ("stop_after", 1, None),
           ("checkpoint_every", 1, None))


def _batch(text: str) -> str | int:
    if text in ("full", "fresh"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'full', 'fresh' or a minibatch size, received {text!r}") from None


def add_train_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``train`` on the subparsers of ``python -m numerics`` (module docstring)."""
    p = sub.add_parser("train", help="train TF(M, H, d, D); write config, history, checkpoint",
                       description="Train TF(M, H, d, D) and print what it learned.",
                       epilog="One run per --out directory (--force replaces another run once "
                              "this one succeeds). Exit status: 0 success, 2 bad input (one "
                              "'error:' line), 130 interrupted.")
    p.add_argument("--out", type=Path, required=True, help="output directory (created)")
    p.add_argument("--source", type=Path, default=None,
                   help="source JSON (theory.Source.to_dict); default: the paper's source")
    p.add_argument("--heads", type=int, default=None, help="H (default 3)")
    p.add_argument("--window", type=int, default=None, help="M (default max(H, 3))")
    p.add_argument("--degree", type=int, default=None, help="D (default min(H, 2))")
    p.add_argument("--seq-len", type=int, default=None, help="L (default 100)")
    p.add_argument("--sequences", type=int, default=None, help="n (default 2000)")
    p.add_argument("--mode", choices=MODES, default=None, help="default stagewise")
    p.add_argument("--batch", type=_batch, default=None, help="full (default), fresh or B")
    p.add_argument("--loss", choices=LOSS_KINDS, default=None, help="default nll")
    p.add_argument("--dtype", choices=tuple(DTYPES), default=None, help="default float32")
    p.add_argument("--seed", type=int, default=None,
                   help="torch generator seed in 0..2**64-1 (default 0)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--config", type=Path, default=None,
                   help="TrainConfig JSON, or a config.json written by this command")
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop after this global step (continue with --resume)")
    p.add_argument("--checkpoint-every", type=int, default=None,
                   help="also checkpoint every K steps (default: only at the end)")
    p.add_argument("--resume", type=Path, default=None, help="continue this checkpoint")
    p.add_argument("--force", action="store_true",
                   help="replace another run's results in --out (once this run succeeds)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    return p


def _config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the flags describe (``--config`` first, then explicit overrides)."""
    overrides = {k: getattr(args, k) for k in _OVERRIDES if getattr(args, k) is not None}
    if args.config is None:
        return default_config(args.mode or "stagewise", **overrides)
    require(args.mode is None, "--mode", "not given with --config (its stages fix the mode)",
            args.mode)
    return read_train_config(args.config, "--config", overrides)


def _seed_of(checkpoint: Path, data: dict[str, Any]) -> int | None:
    """The seed in the ``config.json`` beside ``checkpoint``, if that file describes its run."""
    path = checkpoint.parent / "config.json"
    if not path.is_file():
        return None
    record = read_json_file(path, "--resume", "run config")
    same = (isinstance(record, dict) and record.get("train") == to_json(data["config"])
            and record.get("source") == to_json(data["source"])
            and record.get("model") == to_json(data["model_spec"]))
    seed = record.get("seed") if same else None
    return seed if is_int(seed) and seed >= 0 else None


def format_summary(summary: dict[str, Any], *, top: int = TOP_SETS) -> str:
    """The lines ``train`` prints (one string) from :func:`numerics.learned_summary`."""
    ranked = sorted(summary["selector_weights"].items(), key=lambda kv: -kv[1])[:top]
    sets = "   ".join(f"{label} {w:.4f}" for label, w in ranked)
    heads = "   ".join(f"{h} -> offset {i} ({w:.3f})"
                       for h, (i, w) in summary["copier_argmax"].items())
    return "\n".join([f"last logged row: step {summary['steps']}",
                      f"selector c̃ (top sets): {sets}",
                      f"copier argmax:          {heads}",
                      f"a = {summary['temperature']:.4f}",
                      f"loss {summary['loss_initial']:.4f} -> {summary['loss']:.4f}"
                      + (f" ({summary['loss_floor_hits']} of {summary['sequences']} sequences at "
                         f"the loss floor)" if summary.get("loss_floor_hits") else "")])


def _resumed_run(args: argparse.Namespace, checkpoint: Path
                 ) -> tuple[dict[str, Any], Source, ModelSpec, TrainConfig, int | None]:
    """The checkpoint of ``--resume``, fully validated, with its run's source, spec and config."""
    given = [flag_name(k) for k in _RUN_FLAGS if getattr(args, k) is not None]
    require(not given, "flags with --resume", "none of the run's flags (the checkpoint "
            "defines the run)", given)
    require(args.checkpoint_every is None, "--checkpoint-every",
            "not given with --resume (the checkpoint keeps its own)", args.checkpoint_every)
    require(args.resume.is_file(), "--resume", "an existing checkpoint file", str(args.resume))
    try:
        data = load_checkpoint(args.resume)
    except InductionHeadsError as err:
        raise InductionHeadsError(f"--resume: {err}") from None
    kind = checkpoint_kind(data)
    require(kind.config_class is TrainConfig, "--resume", "a checkpoint of a run of a "
            "TrainConfig (model kind simplified or full, as train writes)",
            f"one of model kind {kind.name!r} (resume it with numerics.resume)")
    config = TrainConfig.from_dict(data["config"])
    check_device(config.device, "checkpoint config device")
    if data["generator_device"].startswith("cuda"):
        check_device(data["generator_device"], "checkpoint generator device")
    step = int(data["step"])
    require(args.stop_after is None or args.stop_after > step, "--stop-after",
            f"a global step > {step} (the checkpoint's)", args.stop_after)
    return (data, Source.from_dict(data["source"]), ModelSpec.from_dict(data["model_spec"]),
            config, _seed_of(args.resume, data))


def _new_run(args: argparse.Namespace) -> tuple[Source, ModelSpec, TrainConfig, int]:
    """Source, model spec, config and seed from the flags, all checked."""
    check_device(args.device, "--device")
    source = PAPER_SOURCE if args.source is None else load_source(args.source)
    heads = PAPER_MODEL.heads if args.heads is None else args.heads
    spec = ModelSpec(
        heads=heads,
        window=max(heads, PAPER_MODEL.window) if args.window is None else args.window,
        degree=min(heads, PAPER_MODEL.degree) if args.degree is None else args.degree)
    config = _config(args)
    check_device(config.device, "--config device")
    require(config.seq_len > spec.window, "--seq-len", f"L > window M = {spec.window}",
            config.seq_len)
    require(config.seq_len >= source.max_parent, "--seq-len",
            f"L >= max(parents) = {source.max_parent}", config.seq_len)
    return source, spec, config, 0 if args.seed is None else args.seed


def run_train(args: argparse.Namespace) -> int:
    """Run ``train`` for the parsed ``args``; print the summary; return 0.

    Raises:
        InductionHeadsError: on bad flags, files or values, all checked before anything is
            written (the caller exits with status 2); also for a run that fails later, after
            the output directory was restored.
    """
    check_ints(args, _BOUNDS)
    checkpoint = args.out / CHECKPOINT_NAME
    if args.resume is not None:
        data, source, spec, config, seed = _resumed_run(args, checkpoint)
        continuing = args.resume.resolve() == checkpoint.resolve()
    else:
        source, spec, config, seed = _new_run(args)
        continuing = False
    out = out_directory(args.out, TRAIN_FILES, force=args.force, continuing=continuing,
                        resumable=True)
    record = {"train": config.to_dict(), "source": source.to_dict(), "model": spec.to_dict(),
              "seed": seed, "resumed_from": None if args.resume is None else str(args.resume),
              "torch": torch.__version__}
    progress = not args.no_progress
    try:
        with out:
            if not continuing:     # the run's identity first, so a killed run can be resumed
                if args.resume is not None:
                    copy_file_atomic(args.resume, checkpoint)
                write_json_atomic(args.out / "config.json", record)
            if args.resume is not None:
                result = resume(checkpoint, progress=progress, stop_after=args.stop_after)
            else:
                model = InductionHeadModel(spec, source.vocab_size, loss=config.loss)
                result = train(model, source, config,
                               generator=torch.Generator().manual_seed(seed), progress=progress,
                               checkpoint_path=checkpoint,
                               checkpoint_every=args.checkpoint_every,
                               stop_after=args.stop_after)
            summary = learned_summary(result.history)
            # Beside the final training loss: sequences at the loss floor (docs/theory.md §6.2).
            summary["loss_floor_hits"] = floor_hits(result.model, result.sample)
            summary["sequences"] = int(result.sample.shape[0])
            write_json_atomic(args.out / "history.json", result.history.to_dict())
            write_json_atomic(args.out / "summary.json", summary)
            if continuing:
                write_json_atomic(args.out / "config.json", record)
    except KeyboardInterrupt:
        if out.outcome == "kept":
            print(f"interrupted: continue with --resume {checkpoint} --out {args.out}",
                  file=sys.stderr)
        raise
    print(format_summary(summary))
    step, total = int(load_checkpoint(checkpoint)["step"]), result.config.total_steps
    if step < total:
        print(f"stopped after step {step} of {total}; continue with --resume {checkpoint} "
              f"--out {args.out}")
    print(f"wrote config.json, history.json, summary.json, checkpoint.pt to {args.out}")
    return 0
