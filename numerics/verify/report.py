"""A verification report on disk and as text: write it, read it back, print its table.

:func:`write_report` writes ``report.json`` (:meth:`numerics.VerifyReport.to_dict`),
``config.json`` (the run's settings) and the figures of :mod:`numerics.plots` into one
directory; :func:`load_report` reads ``report.json`` back into a :class:`VerifyReport`;
:func:`format_report` is the table ``python -m numerics verify`` prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from numerics.io import write_json_atomic
from numerics.verify.evaluation import LOSS_KEYS
from numerics.verify.job import VerifyReport
from theory.errors import InductionHeadsError, require
from theory.limit.prediction import LimitPrediction
from theory.limit.ranking import jsonable
from theory.notation import head_set_label

__all__ = ["REPORT_NAME", "write_report", "load_report", "format_report"]

REPORT_NAME = "report.json"
"""File name of the report inside an output directory."""


def write_report(report: VerifyReport, out_dir: str | Path) -> list[Path]:
    """Write ``report.json``, ``config.json`` and the PNG figures of :mod:`numerics.plots`.

    The JSON files are written atomically (a temporary file renamed into place), so an
    interrupted write never leaves a truncated report.

    Args:
        report: a :class:`VerifyReport`.
        out_dir: the output directory (created if missing).

    Returns:
        The written paths: the two JSON files, then the figures.
    """
    from numerics.plots import save_report_figures

    require(isinstance(report, VerifyReport), "report", "a VerifyReport", type(report).__name__)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = report.to_dict()
    paths = [out / REPORT_NAME, out / "config.json"]
    write_json_atomic(paths[0], data, indent=1)
    write_json_atomic(paths[1], data["config"], indent=2)
    return paths + save_report_figures(data, out)


def load_report(path: str | Path) -> VerifyReport:
    """Read a report written by :func:`write_report`.

    Args:
        path: ``report.json`` or the directory holding it.

    Raises:
        InductionHeadsError: when the file is missing, not UTF-8 JSON, or not a report.
    """
    p = Path(path)
    if p.is_dir():
        p = p / REPORT_NAME
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InductionHeadsError(f"report: expected a readable UTF-8 JSON file written by "
                                  f"write_report, received {str(p)!r} ({err})") from None
    return VerifyReport.from_dict(data)


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list) and all(isinstance(v, int) for v in value):
        return head_set_label(value)
    if isinstance(value, list):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return str(value)


def format_report(report: VerifyReport | dict[str, Any]) -> str:
    """The check table, held-out and training-sample losses (with floor hits) and notes as text.

    Args:
        report: a :class:`VerifyReport` or its :meth:`~VerifyReport.to_dict`.
    """
    data = report.to_dict() if isinstance(report, VerifyReport) else report
    prediction, learned = LimitPrediction.from_dict(data["predicted"]), data["learned"]
    exact, initial = prediction.exact, prediction.initial
    pred = {"selected_set": list(prediction.selected_set), "runner_up": list(exact.runner_up),
            "margin_se": jsonable(exact.margin_se), "decidable": exact.decidable,
            "samples": exact.samples,
            "stage1_samples": None if initial is None else initial.samples}
    kind = data["config"].get("model_kind", "simplified")
    head = (f"model {kind}: predicted S* = {_fmt(pred['selected_set'])} "
            f"(runner-up {_fmt(pred['runner_up'])}, margin {pred['margin_se'] or 0:.1f} SE, "
            f"decidable: {pred['decidable']})")
    if "selected_set" in learned:
        head += (f"; learned argmax c̃ = {_fmt(learned['selected_set'])}, "
                 f"a = {learned['temperature']:.4f}")
    lines = [head]
    target = data.get("target")
    if target:
        sample = target.get("training_sample") or {}
        lines.append(f"checked against {_fmt(target['set'])} ({target['basis']}; samples used "
                     f"{_fmt(pred.get('samples'))} for G_L, {_fmt(pred.get('stage1_samples'))} at "
                     f"the initial copier; training-sample stage 1: "
                     f"{_fmt(sample.get('selected_set'))} with predicted c̃ "
                     f"{_fmt(sample.get('selected_weight'))})")
    if learned.get("effective_set") is not None:
        lines.append(f"probe: effective set {_fmt(learned['effective_set'])} (runner-up "
                     f"{_fmt(learned.get('effective_runner_up'))} by "
                     f"{_fmt(learned.get('effective_margin_se'))} SE), settled from step "
                     f"{_fmt(learned.get('settled_step'))}; first-layer heads (peak offset, "
                     f"mass): {_fmt(learned.get('first_layer'))}")
    lines.append("")
    rows = [("check", "predicted", "measured", "tolerance", "result")]
    rows += [(c["name"], _fmt(c["predicted"]), _fmt(c["measured"]), _fmt(c["tolerance"]),
              "PASS" if c["passed"] else "FAIL") for c in data["checks"]]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for k, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += ["", "notes per check:"]
    lines += [f"  {c['name']}: {c['note']}" for c in data["checks"] if c.get("note")]
    losses = data["losses"]
    lines += [""]
    for name, scores in (("held-out", losses), ("training-sample", data.get("losses_train"))):
        if scores is None:
            continue
        hits = scores.get("floor_hits") or {}
        lines += [f"{name} loss (nats) over {scores.get('sequences')} sequences; [k] = sequences "
                  f"at the loss floor:"]
        lines += ["  " + ", ".join(f"{k} {_fmt(scores.get(k))}"
                                   + (f" [{hits[k]}]" if hits.get(k) else "") for k in LOSS_KEYS)]
    best = losses.get("best_gih")
    if best:
        lines += ["held-out GIH loss of every head set at its best temperature (fitted on "
                  "another sample): " + ", ".join(f"{k} {_fmt(v['loss'])}"
                                                  for k, v in best["by_set"].items())]
    lines += [f"temperatures: trained a {_fmt(losses['trained_a'])}, "
              f"a*(L) {_fmt(losses['a_star'])}"]
    lines += [f"note: {n}" for n in data.get("notes", [])]
    return "\n".join(lines)
