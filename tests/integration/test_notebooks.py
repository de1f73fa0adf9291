"""The walkthrough notebooks: stored clean, thin, and executable at the small size.

``numerics.experiments.support`` (the helpers they call; their training runs are in
``numerics.experiments.runs``) is tested first. Fast tests read every notebook without running it:
no outputs, a markdown opening, a closing "What we found" markdown cell, the size switch,
imports from ``theory``/``numerics``/``proofs`` and stdlib/numpy/matplotlib/sympy only (and the
model libraries in the notebook that reads an outside model), and no
function longer than a few lines. The slow test
executes each notebook with nbclient (kernel ``python3``) in a temporary working directory with
``INDUCTION_HEADS_NOTEBOOK_SIZE=small``.
"""

from __future__ import annotations

import ast
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from strategies import ROOT

from numerics.experiments import (
    SIZE_ENV,
    by_size,
    format_table,
    model_taps,
    notebook_size,
    research_size,
)
from theory import (
    PAPER_MODEL,
    PAPER_SOURCE,
    InductionHeadsError,
    gih_loss_and_grad,
    gih_predict,
    growth_coefficient,
    sample_sequences_np,
)

nbformat = pytest.importorskip("nbformat", reason="the 'notebooks' extra is not installed")

NOTEBOOK_DIR = ROOT / "notebooks"
EXPECTED = ("01_limiting_model.ipynb", "02_which_parents.ipynb", "03_training_dynamics.ipynb",
            "04_generalization.ipynb", "05_scale_on_gpu.ipynb", "06_read_your_own_model.ipynb",
            "07_structure_varies.ipynb")
ALLOWED_TOP_LEVEL = frozenset({"theory", "numerics", "proofs", "numpy", "matplotlib", "sympy"})
"""Third-party or project packages a notebook may import (besides the standard library)."""
OUTSIDE_MODEL_IMPORTS = {"06_read_your_own_model.ipynb": frozenset({"torch", "transformers",
                                                                    "transformer_lens"})}
"""Further packages one notebook may import: "Read your own model" builds a Hugging Face and a
TransformerLens model from their configs in the notebook, because those config lines are what a
reader copies to probe a model of their own (the ``hf`` and ``lens`` extras)."""
MAX_FUNCTION_LINES = 4
"""No function longer than a few lines may live in a notebook: logic lives in the library, where
it is tested, and the notebook only calls it."""
CELL_TIMEOUT_S = 300
"""Per-cell limit when executing: the small size takes seconds per cell; this only stops hangs."""
SMALL_NOTEBOOK_BUDGET_S = 300
"""Whole-notebook limit at the small size: 10-40 s measured on a 2-core CPU, with wide room for a
machine shared with other jobs; a notebook that needs more is no longer 'small'."""

KAPPA_RTOL = 1e-4
"""-dℓ/da · e^a = κ n1 e^a/(n1 e^a + n0): at a = 12 the O(e^{-a}) correction is ~1e-5 relative."""
GIH_ATOL = 1e-12
"""The float64 limiting model and theory's GIH compute the same softmax: round-off only."""

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _code(cell) -> str:
    """A code cell's source as Python: IPython magics (``%...``, ``!...``) become comments."""
    lines = cell.source.splitlines()
    return "\n".join("# " + ln if ln.lstrip().startswith(("%", "!")) else ln for ln in lines)


# ------------------------------------------------------------------ numerics.experiments.support
def test_size_switch_has_a_full_tier_promoted_on_cuda():
    assert notebook_size({}) == "default"
    assert notebook_size({SIZE_ENV: " Full "}) == "full"
    with pytest.raises(InductionHeadsError, match="received 'huge'"):
        notebook_size({SIZE_ENV: "huge"})
    assert by_size("full", small=1, default=2) == 2  # no full value: falls back to default
    assert by_size("full", small=1, default=2, full=3) == 3
    assert by_size("small", small=1, default=2, full=3) == 1
    assert research_size("cuda", {}) == "full" and research_size("cpu", {}) == "default"
    assert research_size("cuda", {SIZE_ENV: "small"}) == "small"


