"""The step benchmark (numerics.bench) and ``python -m numerics bench``."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch

from numerics.__main__ import main
from numerics.bench import (
    STEP_KINDS,
    BenchResult,
    MemoryPoint,
    ScalingPoint,
    StandardBenchResult,
    benchmark_memory,
    benchmark_scaling,
    benchmark_standard_step,
    benchmark_step,
    measure_step_memory,
)
from numerics.models.standard import StandardSpec, StandardTransformer
from numerics.training.standard import PAPER_SPEC
from theory import InductionHeadsError, ModelSpec

TINY = {"sequences": 40, "seq_len": 12, "repeats": 2}
"""A size that runs in well under a second; the real benchmark is n = 9000, L = 100."""
JSON_KEYS = {"vectorized_s", "dense_s", "ratio", "sampler_seq_per_s", "gpu_steps_per_s",
             "prepare_s", "sequences", "seq_len", "device", "threads", "seed", "standard",
             "baseline_s", "baseline_ratio", "baseline_repeats", "scaling", "memory", "form",
             "form_s"}
CAN_MEASURE_MEMORY = Path("/proc/self/clear_refs").exists()
"""The CPU memory figures need Linux's resettable peak RSS; elsewhere they are None."""
TINY_STANDARD = {"batch_size": 4, "seq_len": 12, "repeats": 2,
                 "spec": StandardSpec(d_model=12, max_len=24)}
"""A standard transformer step in milliseconds; the real one is PAPER_SPEC, B = 128, L = 100."""


def _parameters(spec: StandardSpec) -> int:
    model = StandardTransformer(spec, 3, generator=torch.Generator().manual_seed(0))
    return sum(p.numel() for p in model.parameters())


def test_benchmark_step_returns_consistent_positive_times() -> None:
    r = benchmark_step(**TINY, generator=torch.Generator().manual_seed(1))
    assert isinstance(r, BenchResult)
    assert (r.sequences, r.seq_len, r.repeats, r.dense_repeats, r.device) == (40, 12, 2, 1, "cpu")
    for name in ("vectorized_s", "dense_s", "baseline_s", "prepare_s", "sampler_seq_per_s"):
        value = getattr(r, name)
        assert 0 < value < float("inf"), f"{name} = {value}"
    assert r.ratio == pytest.approx(r.dense_s / r.vectorized_s, rel=1e-12)
    assert r.baseline_ratio == pytest.approx(r.baseline_s / r.vectorized_s, rel=1e-12)
    assert r.baseline_repeats == 3
    assert r.threads == torch.get_num_threads()
    if not torch.cuda.is_available():
        assert r.gpu_steps_per_s is None
    assert set(r.to_dict()) == set(BenchResult.__dataclass_fields__)


def test_benchmark_step_other_model_size() -> None:
    r = benchmark_step(sequences=8, seq_len=9, repeats=1, spec=ModelSpec(2, 4, 2))
    assert r.vectorized_s > 0 and r.dense_s > 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sequences": 0}, "sequences: expected an integer >= 1, received 0"),
    ({"repeats": 0}, "repeats: expected an integer >= 1, received 0"),
    ({"dense_repeats": 1.5}, "dense_repeats: expected an integer >= 1, received 1.5"),
    ({"baseline_repeats": 0}, "baseline_repeats: expected an integer >= 1, received 0"),
    ({"seq_len": 3}, "seq_len: expected L > window M = 3, received 3"),
    ({"device": "tpu"}, "device: expected 'auto', 'cpu'"),
    ({"generator": 0}, "generator: expected None or a CPU torch.Generator, received 0"),
    ({"source": "paper"}, "source: expected a theory.Source"),
])
def test_benchmark_step_bad_input(kwargs, message) -> None:
    with pytest.raises(InductionHeadsError, match=message):
        benchmark_step(**{**TINY, **kwargs})


