"""The tidy results table of a sweep: one row per case in ``results.csv``.

Columns (:func:`columns`): the case id; the source (``vocab_size``, ``parents``, ``prior_kind``,
``alpha``: the Dirichlet concentration, empty for other priors) and model (``heads``, ``window``,
``degree``) fields; ``seed``, ``mode``, ``seq_len``, ``sequences``, ``heldout``,
``prediction_samples``; the prediction (``predicted_set`` S*, ``decidable``, ``margin_se``,
``samples_used``, ``stage1_set``); the target of the checks (``target_set``, ``target_basis``);
``learned_set`` (the argmax of the trained selector); ``agrees`` (learned set == S*); one
``check_<name>`` pass flag per check of the model kind (:data:`CHECKS`) and ``passed``; the
held-out losses ``loss_model``, ``loss_gih`` (the GIH on the target set at the trained ``a``),
``loss_bayes``, ``loss_oracle``; ``error``, empty unless the case raised an
:class:`theory.errors.InductionHeadsError` (training diverged, sizes refused), whose message it
then holds, with the result columns empty and ``passed`` False (:func:`error_row`: one failing
case does not stop a sweep); ``seconds``; and ``config``, the case's canonical JSON.

Sets are written as ``1+2`` (``{}`` for the empty set), booleans as ``True``/``False``, floats
with ``repr`` (so equal results give equal text). Rows are appended and flushed one at a time, so
a killed run leaves complete rows and at most one cut-off last line, which :func:`read_rows`
drops (a row counts only with every field and a ``config`` that hashes to its ``case_id``);
:func:`sort_table` rewrites the file in case-id order.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from numerics.sweep.spec import case_id
from theory.errors import InductionHeadsError

__all__ = ["CHECKS", "RESULTS_NAME", "columns", "report_row", "error_row", "read_rows",
           "append_row",
           "sort_table", "format_set", "parse_set"]

RESULTS_NAME = "results.csv"
"""File name of the table in the sweep's output directory."""
CHECKS = {
    "simplified": ("selector", "copier", "untouched_heads", "temperature", "gih_agreement",
                   "loss_vs_gih", "probe_agreement"),
    "full": ("selector", "untouched_heads", "effective_set", "loss_vs_best_gih", "first_layer"),
}
"""The checks :func:`numerics.verify.verify_case` runs, in table order, by model kind."""
logger = logging.getLogger(__name__)

_HEAD = ("case_id", "vocab_size", "parents", "prior_kind", "alpha", "heads", "window", "degree",
         "seed", "mode", "seq_len", "sequences", "heldout", "prediction_samples",
         "predicted_set", "decidable", "margin_se", "samples_used", "stage1_set", "target_set",
         "target_basis", "learned_set", "agrees")
_TAIL = ("passed", "loss_model", "loss_gih", "loss_bayes", "loss_oracle", "error", "seconds",
         "config")


def columns(model_kind: str) -> tuple[str, ...]:
    """The header of a sweep of ``model_kind`` (module docstring)."""
    return _HEAD + tuple(f"check_{name}" for name in CHECKS[model_kind]) + _TAIL


def format_set(heads: Iterable[int] | None) -> str:
    """``(1, 2)`` -> ``"1+2"``, ``()`` -> ``"{}"``, None -> ``""``."""
    if heads is None:
        return ""
    heads = [int(h) for h in heads]
    return "+".join(str(h) for h in heads) if heads else "{}"


def parse_set(text: str) -> tuple[int, ...] | None:
    """Inverse of :func:`format_set`."""
    if text == "":
        return None
    return () if text == "{}" else tuple(int(h) for h in text.split("+"))


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
    names = tuple(c.name for c in report.checks)
    if names != CHECKS[kind]:
        raise InductionHeadsError(f"report checks: expected {list(CHECKS[kind])} for model "
                                  f"kind {kind!r}, received {list(names)}")
    pred, target, losses = report.prediction, report.target or {}, report.losses
    row = {
        **_case_fields(case_id, config, config_json),
        "predicted_set": format_set(pred.selected_set),
        "decidable": str(bool(pred.exact.decidable)),
        "margin_se": _number(pred.exact.margin_se), "samples_used": str(int(pred.exact.samples)),
        "stage1_set": format_set(None if pred.initial is None else pred.initial.best),
        "target_set": format_set(target.get("set")), "target_basis": target.get("basis", ""),
        "learned_set": format_set(report.learned["selected_set"]),
        "agrees": str(tuple(report.learned["selected_set"]) == tuple(pred.selected_set)),
        "passed": str(bool(report.passed)), "loss_model": _number(losses.get("model")),
        "loss_gih": _number(losses.get("gih_trained_a")),
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
        "parents": format_set(source["parents"]), "prior_kind": prior["kind"],
        "alpha": _number(prior["alpha"]) if prior["kind"] == "dirichlet" else "",
        "heads": str(model["heads"]), "window": str(model["window"]),
        "degree": str(model["degree"]), "seed": str(config["seed"]), "mode": config["mode"],
        "seq_len": str(config["seq_len"]), "sequences": str(config["sequences"]),
        "heldout": str(config["heldout"]),
        "prediction_samples": str(config["prediction_samples"]), "config": config_json}


def read_rows(path: Path, header: Sequence[str]) -> list[dict[str, str]]:
    """The rows of an existing table (none when ``path`` does not exist).

    Raises:
        InductionHeadsError: when the file's header is not ``header`` (another sweep's table).
    """
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        found = list(reader.fieldnames or [])
        if found != list(header):
            raise InductionHeadsError(f"{path}: expected a results table with columns "
                                      f"{list(header)}, received {found}")
        rows = list(reader)
    complete = [row for row in rows if _complete(row)]
    if len(complete) < len(rows):
        logger.warning("%s: dropped %d incomplete row(s) (a run stopped while writing)", path,
                       len(rows) - len(complete))
    return complete


def _complete(row: Mapping[str | None, Any]) -> bool:
    """Whether a read row has every field and a config whose id is the row's case id."""
    if None in row or None in row.values():
        return False
    try:
        return case_id(json.loads(row["config"])) == row["case_id"]
    except (ValueError, TypeError):
        return False


def append_row(path: Path, header: Sequence[str], row: Mapping[str, str]) -> None:
    """Append one row (the header first, when the file is new or empty) and flush it to disk."""
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(header))
        if new:
            writer.writeheader()
        writer.writerow(dict(row))
        fh.flush()
        os.fsync(fh.fileno())


def sort_table(path: Path, header: Sequence[str]) -> list[dict[str, str]]:
    """Rewrite the table in case-id order (atomically, through a temporary file); its rows."""
    rows = sorted(read_rows(path, header), key=lambda r: r["case_id"])
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(header))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return rows
