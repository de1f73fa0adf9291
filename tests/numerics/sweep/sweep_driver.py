"""A sweep run as its own process, for the tests that signal or kill it.

    python sweep_driver.py SPEC.json OUT EXECUTOR WORKERS MARKERS

runs ``python -m numerics sweep`` after replacing ``numerics.verify.job.verify_case`` by one
whose behaviour per case seed comes from the JSON object in ``SWEEP_DRIVER_ACTIONS``:
``"memory"`` raises ``MemoryError``, ``"runtime"`` raises ``RuntimeError("boom")``, ``"die"``
kills its process with SIGKILL (as the kernel's out-of-memory killer would), a number
``s`` writes ``MARKERS/started-<seed>`` and sleeps ``s`` seconds before running the case; other
seeds run as they are. The replacement is made when this file is imported, so the process
pool's spawned workers (which import it as ``__mp_main__``) get it too.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numerics.verify.job as job

_REAL = job.verify_case
_ACTIONS = json.loads(os.environ.get("SWEEP_DRIVER_ACTIONS", "{}"))
_MARKERS = Path(os.environ.get("SWEEP_DRIVER_MARKERS", "."))


def _verify_case(*args, seed: int = 0, **kwargs):
    action = _ACTIONS.get(str(seed))
    if action == "memory":
        raise MemoryError
    if action == "runtime":
        raise RuntimeError("boom")
    if action == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    if isinstance(action, (int, float)):
        (_MARKERS / f"started-{seed}").write_text(str(os.getpid()), encoding="utf-8")
        time.sleep(action)
    return _REAL(*args, seed=seed, **kwargs)


job.verify_case = _verify_case

if __name__ == "__main__":
    from numerics.__main__ import main

    spec, out, executor, workers = sys.argv[1:5]
    sys.exit(main(["sweep", spec, "--out", out, "--executor", executor, "--workers", workers,
                   "--no-progress", "--no-figures"]))