def test_benchmark_scaling_scales_n_and_reports_ratios() -> None:
    points = benchmark_scaling(seq_lens=(10, 25), tokens=500, max_sequences=30, repeats=1,
                               memory=False, generator=torch.Generator().manual_seed(2))
    assert [(p.seq_len, p.sequences) for p in points] == [(10, 30), (25, 20)]
    for p in points:
        assert isinstance(p, ScalingPoint) and p.baseline_peak_bytes is None
        assert 0 < p.vectorized_s < float("inf") and 0 < p.baseline_s < float("inf")
        assert p.ratio == pytest.approx(p.baseline_s / p.vectorized_s, rel=1e-12)
        assert set(p.to_dict()) == set(ScalingPoint.__dataclass_fields__)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"seq_lens": (3,)}, "seq_lens: expected a non-empty list of integers >= 4, received \\(3,\\)"),
    ({"seq_lens": ()}, "seq_lens: expected a non-empty list"),
    ({"tokens": 0}, "tokens: expected an integer >= 1, received 0"),
    ({"max_sequences": 2.0}, "max_sequences: expected an integer >= 1, received 2.0"),
    ({"spec": "paper"}, "spec: expected a theory.ModelSpec"),
])
def test_benchmark_scaling_bad_input(kwargs, message) -> None:
    with pytest.raises(InductionHeadsError, match=message):
        benchmark_scaling(**{"seq_lens": (10,), "tokens": 100, "memory": False, **kwargs})


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"windows": (2,)}, "windows: expected a non-empty list of integers >= 3, received \\(2,\\)"),
    ({"seq_len": 16}, "seq_len: expected an integer L > max window = 16, received 16"),
    ({"sequences": 0}, "sequences: expected an integer >= 1, received 0"),
])
def test_benchmark_memory_bad_input(kwargs, message) -> None:
    with pytest.raises(InductionHeadsError, match=message):
        benchmark_memory(**{"windows": (3, 16), "sequences": 8, "seq_len": 20, **kwargs})
    with pytest.raises(InductionHeadsError, match=re.escape(f"kind: expected one of {STEP_KINDS}")):
        measure_step_memory("dense", sequences=8, seq_len=20)


def test_benchmark_standard_step_returns_consistent_rates() -> None:
    r = benchmark_standard_step(**TINY_STANDARD, generator=torch.Generator().manual_seed(1))
    assert isinstance(r, StandardBenchResult)
    assert (r.batch_size, r.seq_len, r.repeats, r.device) == (4, 12, 2, "cpu")
    assert r.parameters == _parameters(TINY_STANDARD["spec"])
    assert r.step_s > 0 and r.steps_per_second == pytest.approx(1 / r.step_s, rel=1e-12)
    assert r.threads == torch.get_num_threads()
    if not torch.cuda.is_available():
        assert r.gpu_steps_per_second is None
    assert set(r.to_dict()) == set(StandardBenchResult.__dataclass_fields__)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"batch_size": 0}, "batch_size: expected an integer >= 1, received 0"),
    ({"repeats": True}, "repeats: expected an integer >= 1, received True"),
    ({"seq_len": 25}, "seq_len: expected max\\(parents\\) = 2 <= L <= the model's max_len = 24"),
    ({"seq_len": 1}, "seq_len: expected max\\(parents\\) = 2 <= L"),
    ({"spec": PAPER_SPEC.to_dict()}, "spec: expected a StandardSpec"),
    ({"device": "tpu"}, "device: expected 'auto', 'cpu'"),
    ({"generator": 0}, "generator: expected None or a CPU torch.Generator, received 0"),
])
def test_benchmark_standard_step_bad_input(kwargs, message) -> None:
    with pytest.raises(InductionHeadsError, match=message):
        benchmark_standard_step(**{**TINY_STANDARD, **kwargs})


