"""Command line: ``python -m numerics {bench, train, verify}``.

    python -m numerics bench [--sequences N] [--seq-len L] [--repeats R] [--dense-repeats R]
        [--device cpu|auto|cuda[:N]] [--threads T] [--seed S] [--json OUT]
    python -m numerics train --out DIR [...]       (flags: numerics.train_cli)
    python -m numerics verify [...]                (flags: numerics.verify_cli)

``bench`` times one training step of the vectorised model and of the dense reference at the
paper's setting (:func:`numerics.bench.benchmark_step`, default n = 9000, L = 100) and prints
both, their ratio, the sampler's sequences per second and, with CUDA, GPU steps per second;
``--json`` writes :meth:`numerics.bench.BenchResult.to_dict`. ``train`` trains and saves a run
(:mod:`numerics.train_cli`). ``verify`` hands its arguments to :func:`numerics.verify.main`.
Bad input exits with status 2 and a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from theory.errors import InductionHeadsError

__all__ = ["main", "build_parser", "format_bench"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m numerics`` (``verify`` parses its own flags)."""
    from numerics.train_cli import add_train_parser

    parser = argparse.ArgumentParser(prog="python -m numerics",
                                     description="Train and benchmark TF(M, H, d, D).")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="time a training step: vectorised vs dense reference",
                       description="Time one training step of the vectorised model and of the "
                                   "dense reference at the paper's setting.")
    b.add_argument("--sequences", type=int, default=9000, help="n (default 9000)")
    b.add_argument("--seq-len", type=int, default=100, help="L (default 100)")
    b.add_argument("--repeats", type=int, default=5, help="vectorised steps timed (default 5)")
    b.add_argument("--dense-repeats", type=int, default=1,
                   help="dense steps timed (default 1)")
    b.add_argument("--device", default="cpu", help="cpu (default), auto, cuda or cuda:N")
    b.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice)")
    b.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    b.add_argument("--json", type=Path, default=None, help="write the result as JSON here")
    add_train_parser(sub)
    sub.add_parser("verify", add_help=False,
                   help="train and check the predicted limit (python -m numerics verify -h)")
    return parser


def format_bench(data: dict) -> str:
    """The lines ``bench`` prints, from :meth:`numerics.bench.BenchResult.to_dict`."""
    lines = [f"one training step, n={data['sequences']}, L={data['seq_len']}, "
             f"device {data['device']}, {data['threads']} thread(s)",
             f"{'vectorised':>12}  {'dense':>12}  {'ratio':>8}",
             f"{data['vectorized_s']:>10.4f} s  {data['dense_s']:>10.4f} s  "
             f"{data['ratio']:>7.1f}x",
             f"(median of {data['repeats']} / {data['dense_repeats']} steps; one-off "
             f"prepare_inputs {data['prepare_s']:.4f} s)",
             f"sampler: {data['sampler_seq_per_s']:,.0f} sequences/s"]
    gpu = data.get("gpu_steps_per_s")
    lines.append("GPU: " + (f"{gpu:,.1f} vectorised steps/s" if gpu is not None
                            else "CUDA not available"))
    return "\n".join(lines)


def _bench(args: argparse.Namespace) -> int:
    from numerics.bench import benchmark_step

    if args.threads is not None:
        if args.threads < 1:
            raise InductionHeadsError(f"--threads: expected an integer >= 1, received "
                                      f"{args.threads}")
        torch.set_num_threads(args.threads)
    result = benchmark_step(sequences=args.sequences, seq_len=args.seq_len,
                            repeats=args.repeats, dense_repeats=args.dense_repeats,
                            device=args.device,
                            generator=torch.Generator().manual_seed(args.seed))
    data = {**result.to_dict(), "seed": args.seed, "torch": torch.__version__}
    print(format_bench(data))
    if args.json is not None:
        try:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(data, indent=2) + "\n")
        except OSError as err:
            raise InductionHeadsError(f"--json: expected a writable path, received "
                                      f"{str(args.json)!r} ({err.strerror})") from None
        print(f"wrote {args.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 on :class:`InductionHeadsError`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "verify":
        from numerics.verify import main as verify_main  # imported lazily: its own module

        return verify_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.command == "bench":
            return _bench(args)
        from numerics.train_cli import run_train

        return run_train(args)
    except InductionHeadsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
