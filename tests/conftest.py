"""Shared pytest configuration: hypothesis profiles and the gpu tier's skip rule."""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="gpu tier: torch.cuda.is_available() is False on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """The property tier's tallies: passes, failures, discarded undecidable cases, per-case rows."""
    module = sys.modules.get("test_properties")
    if module is None or not (module.STAGEWISE_RECORD or module.JOINT_RECORD):
        return
    write = terminalreporter.write_line
    terminalreporter.section("property tier")
    for outcome, count in sorted(module.TALLY.items()):
        write(f"{outcome}: {count}")
    for mode, rows in (("stagewise", module.STAGEWISE_RECORD), ("joint", module.JOINT_RECORD)):
        if rows:
            write(f"{mode}: {len(rows)} cases, {sum(r['seconds'] for r in rows):.0f} s of verify_case")
        for row in rows:
            failed = [name for name, ok in row["checks"].items() if not ok]
            prior = row["source"]["prior"]
            write(f"{mode}: d={row['source']['vocab_size']} P={row['source']['parents']} "
                  f"{prior['kind']} H={row['model']['heads']} M={row['model']['window']} "
                  f"D={row['model']['degree']}: predicted {row['predicted']}"
                  f"{'' if row['decidable'] else ' (undecidable)'} learned {row['learned']}, "
                  f"failed checks {failed or 'none'}, {row['seconds']:.1f} s")
