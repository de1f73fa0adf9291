"""Run the cases of a sweep on an executor and keep the table in the output directory.

:func:`run_sweep` skips the cases whose id is already in ``results.csv`` (a rerun resumes a
stopped sweep), runs the others and appends each row as its case finishes, then sorts the table
by case id and draws the figures (:mod:`numerics.sweep.figures`).

Executors (:data:`EXECUTORS`):

    process  a local ``concurrent.futures.ProcessPoolExecutor`` of ``workers`` processes started
             with the ``"spawn"`` context; every worker starts with ``OMP_NUM_THREADS``,
             ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS`` set to ``threads`` (the environment
             of the parent while the pool lives, so it holds before the worker imports numpy or
             torch) and ``torch.set_num_threads(threads)``, so that ``workers * threads`` threads
             share the cores;
    dask     ``dask.distributed``: a ``LocalCluster(n_workers=workers, threads_per_worker=1)``
             whose worker processes get the same environment, or ``Client(scheduler)`` when a
             scheduler address is given (the workers there are started by whoever runs them;
             each case still sets ``torch.set_num_threads(threads)``);
    serial   every case in this process, one after the other, at ``threads`` torch threads.

A case's row depends only on its config (which holds its seed) and the torch thread count
(``numerics.verify.job``: the same seed and threads give the same report on the CPU), so every
executor writes the same rows apart from ``seconds``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import multiprocessing
import os
import platform
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from numerics.io import write_json_atomic
from numerics.run_directory import RESULT_NAMES, RunDirectory
from numerics.sweep.figures import FEATURES
from numerics.sweep.spec import Case
from numerics.sweep.table import RESULTS_NAME, append_row, columns, read_rows, sort_table
from theory.errors import InductionHeadsError, require
from theory.validation import is_int

__all__ = ["EXECUTORS", "THREAD_ENV", "SWEEP_JSON", "SweepResult", "run_case", "run_sweep"]

logger = logging.getLogger(__name__)

EXECUTORS = ("process", "dask", "serial")
"""Where the cases run (module docstring)."""
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Environment variables that cap the BLAS / OpenMP threads of a worker process."""
SWEEP_JSON = "sweep.json"
"""File name of the spec and environment record in the output directory."""


@dataclass(frozen=True)
class SweepResult:
    """The outcome of :func:`run_sweep`.

    Attributes:
        out: the output directory.
        rows: every row of the table, in case-id order.
        ran: ids of the cases run by this call, in completion order.
        skipped: cases already in the table when the call started.
        figures: the figure files written.
        seconds: wall-clock time of the call.
    """

    out: Path
    rows: tuple[dict[str, str], ...]
    ran: tuple[str, ...]
    skipped: int
    figures: tuple[Path, ...]
    seconds: float


def run_case(case_id: str, config_json: str, threads: int) -> dict[str, str]:
    """Run one case at ``threads`` torch threads; its table row (picklable for any executor).

    Args:
        case_id: the case's id.
        config_json: the case's canonical JSON (:attr:`numerics.sweep.spec.Case.config_json`).
        threads: torch intra-op threads.

    Returns:
        :func:`numerics.sweep.table.report_row` of the case's report, or
        :func:`numerics.sweep.table.error_row` when the case raised an
        :class:`~theory.errors.InductionHeadsError` (training diverged, sizes refused).
    """
    import torch

    from numerics.sweep.table import error_row, report_row
    from numerics.training.kinds import get_kind
    from numerics.verify.job import verify_case
    from theory.sources.spec import ModelSpec, Source

    config = json.loads(config_json)
    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    started = time.perf_counter()
    try:
        report = verify_case(
            Source.from_dict(config["source"]), ModelSpec.from_dict(config["model"]),
            seed=config["seed"],
            config=get_kind(config["model_kind"]).config_class.from_dict(config["train"]),
            heldout=config["heldout"], prediction_samples=config["prediction_samples"],
            kind=config["model_kind"], probe_history=config["probe_history"])
    except InductionHeadsError as err:  # a diverged run or refused sizes: a row, not a stop
        logger.warning("case %s failed: %s", case_id, err)
        return error_row(case_id, config, config_json, str(err), time.perf_counter() - started)
    finally:
        torch.set_num_threads(previous)
    return report_row(case_id, config, config_json, report)


def _init_worker(threads: int) -> None:
    """Process-pool initializer: torch at ``threads`` threads for the worker's life."""
    import torch

    torch.set_num_threads(int(threads))


