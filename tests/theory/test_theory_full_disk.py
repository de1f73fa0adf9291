"""``python -m theory predict --json`` on a full disk: one error line, no partial file, and a
previous file at the path kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from disks import FULL_DISKS, full_disk

from theory.__main__ import main

PREDICT = ["predict", "--heads", "2", "--window", "2", "--degree", "1", "--samples", "50"]


@pytest.mark.parametrize("how", FULL_DISKS)
def test_predict_json_on_a_full_disk_leaves_no_partial_file(
        tmp_path: Path, how: str, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with full_disk(tmp_path / "disk", how, monkeypatch) as disk:
        disk = disk.path
        assert main([*PREDICT, "--json", str(disk / "new.json")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --json: expected a writable path") and \
            len(err.splitlines()) == 1, err
        assert sorted(p.name for p in disk.iterdir() if p.name != "filler") == []
    previous = tmp_path / "old.json"
    previous.write_text("previous")
    with full_disk(tmp_path / "disk2", how, monkeypatch) as disk:
        disk = disk.path
        if how == "tmpfs":
            previous = disk / "old.json"
            previous.write_text("")                   # the only file that fits
        before = previous.read_text()
        assert main([*PREDICT, "--json", str(previous)]) == 2
        assert previous.read_text() == before
        assert not [p for p in previous.parent.iterdir() if p.name.endswith(".tmp")]