def test_growth_coefficient_is_the_e_minus_a_coefficient():
    # x = 2,0,1,0,1,...,0 with S = (1,) and target 1: the n1 positions after a 0 all hold 1 and
    # no other does, so -dℓ/da = n0/(n1 e^a + n0) exactly and κ = n0/n1.
    L = 40
    ctx = np.array([[2] + [0, 1] * ((L - 2) // 2) + [0]])  # (1, L)
    n1 = (L - 2) // 2
    kappa = growth_coefficient(ctx, np.array([1]), (1,))
    assert kappa == pytest.approx((L - n1) / n1, rel=1e-12), kappa
    a = 12.0
    _, grad = gih_loss_and_grad(ctx, np.array([1]), (1,), a, vocab_size=3)
    assert -grad * np.exp(a) == pytest.approx(kappa, rel=KAPPA_RTOL), (-grad * np.exp(a), kappa)


def test_model_taps_at_the_limit_are_the_gih():
    tokens = sample_sequences_np(PAPER_SOURCE, 20, 31, rng=np.random.default_rng(0))
    taps = model_taps(PAPER_MODEL, 3, tokens[:, :-1], selected_set=(1, 2), a=4.0)
    gih = gih_predict(tokens[:, :-1], (1, 2), 4.0, vocab_size=3)
    assert np.abs(taps["output"] - gih).max() < GIH_ATOL
    init = model_taps(PAPER_MODEL, 3, tokens[:, :-1])
    assert init["selector.weights"] == pytest.approx(np.full(7, 1 / 7))


def test_format_table_aligns_columns():
    text = format_table([{"name": "a", "x": 0.5}, {"name": "long", "x": 12.25}], digits=2)
    assert text.splitlines() == ["name      x", "   a   0.50", "long  12.25"]


# ------------------------------------------------------------------------------ the notebooks
def test_every_expected_notebook_exists_and_no_other():
    assert tuple(p.name for p in NOTEBOOKS) == EXPECTED, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(path: Path):
    nb = _read(path)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert dirty == [], f"{path.name}: code cells {dirty} carry outputs or an execution count"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", nb.metadata


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_opens_with_what_it_shows_and_ends_with_what_it_found(path: Path):
    cells = _read(path).cells
    assert cells[0].cell_type == "markdown" and cells[0].source.lstrip().startswith("# "), \
        f"{path.name}: first cell should be a markdown title, got {cells[0].source[:60]!r}"
    assert "What this notebook shows" in cells[0].source, cells[0].source[:200]
    last = cells[-1]
    assert last.cell_type == "markdown" and last.source.lstrip().startswith("## What we found"), \
        f"{path.name}: last cell should be '## What we found', got {last.source[:60]!r}"
    assert len(last.source.split()) >= 40, f"{path.name}: findings too short: {last.source!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_imports_only_the_library_and_its_dependencies(path: Path):
    allowed = ALLOWED_TOP_LEVEL | set(sys.stdlib_module_names) | OUTSIDE_MODEL_IMPORTS.get(
        path.name, frozenset())
    found = set()
    for cell in _read(path).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(_code(cell))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: relative import"
                found.add(node.module.split(".")[0])
    assert found - allowed == set(), f"{path.name} imports {sorted(found - allowed)}"
    assert {"theory", "numerics", "proofs"} & found, f"{path.name} imports none of the library"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_defines_no_long_functions_and_reads_the_size(path: Path):
    source = "\n".join(_code(c) for c in _read(path).cells if c.cell_type == "code")
    long_defs = [(node.name, node.end_lineno - node.lineno + 1)
                 for node in ast.walk(ast.parse(source))
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                 and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long_defs == [], f"{path.name}: move these into numerics: {long_defs}"
    assert "notebook_size()" in source or "research_size(" in source, \
        f"{path.name} ignores the INDUCTION_HEADS_NOTEBOOK_SIZE switch"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes_at_small_size(path: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch):
    nbclient = pytest.importorskip("nbclient", reason="the 'notebooks' extra is not installed")
    from jupyter_client.kernelspec import KernelSpecManager

    assert "python3" in KernelSpecManager().find_kernel_specs(), \
        "no 'python3' kernel: install ipykernel (the 'notebooks' extra)"
    monkeypatch.setenv("INDUCTION_HEADS_NOTEBOOK_SIZE", "small")
    # One intra-op thread in the kernel: on a shared 2-core machine torch's thread pool otherwise
    # oversubscribes the cores and the small runs slow down several-fold.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in NOTEBOOK_DIR.iterdir())
    nb = _read(path)
    started = time.perf_counter()
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    seconds = time.perf_counter() - started
    assert seconds <= SMALL_NOTEBOOK_BUDGET_S, f"{path.name}: {seconds:.0f} s at the small size"
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    errors = [o for o in outputs if o.output_type == "error"]
    assert errors == [], f"{path.name}: {[(e.ename, e.evalue) for e in errors]}"
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "size=small" in printed, f"{path.name} did not report running at the small size"
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert images, f"{path.name}: no inline figure was rendered (every notebook draws some)"
    assert sorted(p.name for p in NOTEBOOK_DIR.iterdir()) == before, \
        f"{path.name} wrote into notebooks/"
