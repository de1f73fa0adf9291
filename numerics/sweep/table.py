"""The tidy results table of a sweep: one row per case in ``results.csv``.

Columns (:func:`columns`): the case id; the source (``vocab_size``, ``parents``, ``prior_kind``,
``alpha``: the Dirichlet concentration, empty for other priors) and model (``heads``, ``window``,
``degree``) fields; ``seed``, ``mode``, ``seq_len``, ``sequences``, ``heldout``,
``prediction_samples``; the prediction, by the names of the report's ``predicted`` block
(``selected_set`` S*, ``decidable``, ``margin_se``, ``samples``, ``stage1_set``); the other
report blocks' fields prefixed by their block: the target of the checks (``target_set``,
``target_basis``), ``learned_selected_set`` (the argmax of the trained selector), the held-out
losses ``loss_model``, ``loss_gih_trained_a`` (the GIH on the target set at the trained ``a``),
``loss_bayes``, ``loss_oracle``; ``agrees`` (learned set == S*); one ``check_<name>`` pass flag
per check of the model kind (its registry entry's ``checks``,
:data:`numerics.training.KINDS`) and ``passed``; ``error``, empty unless the case raised (an
:class:`theory.errors.InductionHeadsError`: training diverged, sizes refused, whose message it
then holds; or any other exception, as ``Type: message``), with the result columns empty and
``passed`` False (:func:`error_row`: one failing case does not stop a sweep); ``seconds``; and
``config``, the case's canonical JSON.

Head sets (and ``parents``) are written as their label ``(1, 2)`` (``()`` for the empty set;
:func:`numerics.io.format_head_set`, read back by :func:`numerics.io.parse_head_set`), booleans
as ``True``/``False``, floats with ``repr`` (so equal results give equal text; ``inf`` for an
infinite margin). :func:`read_rows` also reads tables written with the older column names
(:data:`OLD_COLUMNS`) and set spelling ``1+2``, and returns them in the current form. Rows are
appended and flushed one at a time, so a killed run leaves complete rows and at most one
cut-off last line, which :func:`read_rows` drops (a row counts only with every field and a
``config`` that hashes to its ``case_id``); :func:`sort_table` rewrites the file in case-id
order.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from numerics.io import format_head_set, parse_head_set, write_csv_atomic
from numerics.sweep.spec import case_id
from numerics.training.kinds import get_kind
from theory.errors import InductionHeadsError

__all__ = ["RESULTS_NAME", "OLD_COLUMNS", "SET_COLUMNS", "columns", "report_row",
           "error_row", "read_rows", "append_row", "sort_table"]

RESULTS_NAME = "results.csv"
"""File name of the table in the sweep's output directory."""
logger = logging.getLogger(__name__)

_HEAD = ("case_id", "vocab_size", "parents", "prior_kind", "alpha", "heads", "window", "degree",
         "seed", "mode", "seq_len", "sequences", "heldout", "prediction_samples",
         "selected_set", "decidable", "margin_se", "samples", "stage1_set", "target_set",
         "target_basis", "learned_selected_set", "agrees")
_TAIL = ("passed", "loss_model", "loss_gih_trained_a", "loss_bayes", "loss_oracle", "error",
         "seconds", "config")

OLD_COLUMNS = {"predicted_set": "selected_set", "samples_used": "samples",
               "learned_set": "learned_selected_set", "loss_gih": "loss_gih_trained_a"}
"""Column names of older tables and the current names :func:`read_rows` gives them."""

SET_COLUMNS = ("parents", "selected_set", "stage1_set", "target_set", "learned_selected_set")
"""The columns holding a head set (or the source's parent offsets)."""


def columns(model_kind: str) -> tuple[str, ...]:
    """The header of a sweep of ``model_kind`` (module docstring)."""
    return _HEAD + tuple(f"check_{name}" for name in get_kind(model_kind).checks) + _TAIL


def _number(value: Any) -> str:
    return "" if value is None else repr(float(value))


def report_row(case_id: str, config: Mapping[str, Any], config_json: str, report: Any
               ) -> dict[str, str]:
    """The table row of one finished case.

    Args:
        case_id: the case's id.
        config: the case dict (:class:`numerics.sweep.spec.Case` ``config``).
        config_json: its canonical JSON.
        report: the case's :class:`numerics.verify.VerifyReport`.

    Returns:
        ``{column: text}`` for every column of :func:`columns`.

    Raises:
        InductionHeadsError: when the report's checks are not those of its model kind.
    """
    kind = config["model_kind"]
    names, expected = tuple(c.name for c in report.checks), get_kind(kind).checks
    if names != expected:
        raise InductionHeadsError(f"report checks: expected {list(expected)} for model "
                                  f"kind {kind!r}, received {list(names)}")
    pred, target, losses = report.prediction, report.target or {}, report.losses
    row = {
        **_case_fields(case_id, config, config_json),
        "selected_set": format_head_set(pred.selected_set),
        "decidable": str(bool(pred.exact.decidable)),
        "margin_se": _number(pred.exact.margin_se), "samples": str(int(pred.exact.samples)),
        "stage1_set": format_head_set(None if pred.initial is None else pred.initial.best),
        "target_set": format_head_set(target.get("set")), "target_basis": target.get("basis", ""),
        "learned_selected_set": format_head_set(report.learned["selected_set"]),
        "agrees": str(tuple(report.learned["selected_set"]) == tuple(pred.selected_set)),
        "passed": str(bool(report.passed)), "loss_model": _number(losses.get("model")),
        "loss_gih_trained_a": _number(losses.get("gih_trained_a")),
        "loss_bayes": _number(losses.get("bayes")), "loss_oracle": _number(losses.get("oracle")),
        "error": "", "seconds": f"{report.seconds:.3f}"}
    row.update({f"check_{c.name}": str(bool(c.passed)) for c in report.checks})
    return {k: row[k] for k in columns(kind)}


