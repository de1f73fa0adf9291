"""The documentation site (mkdocs.yml) builds in strict mode, and strict mode fails on a
cross-reference to a name that does not exist: in a docstring's Sphinx role (rewritten by
docs/griffe_roles.py) or in a page's autorefs link."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

pytest.importorskip("mkdocs")
pytest.importorskip("mkdocstrings_handlers.python")
pytest.importorskip("material")

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "docs" / "griffe_roles.py"
BUILD_TIMEOUT_S = 600  # the full site takes 25-40 s on the 2-core CI machine; a hang must end


def mkdocs_build(config: Path, site_dir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of ``config`` into ``site_dir``, run from ``cwd``."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
         "--site-dir", str(site_dir)],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)


def write_site(tmp_path: Path, page: str, *, packages: list[str], root: Path) -> Path:
    """A one-page site in ``tmp_path``: Google docstrings and the roles extension reading
    ``packages`` under ``root``; returns its config file."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text(page, encoding="utf-8")
    extension = {f"{EXTENSION}:SphinxRoles": {"packages": packages, "root": str(root)}}
    config = {
        "site_name": "probe",
        "docs_dir": "docs",
        "strict": True,
        "theme": {"name": "material"},
        "plugins": ["autorefs", {"mkdocstrings": {"default_handler": "python", "handlers": {
            "python": {"paths": [str(root)], "options": {
                "docstring_style": "google", "extensions": [extension]}}}}}],
    }
    path = tmp_path / "mkdocs.yml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


@pytest.mark.slow
def test_site_builds_in_strict_mode(tmp_path: Path) -> None:
    """The whole site (pages, API reference, notebooks) builds with no warning; run from
    another directory, so nothing depends on the working directory or lands in the checkout."""
    result = mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site", cwd=tmp_path)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}"
    for page in ("index.html", "api/theory/index.html", "api/numerics/index.html",
                 "api/proofs/index.html", "notebooks/01_limiting_model/index.html"):
        assert (tmp_path / "site" / page).is_file(), f"{page} missing from the built site"
    api = (tmp_path / "site" / "api" / "theory" / "index.html").read_text(encoding="utf-8")
    assert 'id="theory.predict_limit"' in api, "theory.predict_limit is not documented"


# (role written in a docstring, whether it names something): one function per role.
ROLE_CASES = [
    (":func:`docs_probe.present`", True),      # absolute: a link
    (":func:`present`", True),                 # a bare name found in the module
    (":class:`torch.Tensor`", True),           # outside the library: left as code
    (":func:`docs_probe.absent`", False),      # names nothing
    (":func:`absent`", False),                 # a bare name found nowhere
    (":meth:`Holder.absent`", False),          # a class of the package without that member
]
MISSING_PAGE_LINK = "docs_probe.does_not_exist"


class ProbeBuild(NamedTuple):
    """The outcome of the throwaway site's strict build."""

    returncode: int
    stderr: str
    page: Path  # the built page, written before strict mode aborts


@pytest.fixture(scope="module")
def probe_build(tmp_path_factory: pytest.TempPathFactory) -> ProbeBuild:
    """One strict build of a throwaway package citing every role of ROLE_CASES, on a page that
    also links to a missing name (one build: each costs seconds)."""
    tmp_path = tmp_path_factory.mktemp("docs_probe")
    package = tmp_path / "src" / "docs_probe"
    package.mkdir(parents=True)
    functions = "".join(f'def cites_{i}() -> None:\n    """Cites {role}."""\n\n\n'
                        for i, (role, _) in enumerate(ROLE_CASES))
    (package / "__init__.py").write_text(
        '"""A package whose functions cite names."""\n\n\n' + functions
        + 'def present() -> None:\n    """Does nothing."""\n\n\n'
        'class Holder:\n    """Holds nothing."""\n', encoding="utf-8")
    page = f"::: docs_probe\n\nSee [a missing name][{MISSING_PAGE_LINK}].\n"
    config = write_site(tmp_path, page, packages=["docs_probe"], root=tmp_path / "src")
    result = mkdocs_build(config, tmp_path / "site", cwd=tmp_path)
    return ProbeBuild(result.returncode, result.stderr, tmp_path / "site" / "index.html")


def test_strict_build_fails_on_missing_names(probe_build: ProbeBuild) -> None:
    """The throwaway site, with its missing names, fails ``mkdocs build --strict``."""
    assert probe_build.returncode != 0, f"strict build passed:\n{probe_build.stderr}"


@pytest.mark.parametrize(("role", "exists"), ROLE_CASES)
def test_docstring_role_is_checked(probe_build: ProbeBuild, role: str,
                                   exists: bool) -> None:
    """A role to a missing name is reported (file, line, role); one to an existing or an
    outside name is not."""
    reported = [line for line in probe_build.stderr.splitlines() if "names nothing" in line]
    named = [line for line in reported if role in line]
    if exists:
        assert not named, f"{role} reported as missing: {named}"
    else:
        assert len(named) == 1 and "docs_probe/__init__.py:" in named[0], (
            f"{role} not reported once with its file; reported: {reported}")


def test_role_to_existing_name_links(probe_build: ProbeBuild) -> None:
    """A role to a rendered object becomes a link to its heading (strict mode aborts after the
    pages are written)."""
    assert probe_build.page.is_file(), f"no page written:\n{probe_build.stderr}"
    assert 'href="#docs_probe.present"' in probe_build.page.read_text(encoding="utf-8")


def test_page_link_to_missing_name_fails(probe_build: ProbeBuild) -> None:
    """An autorefs link in a page to a name that does not exist is reported."""
    assert MISSING_PAGE_LINK in probe_build.stderr, probe_build.stderr
