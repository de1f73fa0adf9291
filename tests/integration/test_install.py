"""The distribution installs theory, numerics and proofs (and only them) and imports from anywhere.

A copy of the checkout (without caches or build outputs, so nothing is written into the checkout)
is installed with ``pip install --no-deps --no-build-isolation --no-index --target SITE``: no
network, setuptools from the current environment. The packages are then imported in a fresh
interpreter whose working directory is outside the checkout and whose ``PYTHONPATH`` is SITE
only; the dependencies (numpy, torch, ...) come from the current environment's site-packages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from strategies import ROOT

pytestmark = pytest.mark.slow

PACKAGES = ("theory", "numerics", "proofs")
IGNORE = shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", "build", "dist", "results",
                                ".pytest_cache", ".hypothesis", ".ruff_cache", "*.pt",
                                ".ipynb_checkpoints", ".whl", ".gl")
PIP_TIMEOUT_S = 300
"""Building and installing the wheel offline takes a few seconds; generous for a loaded machine."""

PROBE = """
import importlib, json, pkgutil, sys
import theory, numerics, proofs
modules = {}
for pkg in (theory, numerics, proofs):
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        modules[info.name] = importlib.import_module(info.name).__file__
print(json.dumps({"packages": {p.__name__: p.__file__ for p in (theory, numerics, proofs)},
                  "modules": modules, "cwd_on_path": [p for p in sys.path if p in ("", ".")]}))
"""


def _env(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return {**env, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("install")
    src, target = root / "src", root / "site"
    shutil.copytree(ROOT, src, ignore=IGNORE)
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps",
                           "--no-build-isolation", "--no-index", "--disable-pip-version-check",
                           "--target", str(target), str(src)], capture_output=True, text=True,
                          timeout=PIP_TIMEOUT_S, cwd=root)
    assert proc.returncode == 0, f"pip install failed:\n{proc.stdout}\n{proc.stderr}"
    return target


def test_only_the_three_packages_are_installed(site: Path) -> None:
    top = {p.name for p in site.iterdir() if p.name != "bin"}
    dist_info = {n for n in top if n.endswith(".dist-info")}
    assert top - dist_info == set(PACKAGES), f"installed top-level entries: {sorted(top)}"
    assert [n.split("-")[0] for n in dist_info] == ["induction_heads"], dist_info


def test_every_module_of_the_checkout_is_installed(site: Path) -> None:
    for pkg in PACKAGES:
        ours = {p.relative_to(ROOT).as_posix() for p in (ROOT / pkg).rglob("*.py")
                if "__pycache__" not in p.parts}
        installed = {p.relative_to(site).as_posix() for p in (site / pkg).rglob("*.py")}
        assert ours == installed, f"{pkg}: missing {sorted(ours - installed)}, " \
                                  f"extra {sorted(installed - ours)}"


def test_imports_from_outside_the_checkout(site: Path, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          cwd=tmp_path, env=_env(site), timeout=PIP_TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(found["packages"]) == set(PACKAGES)
    for name, file in {**found["packages"], **found["modules"]}.items():
        path = Path(file).resolve()
        assert path.is_relative_to(site.resolve()), f"{name} imported from {path}, not {site}"
        assert not path.is_relative_to(ROOT), f"{name} imported from the checkout: {path}"
    assert len(found["modules"]) >= 10, sorted(found["modules"])


@pytest.mark.parametrize("package", ["theory", "numerics"])
def test_command_lines_run_from_the_install(site: Path, tmp_path: Path, package: str) -> None:
    proc = subprocess.run([sys.executable, "-m", package, "--help"], capture_output=True,
                          text=True, cwd=tmp_path, env=_env(site), timeout=PIP_TIMEOUT_S)
    assert proc.returncode == 0 and f"python -m {package}" in proc.stdout, proc.stderr
