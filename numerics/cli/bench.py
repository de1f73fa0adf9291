"""``python -m numerics bench``: time a training step; argument parsing and printing only.

    python -m numerics bench [step] [--sequences N] [--seq-len L] [--repeats R] [--dense-repeats R]
        [--baseline-repeats R] [--scaling-seq-lens L ...] [--scaling-tokens T]
        [--memory-windows M ...] [--batch-size B] [--standard-repeats R]
        [--device cpu|auto|cuda[:N]] [--threads T] [--seed S] [--json OUT]

Times one training step of the vectorised model, of the dense reference and of the fair
baseline (the original code's construction) at the paper's setting
(:func:`numerics.bench.benchmark_step`, default n = 9000, L = 100) and prints them, the ratios,
the input form the vectorised step used and the step in every input form the sample admits, the
sampler's sequences per second and, with CUDA, GPU steps per second. Then the vectorised
model against the baseline at each ``--scaling-seq-lens`` L with n = min(N, T // L)
(:func:`numerics.bench.benchmark_scaling`) and the peak step memory of the vectorised step (in
its own form, on match tensors and on value vectors) and of the baseline for each
``--memory-windows`` M at n = N, L (:func:`numerics.bench.benchmark_memory`; an empty list
skips either). Then the
standard transformer's training steps per second (:func:`numerics.bench.benchmark_standard_step`:
``PAPER_SPEC`` with ``max_len = L``, B = 128 fresh sequences of the same L, AdamW, loss at
every position), on the
device and, with CUDA, on the GPU. ``--json`` writes :meth:`numerics.bench.BenchResult.to_dict`
with :meth:`numerics.bench.StandardBenchResult.to_dict` under ``"standard"``, the scaling and
memory points under ``"scaling"`` and ``"memory"``, the seed and the
torch version (atomically; the location is checked before any timing).

    python -m numerics bench full-step [--sequences N] [--seq-len L] [--repeats R]
        [--baseline-repeats R] [--form auto|gather|lookup|patterns] [--dtype float32|float64]
        [--device ...] [--threads T] [--seed S] [--json OUT]

``full-step`` times the full model's training step (:func:`numerics.bench.benchmark_full_step`:
the authors' full model, H = 3 band windows plus the self offset, d = 3) with its copier in
``--form`` against the same step with the dense baseline, in alternation, and prints both, the
ratio, the form and its one-off preparation; ``--json`` writes
:meth:`numerics.bench.FullBenchResult.to_dict` with the seed and the torch version.

Exit status: 0 success; 2 bad input (one ``error: ...`` line on stderr: sizes < 1, L <= M,
``--threads`` < 1, a ``--seed`` outside
0..2**64-1, a device that does not exist here, an unwritable ``--json``, or sizes too large for
this machine's memory); 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from numerics.cli.inputs import SEED_MAX, check_device, check_ints
from numerics.io import check_output_file, write_json_atomic
from numerics.models.full_forms import FULL_FORMS
from numerics.models.inputs import DTYPES

__all__ = ["BENCH_SIZES", "BENCHMARKS", "add_bench_parser", "format_bench", "format_full_bench",
           "run_bench"]

BENCHMARKS = ("step", "full-step")
"""What ``bench`` times: the simplified model's step (with scaling, memory and the standard
transformer) or the full model's step."""

BENCH_SIZES = "--sequences, --seq-len or --batch-size"
"""The flags that size a benchmark (named when memory runs out)."""


DEFAULT_MEMORY_WINDOWS = (3, 8, 16)
"""Windows M of the default peak-memory measurements (those below the run's L)."""