def _thread_env(threads: int) -> dict[str, str]:
    return {name: str(int(threads)) for name in THREAD_ENV}


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block (spawned children inherit them); restore after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


Runner = Callable[[Sequence[Case], Callable[[dict[str, str]], None]], None]
"""Runs cases, calling ``done(row)`` in this process as each finishes."""


@contextlib.contextmanager
def _serial(threads: int) -> Iterator[Runner]:
    def run_all(todo: Sequence[Case], done: Callable[[dict[str, str]], None]) -> None:
        for case in todo:
            done(run_case(case.case_id, case.config_json, threads))
    yield run_all


@contextlib.contextmanager
def _process_pool(workers: int, threads: int) -> Iterator[Runner]:
    context = multiprocessing.get_context("spawn")
    with _environment(_thread_env(threads)):
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                   initializer=_init_worker, initargs=(threads,))

        def run_all(todo: Sequence[Case], done: Callable[[dict[str, str]], None]) -> None:
            futures = [pool.submit(run_case, c.case_id, c.config_json, threads) for c in todo]
            for future in as_completed(futures):
                done(future.result())

        try:
            yield run_all
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _dask(workers: int, threads: int, scheduler: str | None) -> Iterator[Runner]:
    try:
        from dask.distributed import Client, LocalCluster
        from dask.distributed import as_completed as dask_completed
    except ImportError:
        raise InductionHeadsError("--executor dask: expected dask.distributed to be installed "
                                  "(pip install 'induction-heads[sweep]'), received an "
                                  "environment without it") from None
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            cluster = stack.enter_context(LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                env=_thread_env(threads), dashboard_address=None,
                silence_logs=logging.WARNING))
            client = stack.enter_context(Client(cluster))
        else:
            try:
                client = stack.enter_context(Client(scheduler, timeout="10s"))
            except OSError as err:
                raise InductionHeadsError(f"--scheduler: expected the address of a running "
                                          f"dask scheduler, received {scheduler!r} ({err})"
                                          ) from None

        def run_all(todo: Sequence[Case], done: Callable[[dict[str, str]], None]) -> None:
            futures = [client.submit(run_case, c.case_id, c.config_json, threads,
                                     key=f"case-{c.case_id}", pure=False) for c in todo]
            for future in dask_completed(futures):
                done(future.result())
            futures.clear()  # release the results before the cluster closes

        yield run_all


def _executor(executor: str, workers: int, threads: int,
              scheduler: str | None) -> contextlib.AbstractContextManager[Runner]:
    """The executor's runner, started (a pool, a cluster, a connected client)."""
    if executor == "serial":
        return _serial(threads)
    if executor == "process":
        return _process_pool(workers, threads)
    return _dask(workers, threads, scheduler)


def _environment_record(executor: str, workers: int, threads: int,
                        scheduler: str | None) -> dict[str, Any]:
    import numpy
    import torch

    record = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "executor": executor, "workers": workers, "threads_per_worker": threads,
              "scheduler": scheduler, "python": platform.python_version(),
              "platform": platform.platform(), "cpus": os.cpu_count(),
              "numpy": numpy.__version__, "torch": torch.__version__}
    if executor == "dask":
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            record["distributed"] = importlib.metadata.version("distributed")
    return record


def _check_out(out: Path, spec: Mapping[str, Any], cases: Sequence[Case],
               header: Sequence[str]) -> dict[str, Any]:
    """Check the output directory without writing; the ``sweep.json`` record to extend (a new
    one when the directory holds no row: a record without rows is no sweep to protect)."""
    try:
        spec = json.loads(json.dumps(spec))         # as sweep.json holds it (lists, str keys)
    except (TypeError, ValueError) as err:
        raise InductionHeadsError(f"sweep spec: expected JSON values only, received {err}"
                                  ) from None
    record_path = out / SWEEP_JSON
    if not record_path.exists() or not read_rows(out / RESULTS_NAME, header):
        return {"spec": spec, "cases": [c.case_id for c in cases], "runs": []}
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InductionHeadsError(f"--out: expected a readable {SWEEP_JSON} in "
                                  f"{str(out)!r}, received one that is not ({err})") from None
    require(isinstance(record, dict) and record.get("spec") == spec, "--out",
            f"a fresh directory or one holding this spec's sweep ({SWEEP_JSON} with the "
            "same spec)", f"{str(out)!r} holding another sweep")
    return record


