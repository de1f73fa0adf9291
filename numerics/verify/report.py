"""A verification report: the record, on disk and as text.

:class:`VerifyReport` is what :func:`numerics.verify_case` returns for every model kind;
:func:`write_report` writes ``report.json`` (:meth:`numerics.VerifyReport.to_dict`),
``config.json`` (the run's settings) and the figures of :mod:`numerics.plots` into one
directory; :func:`load_report` reads ``report.json`` back into a :class:`VerifyReport`;
:func:`format_report` is the table ``python -m numerics verify`` prints.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from numerics.io import from_json_float, to_json, write_json_atomic
from numerics.probing import DECIDED, UNDECIDED
from numerics.training import TrainingHistory, get_kind
from numerics.verify.checks import Check
from numerics.verify.evaluation import LOSS_KEYS
from theory.errors import InductionHeadsError, require
from theory.limit.prediction import LimitPrediction
from theory.notation import head_set_label, json_float
from theory.validation import is_real, parse_field

__all__ = ["REPORT_NAME", "VerifyReport", "write_report", "load_report", "format_report"]

REPORT_NAME = "report.json"
"""File name of the report inside an output directory."""


@dataclass(frozen=True, eq=False)
class VerifyReport:
    """The outcome of :func:`verify_case`.

    Attributes:
        config: the run's settings (``model_kind``, seed, sizes, source, model, train config;
            ``architecture`` for the standard transformer) as a JSON dict.
        prediction: the predicted limit.
        history: the logged training trajectory (a :class:`numerics.training.standard.
            StandardHistory` for the standard transformer).
        checks: the checks in table order.
        passed: every check passed.
        learned: :func:`numerics.training.learned_summary` of the history (``selected_set``,
            ``selector_weights``, ``copier_mass``, ``temperature``, ... for a kind with a
            selector; the evaluation losses for the standard transformer) and
            :func:`numerics.verify.evaluation.probe_summary` (``effective_set``,
            ``settled_step``, ``first_layer``, ...).
        losses: held-out losses read from the final probe
            (:func:`numerics.verify.evaluation.losses_view`): ``model``, ``gih_trained_a``,
            ``gih_a_star``, ``gih_inf``, ``bayes`` (every prior), ``oracle``, with ``a_star``,
            ``trained_a``, ``sequences`` and ``floor_hits``; ``best_gih``
            (:func:`numerics.verify.evaluation.best_gih_view`) where the kind's checks read it.
        seconds: wall-clock time of :func:`verify_case` (not part of the replayable content).
        notes: statements about the prediction (undecidable margin, inexpressible parents).
        curves: predicted trajectories (:func:`numerics.verify.curves.predicted_curves`).
        losses_train: the same keys as ``losses`` on the run's fixed sample (the training
            sample; a standard transformer's evaluation batch), ``oracle`` None (no kernels), or
            None for a report read from a file that does not hold them.
        probe: the final :class:`numerics.ProbeReport` on the held-out sample, as its
            ``to_dict()``, or None for a report read from a file that does not hold it.
        target: the set the checks are made against (the target set), with its basis
            (``set``, ``basis``, ``best``, ``training_sample``), or None for an older report.
    """

    config: dict[str, Any]
    prediction: LimitPrediction
    history: TrainingHistory
    checks: tuple[Check, ...]
    passed: bool
    learned: dict[str, Any]
    losses: dict[str, Any]
    seconds: float
    notes: tuple[str, ...] = ()
    curves: dict[str, Any] = field(default_factory=dict)
    losses_train: dict[str, Any] | None = None
    probe: dict[str, Any] | None = None
    target: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        """The model kind's name (``config["model_kind"]``; a name in
        :data:`numerics.training.KINDS`)."""
        return str(self.config.get("model_kind", "simplified"))

    def check(self, name: str) -> Check:
        """The check called ``name``."""
        names = [c.name for c in self.checks]
        require(name in names, "check name", f"one of {names}", name)
        return self.checks[names.index(name)]

    def to_dict(self) -> dict[str, Any]:
        """The content of ``report.json`` (JSON-ready; non-finite numbers become None)."""
        return to_json({
            "passed": self.passed, "config": self.config,
            "predicted": self.prediction.to_dict(), "learned": self.learned,
            "losses": self.losses, "losses_train": self.losses_train,
            "checks": [c.to_dict() for c in self.checks],
            "notes": list(self.notes), "curves": self.curves,
            "history": self.history.to_dict(), "seconds": self.seconds, "probe": self.probe,
            "target": self.target})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VerifyReport:
        """Rebuild a report from :meth:`to_dict` (the content of ``report.json``), checked.

        Every field must have the type :meth:`to_dict` writes (``passed`` and each check's
        ``passed`` booleans, ``seconds`` a number, the dict fields dicts or null where
        optional), ``passed`` must be the conjunction of the checks, and the prediction must be
        consistent (:meth:`theory.LimitPrediction.from_dict`: ``S*`` the argmax of its
        criterion, ``decidable`` the rule applied to its margins).

        Raises:
            InductionHeadsError: naming the first missing, malformed or inconsistent field
                (only this error).
        """
        require(isinstance(data, Mapping), "report", "a dict from VerifyReport.to_dict",
                type(data).__name__)
        missing = sorted({"passed", "config", "predicted", "learned", "losses", "checks",
                          "history", "seconds"} - set(map(str, data)))
        require(not missing, "report keys", "every key VerifyReport.to_dict writes",
                f"missing {missing}")
        config = _mapping(data, "config")
        checks_data = data["checks"]
        require(isinstance(checks_data, list) and all(isinstance(c, dict) for c in checks_data),
                "report checks", "a list of check dicts", type(checks_data).__name__)
        for k, c in enumerate(checks_data):
            require(isinstance(c.get("passed"), bool) and isinstance(c.get("name"), str),
                    f"report checks[{k}]", "a dict with a str 'name' and a bool 'passed'",
                    {key: c.get(key) for key in ("name", "passed")})
        checks = tuple(parse_field(f"report checks[{k}]", lambda c=c: Check.from_dict(c))
                       for k, c in enumerate(checks_data))
        passed = data["passed"]
        require(isinstance(passed, bool), "report passed", "true or false", passed)
        require(passed == all(c.passed for c in checks), "report passed",
                f"{all(c.passed for c in checks)} (every check passed)", passed)
        kind = parse_field("report config model_kind",
                           lambda: get_kind(config.get("model_kind", "simplified")))
        history = parse_field("report history",
                              lambda: kind.history_class.from_dict(data["history"]))
        prediction = parse_field("report predicted",
                                 lambda: LimitPrediction.from_dict(data["predicted"]))
        seconds = data["seconds"]
        require(is_real(seconds) and math.isfinite(seconds) and seconds >= 0, "report seconds",
                "a number >= 0", seconds)
        notes = data.get("notes", ())
        require(isinstance(notes, list | tuple) and all(isinstance(n, str) for n in notes),
                "report notes", "a list of strings", notes)
        return cls(dict(config), prediction, history, checks, passed,
                   _mapping(data, "learned"), _mapping(data, "losses"), float(seconds),
                   tuple(notes), _mapping(data, "curves", optional=True) or {},
                   _mapping(data, "losses_train", optional=True),
                   _mapping(data, "probe", optional=True),
                   _mapping(data, "target", optional=True))


def _mapping(data: Mapping[str, Any], key: str, *, optional: bool = False
             ) -> dict[str, Any] | None:
    """``data[key]`` as a dict (None for a missing or null optional field)."""
    value = data.get(key)
    if optional and value is None:
        return None
    require(isinstance(value, dict), f"report {key}",
            "a dict" + (" or null" if optional else ""), type(value).__name__)
    return dict(value)


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
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        # ValueError: malformed JSON, or an integer too long to convert.
        detail = " ".join(str(err).split())[:200]
        raise InductionHeadsError(f"report: expected a readable UTF-8 JSON file written by "
                                  f"write_report, received {str(p)!r} ({detail})") from None
    try:
        return VerifyReport.from_dict(data)
    except InductionHeadsError as err:
        raise InductionHeadsError(f"{err} (report file {str(p)!r})") from None


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
            "margin_se": json_float(exact.margin_se), "decidable": exact.decidable,
            "samples": exact.samples,
            "stage1_samples": None if initial is None else initial.samples}
    kind = data["config"].get("model_kind", "simplified")
    head = (f"model {kind}: predicted S* = {_fmt(pred['selected_set'])} "
            f"(runner-up {_fmt(pred['runner_up'])}, margin {from_json_float(pred['margin_se']) or 0:.1f} SE, "
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
    if learned.get("effective_closest") is not None or learned.get("effective_set") is not None:
        verdict = learned.get("effective_verdict", DECIDED)
        if verdict == DECIDED:
            read = f"effective set {_fmt(learned['effective_set'])}"
        elif verdict == UNDECIDED:
            read = (f"effective set undecided (within reach: "
                    f"{_fmt(learned.get('effective_within_reach'))})")
        else:
            read = f"no GIH fits (closest {_fmt(learned.get('effective_closest'))})"
        lines.append(f"probe: {read} (runner-up "
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
