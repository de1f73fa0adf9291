"""Every bad input of ``python -m numerics`` (train, verify, bench): exit 2 and one clear line.

``CASES``: one ``Case(id, argv, exit_code, fragment, files)`` row per command line, run in-process
through :func:`numerics.cli.main.main` (the parser's ``SystemExit`` counts as the status). For
status 2, stderr must be exactly one ``error: ...`` line containing ``fragment`` and no traceback,
and the output locations of the row must not exist afterwards (nothing is written before the
input is checked). ``files`` maps paths relative to a temporary directory to bytes written first;
``{tmp}`` in ``argv`` is that directory. Rows of status 0 prove the harness tells success apart.
Two rows run as real ``python -m numerics`` subprocesses (exit status and no traceback).

Oversized requests are sized far beyond any machine (10^12 sequences), so the rows fail at once:
refused by a memory guard, or by the allocator, which ``python -m numerics`` maps to status 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import torch

import numerics.cli.train
from numerics.cli.main import main
from numerics.cli.outputs import REPORT_FILES
from numerics.plots import ALL_FIGURE_NAMES
from numerics.training import StageConfig, TrainConfig
from numerics.verify.report import REPORT_NAME
from theory.sizes import MEMORY_LIMIT_ENV


class Case(NamedTuple):
    """``python -m numerics <argv>`` must exit with ``exit_code``, naming ``fragment``."""

    id: str
    argv: tuple[str, ...]
    exit_code: int
    fragment: str
    files: dict[str, bytes] = {}


TINY_CONFIG = json.dumps(TrainConfig("stagewise", tuple(
    StageConfig(name, (p,), lr, 5) for name, p, lr in
    (("selector", "C", 300.0), ("copier", "w", 300.0), ("classifier", "a", 1.0))),
    40, 12, device="cpu").to_dict()).encode()
"""A TrainConfig of 15 steps on n = 40, L = 12 (milliseconds)."""
HUGE = "1000000000000"
"""10^12 sequences: far beyond any machine's memory."""
TRAIN = ("train", "--out", "{tmp}/out", "--no-progress")
TINY_TRAIN = TRAIN + ("--config", "{tmp}/tiny.json")
VERIFY = ("verify", "--out", "{tmp}/out", "--quiet", "--device", "cpu")
BENCH = ("bench", "--sequences", "40", "--seq-len", "12", "--repeats", "1",
         "--baseline-repeats", "1", "--batch-size", "4", "--standard-repeats", "1",
         "--scaling-seq-lens", "--memory-windows")
"""A small bench without its scaling and memory sections (each a run of its own, the memory
ones in subprocesses; tests/numerics/bench/test_bench.py runs them), so that the good case takes
seconds."""
NOT_UTF8 = b'{"mode": "\xff"}'
SOURCE = b'{"vocab_size": 3, "parents": [1, 2], "prior": {"kind": "dirichlet", "alpha": 0.1}}'
RUN = {"out/config.json": b"{}", "out/checkpoint.pt": b"x"}
NO_CUDA = "CUDA is not available"

