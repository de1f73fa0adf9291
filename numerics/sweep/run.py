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

Every case gives a row: a case that raises anything (the library's error, ``MemoryError``, a
``RuntimeError`` of torch, ...) gives an error row (:func:`numerics.sweep.table.error_row`) whose
``error`` names the exception, so a rerun skips it like any finished case. Rows are appended as
cases finish, whichever the executor, so the rows of finished cases are never lost.

Stopping: the process pool's workers ignore SIGINT (the sweep decides) and each watches its
parent, exiting within :data:`PARENT_POLL_S` seconds once the parent is gone (a SIGKILL of the
sweep leaves no worker behind, and with them goes the resource tracker). The pool is handed at
most ``workers`` cases at a time, so a first Ctrl-C starts no new case, writes the rows of the
cases still running as they finish, and stops (``KeyboardInterrupt``); a second Ctrl-C kills the
workers and stops at once. With dask, a Ctrl-C writes the rows already finished and cancels
the rest.

A case's row depends only on its config (which holds its seed) and the torch thread count
(``numerics.verify.job``: the same seed and threads give the same report on the CPU), so every
executor writes the same rows apart from ``seconds``.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import itertools
import json
import logging
import multiprocessing
import os
import platform
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from numerics.io import write_json_atomic
from numerics.run_directory import RESULT_NAMES, RunDirectory
from numerics.sweep.figures import FEATURES
from numerics.sweep.spec import Case
from numerics.sweep.table import RESULTS_NAME, append_row, columns, error_row, read_rows, sort_table
from theory.errors import InductionHeadsError, require
from theory.validation import is_int

__all__ = ["EXECUTORS", "THREAD_ENV", "SWEEP_JSON", "PARENT_POLL_S", "SweepResult",
           "error_message", "run_case", "run_sweep"]

logger = logging.getLogger(__name__)

EXECUTORS = ("process", "dask", "serial")
"""Where the cases run (module docstring)."""
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Environment variables that cap the BLAS / OpenMP threads of a worker process."""
SWEEP_JSON = "sweep.json"
"""File name of the spec and environment record in the output directory."""
PARENT_POLL_S = 0.5
"""Seconds between a pool worker's checks that the sweep that started it is still alive."""


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
        :func:`numerics.sweep.table.error_row` when the case raised any exception (an
        :class:`~theory.errors.InductionHeadsError`: training diverged, sizes refused; or any
        other, e.g. ``MemoryError``), with :func:`error_message` of it. ``KeyboardInterrupt``
        and ``SystemExit`` stop the case and are not rows.
    """
    import torch

    from numerics.sweep.table import report_row
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
        return report_row(case_id, config, config_json, report)
    except Exception as err:  # anything a case raises is its row, never the sweep's end
        logger.warning("case %s failed: %s", case_id, error_message(err))
        return error_row(case_id, config, config_json, error_message(err),
                         time.perf_counter() - started)
    finally:
        torch.set_num_threads(previous)


def error_message(err: BaseException) -> str:
    """The ``error`` of a case's row: the library's message as it is, any other exception as
    ``Type: message`` (``MemoryError`` alone when it has no message)."""
    if isinstance(err, InductionHeadsError):
        return str(err)
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _failed_row(case: Case, err: BaseException) -> dict[str, str]:
    """The error row of a case whose executor raised instead of returning its row."""
    logger.warning("case %s failed: %s", case.case_id, error_message(err))
    return error_row(case.case_id, case.config, case.config_json, error_message(err), 0.0)


def _watch_parent(parent: int) -> None:
    """End this worker process once ``parent`` is no longer its parent (the sweep died)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def _init_worker(threads: int, parent: int) -> None:
    """Process-pool initializer: SIGINT ignored (the sweep decides what a Ctrl-C stops), a
    daemon thread that ends the worker when the sweep ``parent`` dies, torch at ``threads``
    threads for the worker's life."""
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), name="sweep-parent-watch",
                     daemon=True).start()
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


