"""Benchmarks: a training step of the vectorised TF(M, H, d, D) against dense constructions.

A *training step* is what :func:`numerics.training.loop.train_schedule` does per full-batch
update: the loss on n sequences of ``L + 1`` tokens (context ``x_1..x_L``, target ``x_{L+1}``),
its backward pass into all parameters (``w``, ``C``, ``a``) and an SGD update. The vectorised model
(:class:`numerics.InductionHeadModel`) works on inputs a fixed sample prepares once, in the form
:func:`numerics.models.costs.input_form` picks by cost (match tensors, value vectors,
window-pattern ids or (pattern, next token) counts; that one-off cost is reported separately as
``prepare_s``, and every form the sample admits is timed beside it, ``form_s``); the dense
reference (:func:`numerics.dense_loss`) builds an (L+1)×(L+1) attention
matrix per sequence and head. The fair baseline (:func:`numerics.models.baseline.baseline_loss`)
is the same model built the way the paper's original code builds it: one masked (L+1)×(L+1)
attention matrix per head applied to the whole batch by one batched matmul; ``baseline_ratio =
baseline_s / vectorized_s`` is the speed-up to quote (the dense reference is slower than the
original code). All run in one call on the same sample, device and thread count; the
vectorised and baseline steps are timed in alternation, so a change in load hits both alike.

:func:`benchmark_scaling` times the vectorised model against the baseline at several L with
``n = min(9000, 900000 // L)`` (a fixed token count per step, so the baseline's memory stays
bounded); :func:`benchmark_memory` measures the peak memory of one step of each for several M.
Memory is measured in a fresh subprocess per figure: on CPU the peak resident set size
(``VmHWM``, the counter behind ``resource.getrusage``'s ``ru_maxrss``) reset through
``/proc/self/clear_refs`` just before the step, so a larger setup peak cannot hide the step's,
with glibc's mmap threshold fixed (``MALLOC_MMAP_THRESHOLD_``) so that freed tensors leave the
resident set; on CUDA ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.
Figures are bytes above the process's memory before the sample's inputs were prepared.

:func:`benchmark_standard_step` times a step of the standard transformer's trainer
(:func:`numerics.train` with a :class:`numerics.training.standard.StandardTrainConfig`) at the paper's setting: the
:data:`~numerics.training.standard.PAPER_SPEC` transformer, a fresh batch of 128 sequences of
``L = 100`` drawn from the generator, the loss at every position, its backward pass and an AdamW
update (:func:`numerics.training.standard.train_step`, the trainer's own step), in float32.

:func:`benchmark_full_step` times a step of the full model (docs/theory.md §7) with its copier
in the form :func:`numerics.models.full_forms.copier_head_similarity` picks against the same step
with the copier's dense baseline (:func:`numerics.models.baseline.dense_head_similarity`, the
original code's masked (L+1)×(L+1) attention per head), in alternation; ``ratio = baseline_s /
fast_s``.

Times are wall-clock seconds, the median over repeats, after one untimed warm-up step on a slice
of the sample; on CUDA the device is synchronised around every timed call. ``ratio =
dense_s / vectorized_s`` is against the dense reference, which is slower than the original code;
the speed-up over the paper's own construction is ``baseline_ratio``.
"""

from numerics.bench.full import FullBenchResult, benchmark_full_step
from numerics.bench.memory import STEP_KINDS, MemoryPoint, benchmark_memory, measure_step_memory
from numerics.bench.standard import StandardBenchResult, benchmark_standard_step
from numerics.bench.step import (
    SCALING_TOKENS,
    BenchResult,
    ScalingPoint,
    benchmark_scaling,
    benchmark_step,
)
from numerics.bench.timing import WARMUP_SEQUENCES

__all__ = ["BenchResult", "benchmark_step", "WARMUP_SEQUENCES", "StandardBenchResult",
           "benchmark_standard_step", "ScalingPoint", "benchmark_scaling", "SCALING_TOKENS",
           "MemoryPoint", "benchmark_memory", "measure_step_memory", "STEP_KINDS",
           "FullBenchResult", "benchmark_full_step"]
