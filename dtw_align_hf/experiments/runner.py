"""Execute a grid's runs as subprocesses of the real run scripts; resume a killed grid; record failures.

Each run is `python run_pretrain_mt.py|run_finetune_st.py --config <recipe> --output_dir <its folder> --seed ...`
with its output in `<output_dir>/logs/`. A run whose folder holds `results.json` is finished and skipped; an
unfinished one is started again in the same folder, where the run script resumes from its newest checkpoint
(`--resume auto`). A folder left without any checkpoint (a run killed before its first save) is emptied first, so
the script never meets a half-written, non-resumable folder. A failed run is recorded in
`<output_dir>/grid_state.json` and the grid goes on; the systems that need a failed stage 1 are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers.utils import logging

from .grid import Grid, Run


logger = logging.get_logger(__name__)

STATE_FILE = "grid_state.json"
#: `runner(command, log_path, cwd, env) -> return code`; the default runs a subprocess. Tests pass a fake.
CommandRunner = Callable[[list[str], Path, Path, dict[str, str]], int]


def subprocess_runner(command: list[str], log_path: Path, cwd: Path, env: dict[str, str]) -> int:
    """Run `command` with stdout and stderr into `log_path` (appended, so a resumed run keeps its history).

    The process is killed when the grid is interrupted (Ctrl-C / SIGTERM reach the waiting thread as an exception;
    with `jobs > 1` the main thread kills every live run through `stop_live_runs`)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"\n$ {' '.join(command)}\n")
        log.flush()
        proc = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env)
        with _LIVE_LOCK:
            _LIVE.add(proc)
        try:
            return proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(proc)


_LIVE: set[subprocess.Popen] = set()
_LIVE_LOCK = threading.Lock()