def _pool_row(future: Future, case: Case) -> dict[str, str]:
    """The row a pool future holds; the error row of a case whose call raised."""
    try:
        return future.result()
    except BrokenExecutor:
        raise InductionHeadsError(
            "process pool: expected its workers to run until the sweep ends, received a "
            "worker that died (killed by the system, e.g. out of memory); the finished rows "
            "are in the table, rerun to resume (fewer --workers use less memory)") from None
    except Exception as err:  # the row or its result could not be sent back
        return _failed_row(case, err)


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's worker processes now (a second Ctrl-C)."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            process.kill()


@contextlib.contextmanager
def _process_pool(workers: int, threads: int) -> Iterator[Runner]:
    context = multiprocessing.get_context("spawn")
    with _environment(_thread_env(threads)):
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                   initializer=_init_worker, initargs=(threads, os.getpid()))
        killed = False

        def run_all(todo: Sequence[Case], done: Callable[[dict[str, str]], None]) -> None:
            nonlocal killed
            queue = iter(todo)
            running: dict[Future, Case] = {}    # at most `workers`: a Ctrl-C waits for no more

            def top_up() -> None:
                for case in itertools.islice(queue, workers - len(running)):
                    running[pool.submit(run_case, case.case_id, case.config_json, threads)] = case

            def collect() -> None:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    case = running.pop(future)  # before writing: a row is never written twice
                    done(_pool_row(future, case))

            try:
                top_up()
                while running:
                    collect()
                    top_up()
            except KeyboardInterrupt:
                logger.warning("interrupted: writing the rows of the %d running case(s) as "
                               "they finish (Ctrl-C again to stop at once)", len(running))
                try:
                    while running:
                        collect()
                except KeyboardInterrupt:
                    killed = True
                    _kill_workers(pool)
                raise

        try:
            yield run_all
        finally:
            pool.shutdown(wait=not killed, cancel_futures=True)


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
            except (OSError, ValueError, TypeError) as err:  # unreachable or malformed
                raise InductionHeadsError(
                    f"--scheduler: expected the address of a running dask scheduler "
                    f"(e.g. 'tcp://host:8786'), received {scheduler!r} "
                    f"({' '.join(str(err).split()) or type(err).__name__})") from None

        def run_all(todo: Sequence[Case], done: Callable[[dict[str, str]], None]) -> None:
            cases = {f"case-{c.case_id}": c for c in todo}
            futures = [client.submit(run_case, c.case_id, c.config_json, threads,
                                     key=key, pure=False) for key, c in cases.items()]
            handled: set[str] = set()

            def row(future: Any) -> dict[str, str]:
                handled.add(future.key)         # before writing: a row is never written twice
                try:
                    return future.result()
                except Exception as err:       # a killed worker, a lost result
                    return _failed_row(cases[future.key], err)

            try:
                for future in dask_completed(futures):
                    done(row(future))
            except KeyboardInterrupt:          # keep the finished rows, drop the rest
                rest = [f for f in futures if f.key not in handled]
                client.cancel([f for f in rest if f.status != "finished"])
                for future in rest:
                    if future.status == "finished":
                        done(row(future))
                raise
            finally:
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
        InductionHeadsError: on bad arguments, an unusable output directory (one holding
            another command's results, or one another command is using: the sweep holds its
            lock, :class:`numerics.run_directory.RunDirectory`, for its whole life) or a pool
            worker killed by the system (a case that raises anything is a row with its
            ``error``; the rows finished before a stop stay in the table).
        KeyboardInterrupt: on Ctrl-C (module docstring), after writing the finished rows.
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
    require(scheduler is None or (isinstance(scheduler, str) and scheduler.strip() != ""),
            "scheduler", "None or a dask scheduler address such as 'tcp://host:8786'",
            scheduler)
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