CASES = [
    # ------------------------------------------------------------------------------ train
    Case("train-ok", TINY_TRAIN, 0, "wrote config.json", {"tiny.json": TINY_CONFIG}),
    Case("train-seed-negative", TRAIN + ("--seed", "-1"), 2,
         "--seed: expected an integer in 0..18446744073709551615, received -1"),
    Case("train-seed-too-large", TRAIN + ("--seed", str(2**64)), 2, "--seed: expected"),
    Case("train-seed-not-int", TRAIN + ("--seed", "one"), 2, "invalid int value: 'one'"),
    Case("train-sequences-zero", TRAIN + ("--sequences", "0"), 2,
         "--sequences: expected an integer >= 1, received 0"),
    Case("train-sequences-negative", TRAIN + ("--sequences", "-5"), 2,
         "--sequences: expected an integer >= 1, received -5"),
    Case("train-seq-len-zero", TRAIN + ("--seq-len", "0"), 2,
         "--seq-len: expected an integer >= 2, received 0"),
    Case("train-seq-len-within-window", TRAIN + ("--seq-len", "3"), 2,
         "--seq-len: expected L > window M = 3, received 3"),
    Case("train-heads-zero", TRAIN + ("--heads", "0"), 2,
         "--heads: expected an integer >= 1, received 0"),
    Case("train-window-below-heads", TRAIN + ("--heads", "2", "--window", "1"), 2,
         "window: expected M >= H = 2"),
    Case("train-checkpoint-every-zero", TRAIN + ("--checkpoint-every", "0"), 2,
         "--checkpoint-every: expected an integer >= 1, received 0"),
    Case("train-stop-after-negative", TRAIN + ("--stop-after", "-3"), 2,
         "--stop-after: expected an integer >= 1, received -3"),
    Case("train-batch-too-large", TRAIN + ("--sequences", "60", "--batch", "100"), 2,
         "batch: expected 'full', 'fresh' or a minibatch size in 1..n = 60"),
    Case("train-batch-unparsable", TRAIN + ("--batch", "half"), 2,
         "expected 'full', 'fresh' or a minibatch size, received 'half'"),
    Case("train-unknown-flag", TRAIN + ("--sequencs", "4"), 2, "unrecognized arguments"),
    Case("train-no-out", ("train",), 2, "the following arguments are required: --out"),
    Case("train-no-command", (), 2, "the following arguments are required: command"),
    Case("train-source-not-utf8", TRAIN + ("--source", "{tmp}/s.json"), 2,
         "expected UTF-8 text", {"s.json": b"\xff\xfe{}"}),
    Case("train-source-not-json", TRAIN + ("--source", "{tmp}/s.json"), 2,
         "expected valid JSON", {"s.json": b'{"vocab_size": 3,'}),
    Case("train-source-missing", TRAIN + ("--source", "{tmp}/none.json"), 2,
         "source path: expected an existing JSON file"),
    Case("train-config-not-utf8", TRAIN + ("--config", "{tmp}/c.json"), 2,
         "--config: expected a TrainConfig JSON file in UTF-8", {"c.json": NOT_UTF8}),
    Case("train-config-not-json", TRAIN + ("--config", "{tmp}/c.json"), 2,
         "--config: expected a TrainConfig file of valid JSON", {"c.json": b"{mode: 1}"}),
    Case("train-config-not-an-object", TRAIN + ("--config", "{tmp}/c.json"), 2,
         "--config: expected a JSON object", {"c.json": b"[1, 2]"}),
    Case("train-config-unknown-key", TRAIN + ("--config", "{tmp}/c.json"), 2,
         "received unknown key(s) ['colour']",
         {"c.json": TINY_CONFIG[:-1] + b', "colour": "red"}'}),
    Case("train-config-bad-value", TRAIN + ("--config", "{tmp}/c.json"), 2,
         "sequences: expected an integer n >= 1, received 0",
         {"c.json": TINY_CONFIG.replace(b'"sequences": 40', b'"sequences": 0')}),
    Case("train-config-missing", TRAIN + ("--config", "{tmp}/none.json"), 2,
         "--config: expected a readable TrainConfig JSON file"),
    Case("train-mode-with-config", TINY_TRAIN + ("--mode", "joint"), 2,
         "--mode: expected not given with --config", {"tiny.json": TINY_CONFIG}),
    Case("train-device-tpu", TRAIN + ("--device", "tpu"), 2,
         "--device: device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', received 'tpu'"),
    Case("train-device-cuda-index", TRAIN + ("--device", "cuda:99"), 2, "device: expected"),
    Case("train-config-device-tpu", TRAIN + ("--config", "{tmp}/c.json"), 2,
         "device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', received 'tpu'",
         {"c.json": TINY_CONFIG.replace(b'"device": "cpu"', b'"device": "tpu"')}),
    Case("train-out-is-a-file", ("train", "--out", "{tmp}/f", "--config", "{tmp}/tiny.json"), 2,
         "--out: expected a directory, received", {"f": b"", "tiny.json": TINY_CONFIG}),
    Case("train-out-below-a-file", ("train", "--out", "{tmp}/f/run"), 2,
         "--out: expected a directory that can be created", {"f": b""}),
    Case("train-out-holds-a-run", TINY_TRAIN, 2,
         "holding config.json, checkpoint.pt (pass --force", {**RUN, "tiny.json": TINY_CONFIG}),
    Case("train-out-holds-a-report", TINY_TRAIN, 2, "holding report.json",
         {"out/report.json": b"{}", "tiny.json": TINY_CONFIG}),
    Case("train-resume-missing", TRAIN + ("--resume", "{tmp}/none.pt"), 2,
         "--resume: expected an existing checkpoint file"),
    Case("train-resume-not-a-checkpoint", TRAIN + ("--resume", "{tmp}/c.pt"), 2,
         "--resume: checkpoint", {"c.pt": b"PK\x03\x04 truncated"}),
    Case("train-resume-with-run-flags", TRAIN + ("--resume", "{tmp}/c.pt", "--seed", "1"), 2,
         "flags with --resume: expected none of the run's flags", {"c.pt": b""}),
    Case("train-too-large", TRAIN + ("--sequences", HUGE, "--seq-len", "12"), 2, "memory"),
    # ------------------------------------------------------------------------------ verify
    Case("verify-seed-negative", VERIFY + ("--seed", "-1"), 2,
         "--seed: expected an integer in 0..18446744073709551615, received -1"),
    Case("verify-sequences-zero", VERIFY + ("--sequences", "0"), 2,
         "--sequences: expected an integer >= 1, received 0"),
    Case("verify-heldout-zero", VERIFY + ("--heldout", "0"), 2,
         "--heldout: expected an integer >= 2, received 0"),
    Case("verify-prediction-samples-one", VERIFY + ("--prediction-samples", "1"), 2,
         "--prediction-samples: expected an integer >= 2, received 1"),
    Case("verify-mode-unknown", VERIFY + ("--mode", "sideways"), 2, "invalid choice: 'sideways'"),
    Case("verify-model-unknown", VERIFY + ("--kind", "gpt"), 2, "invalid choice: 'gpt'"),
    Case("verify-architecture-without-standard", VERIFY + ("--architecture", "{tmp}/a.json"), 2,
         "--architecture: expected only with a kind that has one", {"a.json": b"{}"}),
    Case("verify-standard-with-sequences", VERIFY + ("--kind", "standard", "--sequences", "9"),
         2, "--sequences: expected only with --kind simplified or full"),
    Case("verify-architecture-unknown-key", VERIFY + ("--kind", "standard", "--architecture",
                                                      "{tmp}/a.json"), 2,
         "--architecture", {"a.json": b'{"d_modle": 8}'}),
    Case("verify-standard-config-of-tf", VERIFY + ("--kind", "standard", "--config",
                                                   "{tmp}/c.json"), 2,
         "expected only the keys of a StandardTrainConfig",
         {"c.json": b'{"mode": "stagewise", "sequences": 10}'}),
    Case("verify-source-not-utf8", VERIFY + ("--source", "{tmp}/s.json"), 2,
         "expected UTF-8 text", {"s.json": b"\xff"}),
    Case("verify-config-not-json", VERIFY + ("--config", "{tmp}/c.json"), 2,
         "--config: expected a TrainConfig file of valid JSON", {"c.json": b"{"}),
    Case("verify-config-unknown-key", VERIFY + ("--config", "{tmp}/c.json"), 2,
         "received unknown key(s) ['epochs']", {"c.json": TINY_CONFIG[:-1] + b', "epochs": 1}'}),
    Case("verify-device-tpu", ("verify", "--out", "{tmp}/out", "--device", "tpu"), 2,
         "--device: device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', received 'tpu'"),
    Case("verify-out-is-a-file", ("verify", "--out", "{tmp}/f", "--quiet"), 2,
         "--out: expected a directory, received", {"f": b"report"}),
    Case("verify-out-below-a-file", ("verify", "--out", "{tmp}/f/out", "--quiet"), 2,
         "--out: expected a directory that can be created", {"f": b""}),
    Case("verify-out-holds-a-report", VERIFY, 2, "holding config.json, report.json",
         {"out/report.json": b"{}", "out/config.json": b"{}"}),
    Case("verify-out-holds-a-run", VERIFY, 2, "holding config.json, checkpoint.pt", RUN),
    Case("verify-samples-beyond-the-guard", VERIFY + ("--prediction-samples", HUGE), 2,
         "memory"),
    Case("verify-sequences-too-large", VERIFY + ("--sequences", HUGE, "--seq-len", "12"), 2,
         "memory"),
    # ------------------------------------------------------------------------------ bench
    Case("bench-ok", BENCH, 0, "vectorised"),
    Case("bench-sequences-zero", ("bench", "--sequences", "0"), 2,
         "sequences: expected an integer >= 1, received 0"),
    Case("bench-seq-len-within-window", ("bench", "--seq-len", "3"), 2,
         "seq_len: expected L > window M = 3"),
    Case("bench-threads-zero", BENCH + ("--threads", "0"), 2,
         "--threads: expected an integer >= 1, received 0"),
    Case("bench-seed-negative", BENCH + ("--seed", "-2"), 2, "--seed: expected an integer in"),
    Case("bench-device-tpu", BENCH + ("--device", "tpu"), 2, "--device: device: expected"),
    Case("bench-json-is-a-directory", BENCH + ("--json", "{tmp}"), 2,
         "--json: expected a writable file path, received"),
    Case("bench-json-below-a-file", BENCH + ("--json", "{tmp}/f/b.json"), 2,
         "--json: expected a writable file path", {"f": b""}),
    Case("bench-too-large", ("bench", "--sequences", HUGE, "--seq-len", "12"), 2, "memory"),
]
if not torch.cuda.is_available():
    CASES += [
        Case("train-device-cuda-without-cuda", TRAIN + ("--device", "cuda"), 2, NO_CUDA),
        Case("verify-device-cuda-without-cuda", ("verify", "--out", "{tmp}/o", "--device",
                                                 "cuda"), 2, NO_CUDA),
        Case("bench-device-cuda-without-cuda", BENCH + ("--device", "cuda"), 2, NO_CUDA),
    ]