def add_bench_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``bench`` on the subparsers of ``python -m numerics``."""
    b = sub.add_parser("bench", help="time a training step: vectorised vs dense reference, "
                                     "and the standard transformer's steps per second",
                       description="Time one training step of the vectorised model and of the "
                                   "dense reference at the paper's setting, and the standard "
                                   "transformer's training steps per second (PAPER_SPEC, "
                                   "AdamW, loss at every position).",
                       epilog="Exit status: 0 success, 2 bad input (one 'error:' line), "
                              "130 interrupted.")
    b.add_argument("benchmark", nargs="?", choices=BENCHMARKS, default="step",
                   help="step (default): the simplified model against its dense reference and "
                        "fair baseline, then the scaling, memory and standard transformer; "
                        "full-step: the full model's step, fast copier against dense baseline")
    b.add_argument("--sequences", type=int, default=9000, help="n (default 9000)")
    b.add_argument("--seq-len", type=int, default=100, help="L (default 100)")
    b.add_argument("--repeats", type=int, default=5, help="vectorised steps timed (default 5)")
    b.add_argument("--dense-repeats", type=int, default=1,
                   help="dense steps timed (default 1)")
    b.add_argument("--baseline-repeats", type=int, default=3,
                   help="fair-baseline steps timed (default 3)")
    b.add_argument("--scaling-seq-lens", type=int, nargs="*", default=[100, 400, 1600],
                   help="L of the vectorised-vs-baseline scaling (default 100 400 1600)")
    b.add_argument("--scaling-tokens", type=int, default=900_000,
                   help="tokens n·L per scaling step, n capped at --sequences (default 900000)")
    b.add_argument("--memory-windows", type=int, nargs="*", default=None,
                   help="M of the peak-memory measurements (default: those of 3 8 16 below L)")
    b.add_argument("--batch-size", type=int, default=128,
                   help="standard transformer: fresh sequences per step (default 128)")
    b.add_argument("--standard-repeats", type=int, default=5,
                   help="standard transformer: steps timed (default 5)")
    b.add_argument("--device", default="cpu", help="cpu (default), auto, cuda or cuda:N")
    b.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice)")
    b.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    b.add_argument("--form", default="auto", choices=("auto",) + FULL_FORMS,
                   help="full-step: the copier's form (default auto, the cheapest by cost)")
    b.add_argument("--dtype", default="float32", choices=tuple(DTYPES),
                   help="full-step: parameter dtype (default float32)")
    b.add_argument("--json", type=Path, default=None, help="write the result as JSON here")
    return b


def _mib(value: int | None) -> str:
    """Bytes as a right-aligned MiB column, or "n/a" where not measured."""
    return f"{value / 2**20:>10.1f} MiB" if value is not None else f"{'n/a':>14}"


def format_bench(data: dict) -> str:
    """The lines ``bench`` prints, from :meth:`numerics.bench.BenchResult.to_dict`."""
    lines = [f"one training step, n={data['sequences']}, L={data['seq_len']}, "
             f"device {data['device']}, {data['threads']} thread(s)",
             f"{'vectorised':>12}  {'dense':>12}  {'ratio':>8}",
             f"{data['vectorized_s']:>10.4f} s  {data['dense_s']:>10.4f} s  "
             f"{data['ratio']:>7.1f}x",
             f"(median of {data['repeats']} / {data['dense_repeats']} steps; input form "
             f"{data['form']}, prepared once in {data['prepare_s']:.4f} s)",
             "each input form: " + ", ".join(f"{f} {t:.4f} s" for f, t in data["form_s"].items()),
             f"fair baseline (original construction): {data['baseline_s']:.4f} s, vectorised "
             f"{data['baseline_ratio']:.1f}x faster (median of {data['baseline_repeats']})",
             f"sampler: {data['sampler_seq_per_s']:,.0f} sequences/s"]
    gpu = data.get("gpu_steps_per_s")
    lines.append("GPU: " + (f"{gpu:,.1f} vectorised steps/s" if gpu is not None
                            else "CUDA not available"))
    if data.get("scaling"):
        lines.append(f"{'L':>6}  {'n':>6}  {'vectorised':>12}  {'baseline':>12}  {'ratio':>8}"
                     f"  {'baseline peak':>14}  form")
        lines += [f"{p['seq_len']:>6}  {p['sequences']:>6}  {p['vectorized_s']:>10.4f} s  "
                  f"{p['baseline_s']:>10.4f} s  {p['ratio']:>7.1f}x  {_mib(p['baseline_peak_bytes'])}"
                  f"  {p['form']}" for p in data["scaling"]]
    if data.get("memory"):
        first = data["memory"][0]
        lines.append(f"peak memory of one step, n={first['sequences']}, L={first['seq_len']} "
                     f"({first['method']}); vectorised includes its prepared inputs")
        lines.append(f"{'M':>4}  {'vectorised':>14}  {'(inputs)':>14}  {'matches':>14}"
                     f"  {'vectors':>14}  {'baseline':>14}  form")
        lines += [f"{p['window']:>4}  {_mib(p['vectorized_peak_bytes'])}  "
                  f"{_mib(p['vectorized_inputs_bytes'])}  {_mib(p['form_peak_bytes']['matches'])}  "
                  f"{_mib(p['form_peak_bytes']['vectors'])}  {_mib(p['baseline_peak_bytes'])}  "
                  f"{p['form']}" for p in data["memory"]]
    std = data.get("standard")
    if std is not None:
        lines += [f"standard transformer ({std['parameters']:,} parameters), "
                  f"B={std['batch_size']}, L={std['seq_len']}, AdamW, loss at every position",
                  f"{std['steps_per_second']:>10.2f} steps/s on {std['device']}, "
                  f"{std['threads']} thread(s) ({std['step_s']:.4f} s per step, median of "
                  f"{std['repeats']})"]
        std_gpu = std.get("gpu_steps_per_second")
        lines.append("GPU: " + (f"{std_gpu:,.1f} standard steps/s" if std_gpu is not None
                                else "CUDA not available"))
    return "\n".join(lines)


def format_full_bench(data: dict) -> str:
    """The lines ``bench full-step`` prints, from :meth:`numerics.bench.FullBenchResult.to_dict`."""
    return "\n".join([
        f"full model training step, n={data['sequences']}, L={data['seq_len']}, "
        f"d={data['vocab_size']}, H={data['heads']}, offsets {tuple(data['offsets'])}, "
        f"{data['dtype']}, device {data['device']}, {data['threads']} thread(s)",
        f"{'fast':>12}  {'baseline':>12}  {'ratio':>8}",
        f"{data['fast_s']:>10.4f} s  {data['baseline_s']:>10.4f} s  {data['ratio']:>7.1f}x",
        f"(median of {data['repeats']} / {data['baseline_repeats']} steps in alternation; "
        f"copier form {data['form']}, prepared once in {data['prepare_s']:.4f} s; baseline: "
        f"dense masked (L+1)x(L+1) attention per head)"])


def _run_full_step(args: argparse.Namespace) -> int:
    """``bench full-step``: time, print, optionally write JSON; return 0."""
    from numerics.bench import benchmark_full_step

    result = benchmark_full_step(sequences=args.sequences, seq_len=args.seq_len,
                                 repeats=args.repeats, baseline_repeats=args.baseline_repeats,
                                 form=args.form, dtype=args.dtype, device=args.device,
                                 generator=torch.Generator().manual_seed(args.seed))
    data = {**result.to_dict(), "seed": args.seed, "torch": torch.__version__}
    print(format_full_bench(data))
    if args.json is not None:
        write_json_atomic(args.json, data, indent=2)
        print(f"wrote {args.json}")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    """Run ``bench`` for the parsed ``args``; print the timings; return 0.

    Raises:
        InductionHeadsError: on bad flags or an unwritable ``--json`` (checked first; the
            standard benchmark's ``--seq-len`` bound too, before the first timing).
    """
    from numerics.bench import (
        benchmark_memory,
        benchmark_scaling,
        benchmark_standard_step,
        benchmark_step,
    )
    from numerics.training.standard import PAPER_SPEC
    from theory.errors import require
    from theory.sources.spec import PAPER_MODEL

    check_ints(args, [("threads", 1, None), ("seed", 0, SEED_MAX), ("batch_size", 1, None),
                      ("standard_repeats", 1, None), ("baseline_repeats", 1, None),
                      ("scaling_tokens", 1, None)])
    if args.benchmark == "full-step":
        check_device(args.device, "--device")
        if args.json is not None:
            check_output_file(args.json, flag="--json")
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        return _run_full_step(args)
    if args.memory_windows is None:
        args.memory_windows = [m for m in DEFAULT_MEMORY_WINDOWS if m < args.seq_len]
    for flag, values, low in (("--scaling-seq-lens", args.scaling_seq_lens, PAPER_MODEL.window + 1),
                              ("--memory-windows", args.memory_windows, PAPER_MODEL.heads)):
        require(all(v >= low for v in values), flag, f"integers >= {low}", values)
    require(not args.memory_windows or max(args.memory_windows) < args.seq_len, "--memory-windows",
            f"windows M < --seq-len L = {args.seq_len}", args.memory_windows)
    check_device(args.device, "--device")
    if args.json is not None:
        check_output_file(args.json, flag="--json")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    result = benchmark_step(sequences=args.sequences, seq_len=args.seq_len,
                            repeats=args.repeats, dense_repeats=args.dense_repeats,
                            baseline_repeats=args.baseline_repeats, device=args.device,
                            generator=torch.Generator().manual_seed(args.seed))
    scaling = benchmark_scaling(seq_lens=tuple(args.scaling_seq_lens),
                                tokens=args.scaling_tokens, max_sequences=args.sequences,
                                repeats=args.baseline_repeats, device=args.device,
                                generator=torch.Generator().manual_seed(args.seed)
                                ) if args.scaling_seq_lens else ()
    memory = benchmark_memory(windows=tuple(args.memory_windows), sequences=args.sequences,
                              seq_len=args.seq_len, device=args.device
                              ) if args.memory_windows else ()
    # The relative-position biases span max_len offsets: sized to L, any L can be timed.
    spec = dataclasses.replace(PAPER_SPEC, max_len=args.seq_len)
    standard = benchmark_standard_step(batch_size=args.batch_size, seq_len=args.seq_len,
                                       repeats=args.standard_repeats, device=args.device,
                                       spec=spec,
                                       generator=torch.Generator().manual_seed(args.seed))
    data = {**result.to_dict(), "standard": standard.to_dict(),
            "scaling": [p.to_dict() for p in scaling], "memory": [p.to_dict() for p in memory],
            "seed": args.seed,
            "torch": torch.__version__}
    print(format_bench(data))
    if args.json is not None:
        write_json_atomic(args.json, data, indent=2)
        print(f"wrote {args.json}")
    return 0