def stop_live_runs() -> None:
    """Kill every run script still running (an interrupted grid with `jobs > 1`: worker threads cannot be stopped)."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for proc in live:
        proc.kill()


def log_path(grid: Grid, run: Run) -> Path:
    return grid.output_dir / "logs" / f"{run.data}__seed{run.seed}__{run.system}.log"


def load_state(grid: Grid) -> dict[str, Any]:
    path = grid.output_dir / STATE_FILE
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"runs": {}}


def _save_state(grid: Grid, state: dict[str, Any]) -> None:
    grid.output_dir.mkdir(parents=True, exist_ok=True)
    path = grid.output_dir / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _has_checkpoint(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_dir() and p.name.startswith("checkpoint-") for p in folder.iterdir())


def _tail(path: Path, lines: int = 15) -> str:
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def run_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def _threads_per_run(jobs: int) -> str:
    return str(max(1, (os.cpu_count() or 1) // max(1, jobs)))


def execute(
    grid: Grid,
    repo: Path,
    *,
    runner: CommandRunner | None = None,
    echo: Callable[[str], None] | None = None,
    progress: bool = True,
    python: str | None = None,
    jobs: int = 1,
) -> dict[str, Any]:
    """Run every unfinished run of `grid`; return the state (run name -> status record).

    Args:
        grid ([`Grid`]): the parsed grid.
        repo (`Path`): the repository root with the run scripts (the subprocesses' working directory).
        runner: how to run one command (default `subprocess_runner`).
        echo: where the one line per run goes (default: the logger); the command line passes `tqdm.write`.
        progress (`bool`): a tqdm bar over the runs.
        python (`str`): the interpreter (default `sys.executable`).
        jobs (`int`): runs at once (default 1: one after the other, in grid order). With more, runs start in grid
            order as soon as a slot is free and their stage 1 has finished; each gets `OMP_NUM_THREADS` =
            cores / jobs unless the environment sets it. Results do not depend on it (each run has its own seed
            and data order), only the wall time does.

    A record is `{"status": "finished" | "kept" | "failed" | "skipped", "seconds", "returncode", "log", "command"}`;
    "kept" = finished by an earlier invocation. Runs finished earlier with different flags are kept and flagged
    with `"changed": true` (delete their folder to rerun them).
    """
    from tqdm.auto import tqdm

    if int(jobs) < 1:
        raise ValueError(f"jobs={jobs} must be >= 1.")
    runner = runner or subprocess_runner
    echo = echo or logger.warning
    python = python or sys.executable
    env = run_environment()
    env.setdefault("OMP_NUM_THREADS", _threads_per_run(jobs))
    state = load_state(grid)
    records: dict[str, Any] = state.setdefault("runs", {})
    state["grid"] = grid.source
    runs = grid.runs()
    total = len(runs)
    index = {run.name: i for i, run in enumerate(runs, start=1)}
    failed: set[str] = set()
    done: set[str] = set()
    bar = tqdm(total=total, desc="grid runs", unit="run", disable=not progress, dynamic_ncols=True)

    def finish(run: Run, record: dict[str, Any], message: str) -> None:
        records[run.name] = record
        (done if record["status"] in ("finished", "kept") else failed).add(run.name)
        echo(f"[{index[run.name]}/{total}] {run.name}: {message}")
        _save_state(grid, state)
        bar.update(1)

    def settle(run: Run) -> bool:
        """Record a run that needs no process (finished earlier, or its stage 1 failed); True when settled."""
        previous = records.get(run.name, {})
        if run.depends_on is not None and run.depends_on.name in failed:
            finish(
                run,
                {"status": "skipped", "reason": f"stage 1 {run.depends_on.name} failed"},
                "skipped (its stage 1 failed)",
            )
            return True
        if run.finished:
            command = run.command(python, repo)
            changed = previous.get("command") not in (None, command[1:])
            status = "finished" if previous.get("status") == "finished" else "kept"
            note = (
                " (WARNING: its recorded flags differ from the grid's; delete the folder to rerun)" if changed else ""
            )
            finish(run, {**previous, "status": status, "changed": changed}, f"finished earlier, kept{note}")
            return True
        return False

    def launch(run: Run) -> dict[str, Any]:
        """Run one script to its end (in a worker thread when jobs > 1); returns its record."""
        command = run.command(python, repo)
        if run.output_dir.exists() and not _has_checkpoint(run.output_dir):
            shutil.rmtree(run.output_dir)  # nothing to resume from: start clean rather than meet a stale folder
        resumed = _has_checkpoint(run.output_dir)
        log = log_path(grid, run)
        started = time.time()
        try:
            returncode = runner(command, log, repo, env)
        except OSError as error:  # the interpreter or script could not be started
            returncode = -1
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(f"could not start: {error}\n")
        seconds = round(time.time() - started, 1)
        record = {"command": command[1:], "log": str(log), "seconds": seconds, "returncode": returncode}
        if returncode == 0 and run.finished:
            record["status"] = "finished"
            record["message"] = f"done in {seconds:.1f} s{' (resumed)' if resumed else ''}{_scores(run)}"
        else:
            record["status"] = "failed"
            record["reason"] = f"exit code {returncode}" if returncode else "exited 0 without writing results.json"
            record["message"] = f"FAILED after {seconds:.1f} s ({record['reason']}); log {log}\n{_tail(log)}"
        return record

    def ready(run: Run) -> bool:
        return run.depends_on is None or run.depends_on.name in done or run.depends_on.name in failed

    pending = list(runs)
    try:
        if jobs == 1:
            for run in pending:
                bar.set_postfix_str(run.name)
                if not settle(run):
                    record = launch(run)
                    finish(run, record, record.pop("message"))
        else:
            from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

            with ThreadPoolExecutor(max_workers=jobs) as pool:
                running: dict[Any, Run] = {}
                while pending or running:
                    for run in [r for r in pending if ready(r)]:
                        if settle(run):
                            pending.remove(run)
                        elif len(running) < jobs:
                            pending.remove(run)
                            running[pool.submit(launch, run)] = run
                    if not running:
                        if pending and not any(ready(r) for r in pending):
                            raise RuntimeError(f"grid runs wait on a stage 1 that never ran: {pending[0].name}")
                        continue
                    bar.set_postfix_str(", ".join(r.name for r in running.values()))
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        run = running.pop(future)
                        record = future.result()
                        finish(run, record, record.pop("message"))
    except BaseException:
        stop_live_runs()  # worker threads wait on their scripts: kill those so the pool can wind down
        raise
    finally:
        bar.close()
    return state


def _scores(run: Run) -> str:
    try:
        results = json.loads(run.results_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    test = results.get("test") or {}
    parts = [f"{key} {test[key]:.2f}" for key in ("bleu", "chrf") if isinstance(test.get(key), (int, float))]
    token = (results.get("alignment") or {}).get("token_accuracy")
    if isinstance(token, (int, float)):
        parts.append(f"token acc {100 * token:.1f}%")
    return f": {', '.join(parts)}" if parts else ""