def test_bench_cli_prints_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "sub" / "bench.json"
    # n = 2000 makes the prepared inputs megabytes, above page and allocator granularity.
    assert main(["bench", "--sequences", "2000", "--seq-len", "12", "--repeats", "2",
                 "--baseline-repeats", "1", "--scaling-seq-lens", "8",
                 "--scaling-tokens", "8000", "--memory-windows", "4",
                 "--batch-size", "4", "--standard-repeats", "1",
                 "--threads", str(torch.get_num_threads()), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert JSON_KEYS <= set(data), f"missing {JSON_KEYS - set(data)}"
    assert data["ratio"] == pytest.approx(data["dense_s"] / data["vectorized_s"])
    assert (data["sequences"], data["seq_len"], data["seed"]) == (2000, 12, 0)
    text = capsys.readouterr().out
    assert "vectorised" in text and "dense" in text and f"{data['ratio']:.1f}x" in text
    assert data["baseline_ratio"] == pytest.approx(data["baseline_s"] / data["vectorized_s"])
    assert f"vectorised {data['baseline_ratio']:.1f}x faster" in text
    (point,) = data["scaling"]
    assert set(point) == set(ScalingPoint.__dataclass_fields__)
    assert (point["seq_len"], point["sequences"]) == (8, 1000), "n = tokens // L"
    assert point["ratio"] == pytest.approx(point["baseline_s"] / point["vectorized_s"])
    assert 0 < point["ratio"] < float("inf") and f"{point['ratio']:.1f}x" in text
    (mem,) = data["memory"]
    assert set(mem) == set(MemoryPoint.__dataclass_fields__)
    assert (mem["window"], mem["sequences"], mem["seq_len"]) == (4, 2000, 12)
    assert "peak memory of one step, n=2000, L=12" in text
    if not CAN_MEASURE_MEMORY:
        assert point["baseline_peak_bytes"] is None and mem["vectorized_peak_bytes"] is None
        return
    assert point["baseline_peak_bytes"] > 0 and mem["baseline_peak_bytes"] > 0
    assert mem["method"].startswith("VmHWM")
    # Match tensors, (n, L, d) + (L, M·M, n) + (L+1, M·M, n) float32, are held in their step.
    matches = 4 * 2000 * (12 * 3 + 12 * 16 + 13 * 16)
    assert data["form"] in data["form_s"] and mem["form"] in ("matches", "vectors", "positions",
                                                              "counts")
    peaks = mem["form_peak_bytes"]
    assert peaks["matches"] >= matches // 2, (
        f"match tensors {matches} B predicted, their step peaked at {peaks['matches']} B")
    assert mem["vectorized_peak_bytes"] >= mem["vectorized_inputs_bytes"] > 0
    if mem["form"] in peaks:
        assert peaks[mem["form"]] == mem["vectorized_peak_bytes"]
    std = data["standard"]
    assert set(std) == set(StandardBenchResult.__dataclass_fields__)
    assert (std["batch_size"], std["seq_len"], std["repeats"]) == (4, 12, 1)
    sized = dataclasses.replace(PAPER_SPEC, max_len=12)   # relative biases span L offsets
    assert std["parameters"] == _parameters(sized), "the CLI times PAPER_SPEC sized to L"
    assert std["steps_per_second"] == pytest.approx(1 / std["step_s"])
    assert f"{std['steps_per_second']:.2f} steps/s on cpu" in text


def test_bench_cli_bad_input_exits_2(capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "--sequences", "0"]) == 2
    assert "error: sequences: expected an integer >= 1, received 0" in capsys.readouterr().err
    assert main(["bench", "--threads", "0", "--sequences", "4"]) == 2
    assert "--threads: expected an integer >= 1, received 0" in capsys.readouterr().err
    assert main(["bench", "--batch-size", "0", "--sequences", "4"]) == 2
    assert "--batch-size: expected an integer >= 1, received 0" in capsys.readouterr().err
    assert main(["bench", "--scaling-seq-lens", "100", "3"]) == 2
    assert "--scaling-seq-lens: expected integers >= 4, received [100, 3]" in capsys.readouterr().err
    assert main(["bench", "--memory-windows", "3", "12", "--seq-len", "12"]) == 2
    assert ("--memory-windows: expected windows M < --seq-len L = 12, received [3, 12]"
            in capsys.readouterr().err)


@pytest.mark.gpu
def test_benchmark_on_cuda_reports_gpu_steps() -> None:
    r = benchmark_step(**TINY, device="cuda")
    assert r.device.startswith("cuda") and r.gpu_steps_per_s == pytest.approx(1 / r.vectorized_s)
    cpu = benchmark_step(**TINY)
    assert cpu.gpu_steps_per_s is not None and cpu.gpu_steps_per_s > 0


@pytest.mark.gpu
def test_benchmark_scaling_and_memory_on_cuda() -> None:
    (point,) = benchmark_scaling(seq_lens=(12,), tokens=480, repeats=1, device="cuda")
    assert point.ratio > 0 and point.baseline_peak_bytes > 0
    (mem,) = benchmark_memory(windows=(3,), sequences=40, seq_len=12, device="cuda")
    assert mem.method == "torch.cuda.max_memory_allocated"
    assert mem.vectorized_peak_bytes >= mem.vectorized_inputs_bytes > 0


@pytest.mark.gpu
def test_benchmark_standard_step_on_cuda() -> None:
    r = benchmark_standard_step(**TINY_STANDARD, device="cuda")
    assert r.device.startswith("cuda")
    assert r.gpu_steps_per_second == pytest.approx(r.steps_per_second)
    cpu = benchmark_standard_step(**TINY_STANDARD)
    assert cpu.gpu_steps_per_second is not None and cpu.gpu_steps_per_second > 0


@pytest.mark.skipif(not CAN_MEASURE_MEMORY, reason="needs Linux's resettable peak RSS")
def test_value_vectors_do_not_hold_the_window_squared() -> None:
    # At M = 16 the match tensors hold 2·n·L·M² = 2·2000·40·256 float32 (164 MB); the value
    # vectors' step holds O(n·L·H·d), a few MB.
    spec = ModelSpec(heads=3, window=16, degree=2)
    peaks = {form: measure_step_memory("vectorized", sequences=2000, seq_len=40, spec=spec,
                                       form=form)["peak_bytes"] for form in ("matches", "vectors")}
    matches = 4 * 2 * 2000 * 40 * 256
    assert peaks["matches"] >= matches // 2, peaks
    assert peaks["vectors"] <= matches // 8, (
        f"value vectors peaked at {peaks['vectors']} B against {peaks['matches']} B for the "
        f"match tensors")
