"""The probe's report survives a JSON round trip (``numerics.probing.report``)."""

from __future__ import annotations

import json

import numpy as np
import torch
from strategies import PROBE_D as D
from strategies import PROBE_L as L
from strategies import probe_paper

from numerics import InductionHeadModel
from numerics.probing import ProbeReport, attention_taps
from theory import PAPER_MODEL


def test_report_json_round_trip(held_out, limit):
    tf = InductionHeadModel.at_limit(PAPER_MODEL, D, selected_set=(1, 2), a=6.0,
                                     dtype=torch.float64)
    report = probe_paper(tf, held_out, limit, attention=attention_taps(tf),
                    per_position=lambda ctx: np.full((len(ctx), L, D), 1.0 / D))
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert ProbeReport.from_dict(json.loads(text)) == report
    assert "effective set (1, 2)" in report.summary()