def error_row(case_id: str, config: Mapping[str, Any], config_json: str, message: str,
              seconds: float) -> dict[str, str]:
    """The table row of a case that raised: its case fields, ``passed`` False, ``error``
    the message (one line), the result columns empty."""
    row = dict.fromkeys(columns(config["model_kind"]), "")
    row.update(_case_fields(case_id, config, config_json))
    row.update({"passed": "False", "error": " ".join(str(message).split()),
                "seconds": f"{seconds:.3f}"})
    return row


def _case_fields(case_id: str, config: Mapping[str, Any], config_json: str) -> dict[str, str]:
    """The columns a case's config fixes (id, source, model, seed, mode, sizes, config)."""
    source, model, prior = config["source"], config["model"], config["source"]["prior"]
    return {
        "case_id": case_id, "vocab_size": str(source["vocab_size"]),
        "parents": format_head_set(source["parents"]), "prior_kind": prior["kind"],
        "alpha": _number(prior["alpha"]) if prior["kind"] == "dirichlet" else "",
        "heads": str(model["heads"]), "window": str(model["window"]),
        "degree": str(model["degree"]), "seed": str(config["seed"]), "mode": config["mode"],
        "seq_len": str(config["seq_len"]), "sequences": str(config["sequences"]),
        "heldout": str(config["heldout"]),
        "prediction_samples": str(config["prediction_samples"]), "config": config_json}


def read_rows(path: Path, header: Sequence[str]) -> list[dict[str, str]]:
    """The rows of an existing table (none when ``path`` does not exist), in the current form
    (an older table's columns renamed by :data:`OLD_COLUMNS` and its sets relabelled).

    Raises:
        InductionHeadsError: when the file's header is not ``header`` (another sweep's table).
    """
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        found = [OLD_COLUMNS.get(name, name) for name in reader.fieldnames or []]
        older = found != list(reader.fieldnames or [])
        if found != list(header):
            raise InductionHeadsError(f"{path}: expected a results table with columns "
                                      f"{list(header)}, received {found}")
        rows = list(reader)
    if older:
        rows = [_current(row) for row in rows]
    complete = [row for row in rows if _complete(row)]
    if len(complete) < len(rows):
        logger.warning("%s: dropped %d incomplete row(s) (a run stopped while writing)", path,
                       len(rows) - len(complete))
    return complete


def _current(row: Mapping[str | None, Any]) -> dict[str | None, Any]:
    """A row of an older table with the current column names and set spelling."""
    out = {OLD_COLUMNS.get(k, k) if k is not None else None: v for k, v in row.items()}
    for name in SET_COLUMNS:
        if isinstance(out.get(name), str):
            try:
                out[name] = format_head_set(parse_head_set(out[name]))
            except InductionHeadsError:
                pass                # a cut-off row: _complete decides
    return out


def _complete(row: Mapping[str | None, Any]) -> bool:
    """Whether a read row has every field and a config whose id is the row's case id."""
    if None in row or None in row.values():
        return False
    try:
        return case_id(json.loads(row["config"])) == row["case_id"]
    except (ValueError, TypeError):
        return False


def append_row(path: Path, header: Sequence[str], row: Mapping[str, str]) -> None:
    """Append one row (the header first, when the file is new or empty) and flush it to disk.

    Raises:
        InductionHeadsError: when the row cannot be written (a full disk, a removed directory);
            a row cut off by the failure is dropped by the next :func:`read_rows`.
    """
    try:
        new = not path.exists() or path.stat().st_size == 0
        with path.open("a", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(header))
            if new:
                writer.writeheader()
            writer.writerow(dict(row))
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        raise InductionHeadsError(f"--out: expected room to append a row to the results table "
                                  f"{str(path)!r}, received an error writing it "
                                  f"({err.strerror or err}); the rows before it are kept, rerun "
                                  "to resume") from None


def sort_table(path: Path, header: Sequence[str]) -> list[dict[str, str]]:
    """Rewrite the table in case-id order (:func:`numerics.io.write_csv_atomic`); its rows."""
    rows = sorted(read_rows(path, header), key=lambda r: r["case_id"])
    write_csv_atomic(path, header, rows)
    return rows
