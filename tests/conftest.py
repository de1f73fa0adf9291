"""Shared pytest configuration: hypothesis profiles, worker threads and the gpu tier's skip rule."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from strategies import CASE_PROPERTY, case_line

# `ci`: derandomised so that CI is reproducible; `thorough`: hundreds of cases, for a GPU machine.
settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough", deadline=None, max_examples=300, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread per pytest-xdist worker.

    ``make test`` runs two workers on two cores; with torch's default of one thread per core each
    worker's small matmuls contend with the other's, and a standard-transformer run measured 5x
    slower than on one idle thread. Tests that compare thread counts set them explicitly.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """One torch thread for the test: a short run's small matmuls slow down many-fold when two
    threads share cores with other processes, and bit-identical replays need a fixed count."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="gpu tier: torch.cuda.is_available() is False on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def _case_rows(terminalreporter) -> list[dict]:
    """The property tier's case rows, from every test report's ``user_properties``."""
    rows = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            rows += [value for name, value in getattr(report, "user_properties", ())
                     if name == CASE_PROPERTY]
    return rows


COVERAGE_FEATURES = (("d", 0), ("|P|", 1), ("parents", 2), ("prior", 3), ("degree", 4))
"""The stratum features of a case row's label ``d3-P2-gapped-mixture-D<P``, by position."""


def _write_coverage(write, rows: list[dict]) -> None:
    """Levels of each stratum feature the stage-wise cases covered, and where targets came from."""
    labels = [r["stratum"].split("-") for r in rows if r.get("stratum")]
    for name, index in COVERAGE_FEATURES:
        counts = Counter(parts[index] for parts in labels)
        write(f"stagewise coverage {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    bases = Counter(r.get("basis", "population") for r in rows)
    write("stagewise target from: " + ", ".join(f"{k} {v}" for k, v in sorted(bases.items())))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """The property tier's tallies: passes, failures, discarded undecidable cases, per-case rows.

    Rows travel on the test reports (``user_properties``), so this works in the controlling
    process of pytest-xdist as well as in a plain run.
    """
    rows = _case_rows(terminalreporter)
    if not rows:
        return
    write = terminalreporter.write_line
    terminalreporter.section("property tier")
    for outcome, count in sorted(Counter(r["outcome"] for r in rows).items()):
        write(f"{outcome}: {count}")
    for mode in ("stagewise", "joint", "full", "standard"):
        mine = [r for r in rows if r["mode"] == mode]
        if mine:
            write(f"{mode}: {len(mine)} cases, {sum(r['seconds'] for r in mine):.0f} s of verify_case")
        if mine and mode in ("full", "standard"):
            same = sum(r["learned"] == r["predicted"] for r in mine)
            decidable = [r for r in mine if r["decidable"]]
            weak = [r for r in mine if len(r["predicted"]) < len(r["parents"])]
            write(f"{mode}: effective set == predicted S* in {same} of {len(mine)} cases "
                  f"({sum(r['learned'] == r['predicted'] for r in decidable)} of "
                  f"{len(decidable)} decidable); where S* is smaller than P: "
                  f"{sum(r['learned'] == r['predicted'] for r in weak)} of {len(weak)} equal "
                  f"S*, {sum(r['learned'] == r['parents'] for r in weak)} equal P")
        if mine and mode == "stagewise":
            _write_coverage(write, mine)
        for row in mine:
            write(case_line(row))
