"""The ``train`` subcommand of ``python -m numerics``: train TF(M, H, d, D) and save the run.

    python -m numerics train --out DIR [--source SOURCE.json] [--heads H] [--window M]
        [--degree D] [--seq-len L] [--sequences N] [--mode stagewise|joint]
        [--batch full|fresh|B] [--loss nll|official_ce] [--dtype float32|float64] [--seed S]
        [--device auto|cpu|cuda[:N]] [--config CONFIG.json] [--stop-after STEP]
        [--checkpoint-every K] [--resume CHECKPOINT] [--no-progress]

Defaults: the paper's source (d=3, P=(1, 2), Dirichlet(0.1)) and model (H=M=3, D=2; ``--window``
defaults to ``max(H, 3)``, ``--degree`` to ``min(H, 2)``), and :func:`numerics.training.loop.default_config`
(n=2000, L=100, full batch, stage-wise C → W → a), seed 0, device auto. ``--config`` takes a
``TrainConfig`` JSON (``TrainConfig.to_dict``) or a ``config.json`` written by this command; the
flags ``--sequences --seq-len --batch --loss --dtype --device`` given with it override its fields.
``--resume`` continues a checkpoint (its run defines everything; ``--out`` gets a copy of it).

Writes ``DIR/config.json`` (train config, source, model spec, seed), ``DIR/history.json``
(:meth:`numerics.training.checkpoint.History.to_dict`), ``DIR/checkpoint.pt`` and ``DIR/summary.json``
(:func:`numerics.learned_summary`), and prints the summary.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

import torch

from numerics.models import LOSS_KINDS, InductionHeadModel
from numerics.training import (
    DTYPES,
    MODES,
    TrainConfig,
    default_config,
    learned_summary,
    load_checkpoint,
    resume,
    train,
)
from theory.errors import InductionHeadsError, require
from theory.spec import PAPER_MODEL, PAPER_SOURCE, ModelSpec, Source, load_source

__all__ = ["add_train_parser", "run_train", "format_summary", "TOP_SETS"]

TOP_SETS = 3
"""Head sets listed by the summary, largest c̃ first."""

# Flags that define the run; with --resume the checkpoint defines it instead.
_RUN_FLAGS = ("source", "heads", "window", "degree", "seq_len", "sequences", "mode", "batch",
              "loss", "dtype", "seed", "device", "config")
_OVERRIDES = ("sequences", "seq_len", "batch", "loss", "dtype", "device")


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
                       description="Train TF(M, H, d, D) and print what it learned.")
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
    p.add_argument("--seed", type=int, default=None, help="torch generator seed (default 0)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--config", type=Path, default=None,
                   help="TrainConfig JSON, or a config.json written by this command")
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop after this global step (continue with --resume)")
    p.add_argument("--checkpoint-every", type=int, default=None,
                   help="also checkpoint every K steps (default: only at the end)")
    p.add_argument("--resume", type=Path, default=None, help="continue this checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    return p


def _read_json(path: Path, flag: str, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InductionHeadsError(f"{flag}: expected a readable {what} JSON file, received "
                                  f"{str(path)!r} ({err})") from None


def _config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the flags describe (``--config`` first, then explicit overrides)."""
    if args.config is None:
        return default_config(args.mode or "stagewise", **{
            k: getattr(args, k) for k in _OVERRIDES if getattr(args, k) is not None})
    require(args.mode is None, "--mode", "not given with --config (its stages fix the mode)",
            args.mode)
    data = _read_json(args.config, "--config", "TrainConfig")
    if isinstance(data, dict) and "train" in data:                   # a run's config.json
        data = data["train"]
    require(isinstance(data, dict), "--config", "a JSON object", type(data).__name__)
    data = {**data, **{k: getattr(args, k) for k in _OVERRIDES if getattr(args, k) is not None}}
    return TrainConfig.from_dict(data)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


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
                      f"loss {summary['loss_initial']:.4f} -> {summary['loss']:.4f}"])


def run_train(args: argparse.Namespace) -> int:
    """Run ``train`` for the parsed ``args``; print the summary; return 0.

    Raises:
        InductionHeadsError: on bad flags, files or values (the caller exits with status 2).
    """
    out: Path = args.out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InductionHeadsError(f"--out: expected a writable directory, received "
                                  f"{str(out)!r} ({err.strerror})") from None
    checkpoint = out / "checkpoint.pt"
    progress = not args.no_progress
    if args.resume is not None:
        given = [f"--{k.replace('_', '-')}" for k in _RUN_FLAGS if getattr(args, k) is not None]
        require(not given, "flags with --resume", "none of the run's flags (the checkpoint "
                "defines the run)", given)
        require(args.checkpoint_every is None, "--checkpoint-every",
                "not given with --resume (the checkpoint keeps its own)", args.checkpoint_every)
        require(args.resume.is_file(), "--resume", "an existing checkpoint file",
                str(args.resume))
        previous = args.resume.parent / "config.json"
        previous = _read_json(previous, "--resume", "config") if previous.is_file() else None
        seed = previous.get("seed") if isinstance(previous, dict) else None
        if args.resume.resolve() != checkpoint.resolve():
            shutil.copyfile(args.resume, checkpoint)
        data = load_checkpoint(checkpoint)
        source = Source.from_dict(data["source"])
        model_spec = ModelSpec.from_dict(data["model_spec"])
        config = TrainConfig.from_dict(data["config"])
    else:
        source = PAPER_SOURCE if args.source is None else load_source(args.source)
        heads = PAPER_MODEL.heads if args.heads is None else args.heads
        model_spec = ModelSpec(
            heads=heads,
            window=max(heads, PAPER_MODEL.window) if args.window is None else args.window,
            degree=min(heads, PAPER_MODEL.degree) if args.degree is None else args.degree)
        config = _config(args)
        seed = 0 if args.seed is None else args.seed
    _write_json(out / "config.json", {
        "train": config.to_dict(), "source": source.to_dict(), "model": model_spec.to_dict(),
        "seed": seed, "resumed_from": None if args.resume is None else str(args.resume),
        "torch": torch.__version__})
    if args.resume is not None:
        result = resume(checkpoint, progress=progress, stop_after=args.stop_after)
    else:
        model = InductionHeadModel(model_spec, source.vocab_size, loss=config.loss)
        result = train(model, source, config, generator=torch.Generator().manual_seed(seed),
                       progress=progress, checkpoint_path=checkpoint,
                       checkpoint_every=args.checkpoint_every, stop_after=args.stop_after)
    _write_json(out / "history.json", result.history.to_dict())
    summary = learned_summary(result.history)
    _write_json(out / "summary.json", summary)
    print(format_summary(summary))
    step, total = int(load_checkpoint(checkpoint)["step"]), result.config.total_steps
    if step < total:
        print(f"stopped after step {step} of {total}; continue with --resume {checkpoint}")
    print(f"wrote config.json, history.json, summary.json, checkpoint.pt to {out}")
    return 0
