"""The README's examples run as written, and the commands it names exist."""

from __future__ import annotations

import re

import pytest
from strategies import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)
MAKE_TARGETS = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(encoding="utf-8"),
                              flags=re.M))


def test_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 3, "README.md shows three runnable Python examples"


def test_readme_is_short() -> None:
    assert len(README.splitlines()) < 200, "README.md is a ten-minute read: under 200 lines"


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int) -> None:
    """Each ```python block runs on its own, in a fresh namespace (each takes under 20 s)."""
    exec(compile(BLOCKS[index], f"README.md python block {index}", "exec"), {})


def test_readme_make_targets_exist() -> None:
    named = set(re.findall(r"`make ([\w-]+)", README))
    assert named and named <= MAKE_TARGETS, sorted(named - MAKE_TARGETS)


def test_readme_cli_subcommands_exist() -> None:
    from numerics.cli.main import build_parser

    named = set(re.findall(r"python -m numerics (\w+)", README))
    choices = set(re.search(r"\{([\w,]+)\}", build_parser().format_usage()).group(1).split(","))
    assert named and named <= choices, sorted(named - choices)


def test_readme_links_resolve() -> None:
    for target in re.findall(r"\]\(((?!https?:)[^)#]+)", README):
        assert (ROOT / target).exists(), target


def test_results_citations_name_existing_sections() -> None:
    """Docstrings cite docs/results.md by section number; every cited section exists."""
    results = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^## (\d+)\. ", results, flags=re.M))
    cited = {}
    for folder in ("theory", "numerics"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for number in re.findall(r"docs/results\.md §(\d+)", path.read_text(encoding="utf-8")):
                cited.setdefault(number, set()).add(path.name)
    missing = {n: sorted(where) for n, where in cited.items() if n not in sections}
    assert cited and not missing, f"citations of absent sections: {missing}"