@pytest.fixture(autouse=True)
def _default_memory_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows are sized against the default memory limit, whatever the developer's setting."""
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)


def _run(argv: list[str]) -> int:
    try:
        return int(main(argv))
    except SystemExit as exit_:
        return int(exit_.code or 0)


def _prepare(case: Case, tmp: Path) -> list[str]:
    for name, content in case.files.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_bytes(content)
    return [a.replace("{tmp}", str(tmp)) for a in case.argv]


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(set(ids)) == len(ids), sorted({i for i in ids if ids.count(i) > 1})


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_exit_code_and_message(case: Case, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    argv = _prepare(case, tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code = _run(argv)
    out, err = capsys.readouterr()
    assert code == case.exit_code, f"{case.id}: status {code}, expected {case.exit_code}: {err}"
    if case.exit_code == 0:
        assert case.fragment in out, f"{case.id}: {case.fragment!r} not in {out!r}"
        return
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), (
        f"{case.id}: expected one 'error: ...' line on stderr, received {err!r}")
    assert case.fragment in lines[0], f"{case.id}: {case.fragment!r} not in {lines[0]!r}"
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before, f"{case.id}: bad input changed {sorted(set(after) ^ set(before))}"


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--out", "{tmp}/out", "--seed", "-1"], "--seed: expected an integer in"),
    (["verify", "--out", "{tmp}/f"], "--out: expected a directory, received"),
], ids=["train-seed-negative", "verify-out-is-a-file"])
def test_python_dash_m_numerics_exits_2_without_traceback(argv: list[str], fragment: str,
                                                          tmp_path: Path) -> None:
    (tmp_path / "f").write_text("a file")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop(MEMORY_LIMIT_ENV, None)
    proc = subprocess.run([sys.executable, "-m", "numerics",
                           *[a.replace("{tmp}", str(tmp_path)) for a in argv]],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and fragment in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("raised", [MemoryError(), RuntimeError(
    "[enforce fail at alloc_cpu.cpp] DefaultCPUAllocator: can't allocate memory: you tried to "
    "allocate 10 bytes"), torch.OutOfMemoryError("CUDA out of memory.")],
    ids=["MemoryError", "torch-cpu-allocator", "torch-cuda"])
def test_out_of_memory_is_bad_input(raised: BaseException, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise raised

    monkeypatch.setattr(numerics.cli.train, "train", fail)
    (tmp_path / "tiny.json").write_bytes(TINY_CONFIG)
    assert _run(["train", "--out", str(tmp_path / "out"), "--config", str(tmp_path / "tiny.json"),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: out of memory: expected sizes that "
                                                   "fit this machine's memory"), err
    assert "pass smaller --sequences" in err and not (tmp_path / "out").exists()


def test_other_errors_stay_bugs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure that is not bad input is not disguised as status 2 (and DIR is restored)."""
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("an internal error")

    monkeypatch.setattr(numerics.cli.train, "train", fail)
    (tmp_path / "tiny.json").write_bytes(TINY_CONFIG)
    with pytest.raises(RuntimeError, match="an internal error"):
        main(["train", "--out", str(tmp_path / "out"), "--config", str(tmp_path / "tiny.json"),
              "--no-progress"])
    assert not (tmp_path / "out").exists()


def test_report_files_are_what_write_report_writes() -> None:
    assert REPORT_FILES == (REPORT_NAME, "config.json", *ALL_FIGURE_NAMES)


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--out", "{tmp}/out", "--sequences", "3000000", "--seq-len", "100"],
     "training sample of n=3000000 sequences"),
    (["verify", "--out", "{tmp}/out", "--heldout", "10000000000"],
     "held-out sample of n=10000000000 sequences"),
], ids=["train-sample-over-the-limit", "verify-heldout-over-the-limit"])
def test_samples_over_the_memory_limit_exit_2_up_front(argv: list[str], fragment: str,
                                                       tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop(MEMORY_LIMIT_ENV, None)
    proc = subprocess.run([sys.executable, "-m", "numerics",
                           *[a.replace("{tmp}", str(tmp_path)) for a in argv]],
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert fragment in proc.stderr and "memory limit of 2.0 GiB" in proc.stderr, proc.stderr
    assert "needs about" in proc.stderr and not (tmp_path / "out").exists()