def run_sweep(spec: Mapping[str, Any], cases: Sequence[Case], out: str | Path, *,
              executor: str = "process", workers: int = 1, threads: int = 1,
              scheduler: str | None = None, progress: bool = True,
              figures: bool = True, by: str | None = None) -> SweepResult:
    """Run the cases not yet in ``out/results.csv``; sort the table; draw the figures.

    Args:
        spec: the sweep spec the cases came from (recorded in ``out/sweep.json``; a directory
            holding another spec's sweep is refused).
        cases: :func:`numerics.sweep.spec.expand_cases` of ``spec`` (or a subset of them).
        out: the output directory (created if missing).
        executor: one of :data:`EXECUTORS` (module docstring).
        workers: worker processes (``process`` and the dask ``LocalCluster``), >= 1.
        threads: torch and BLAS threads per worker, >= 1.
        scheduler: a dask scheduler address (only with ``executor="dask"``).
        progress: show a tqdm bar over finished cases.
        figures: draw ``agreement.png`` (and ``phase_map.png`` when two numeric axes vary).
        by: the column the agreement figure groups by (default: chosen from the table).

    Returns:
        :class:`SweepResult`.

    Raises:
        InductionHeadsError: on bad arguments or an unusable output directory: one holding
            another command's results, or one another command is using (the sweep holds its
            lock, :class:`numerics.run_directory.RunDirectory`, for its whole life) (a case that
            raises one is a row with its ``error``; any other exception of a case stops the
            sweep, and the rows finished before it stay in the table).
    """
    out = Path(out)
    with RunDirectory(out, RESULT_NAMES["sweep"], continuing=True):
        return _run_locked(spec, cases, out, executor=executor, workers=workers,
                           threads=threads, scheduler=scheduler, progress=progress,
                           figures=figures, by=by)


def _run_locked(spec: Mapping[str, Any], cases: Sequence[Case], out: Path, *, executor: str,
                workers: int, threads: int, scheduler: str | None, progress: bool,
                figures: bool, by: str | None) -> SweepResult:
    """The steps of :func:`run_sweep`, under the output directory's lock."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    require(executor in EXECUTORS, "executor", f"one of {EXECUTORS}", executor)
    for name, value in (("workers", workers), ("threads", threads)):
        require(is_int(value) and value >= 1, name,
                "an integer >= 1", value)
    require(by is None or by in FEATURES, "by", f"None or one of {FEATURES}", by)
    require(scheduler is None or executor == "dask", "scheduler",
            "None unless executor='dask'", scheduler)
    kinds = {c.config["model_kind"] for c in cases}
    require(len(kinds) <= 1, "cases", "one model kind", sorted(kinds))
    header = columns(kinds.pop() if kinds else spec.get("model_kind", "simplified"))
    record = _check_out(out, spec, cases, header)
    table = out / RESULTS_NAME
    done_ids = {r["case_id"] for r in read_rows(table, header)}
    todo = [c for c in cases if c.case_id not in done_ids]
    ran: list[str] = []
    # Start the executor (a cluster, a scheduler connection) before writing anything.
    with _executor(executor if todo else "serial", workers, threads, scheduler) as run_all:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InductionHeadsError(f"--out: expected a writable directory, received "
                                      f"{str(out)!r} ({err.strerror or err})") from None
        if table.exists():  # drops a line cut off by a killed run before appending
            sort_table(table, header)
        if todo:           # the record, atomically, once the first case is about to run
            record["runs"].append({**_environment_record(executor, workers, threads,
                                                         scheduler),
                                   "to_run": len(todo), "skipped": len(cases) - len(todo)})
            write_json_atomic(out / SWEEP_JSON, record, indent=2)
        logger.info("sweep: %d cases, %d already in %s, %d to run on %s", len(cases),
                    len(cases) - len(todo), table, len(todo), executor)
        with tqdm(total=len(todo), desc="sweep", unit="case", disable=not progress) as bar:
            def done(row: dict[str, str]) -> None:
                append_row(table, header, row)
                ran.append(row["case_id"])
                logger.info("case %s: learned %s, predicted %s, passed %s (%s s)%s",
                            row["case_id"], row["learned_selected_set"], row["selected_set"],
                            row["passed"], row["seconds"],
                            f"; error: {row['error']}" if row["error"] else "")
                bar.update(1)

            run_all(todo, done)
    rows = tuple(sort_table(table, header)) if table.exists() else ()
    drawn: tuple[Path, ...] = ()
    if figures and rows:
        from numerics.sweep.figures import draw_figures

        drawn = draw_figures(rows, out, by=by)
    return SweepResult(out, rows, tuple(ran), len(cases) - len(todo), drawn,
                       time.perf_counter() - started)
