"""`python -m dtw_align_hf.experiments`: run an experiment grid and write its table and plots.

    python -m dtw_align_hf.experiments --grid recipes/experiments/demo_grid.yaml
    python -m dtw_align_hf.experiments --quick --output_dir runs/experiments/quick   # smoke run (about a minute)
    python -m dtw_align_hf.experiments --grid my_grid.yaml --dry_run                 # print the commands only
    python -m dtw_align_hf.experiments --grid my_grid.yaml --report_only             # table from finished runs

Every system is trained by the real run scripts (`run_pretrain_mt.py` once per data condition and seed, then
`run_finetune_st.py` per system) in `<output_dir>/<data>/seed<seed>/<system>/`. Rerunning the same command
resumes: finished runs (with `results.json`) are kept, the next unfinished one continues from its checkpoint.
The exit status is 1 when a run failed (the table is still written from the rest).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .compare import write_report
from .grid import load_grid
from .runner import execute, load_state


REPO = Path(__file__).resolve().parents[2]
DEFAULT_GRID = "recipes/experiments/demo_grid.yaml"


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 -- the command line's own output (the library modules only log)


def _repo(path: str | None) -> Path:
    repo = Path(path).resolve() if path else REPO
    if not (repo / "run_finetune_st.py").is_file():
        raise SystemExit(
            f"--repo {str(repo)!r} has no run_finetune_st.py: give the repository root that holds the run scripts."
        )
    return repo


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m dtw_align_hf.experiments",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--grid", default=None, help=f"The YAML grid (default {DEFAULT_GRID}).")
    parser.add_argument("--output_dir", default=None, help="Overrides the grid's output_dir.")
    parser.add_argument(
        "--quick", action="store_true", help="Smoke run: tiny corpus, few steps, 1 seed, 2 systems (run_demo --quick)."
    )
    parser.add_argument("--dry_run", action="store_true", help="Print the planned commands and exit.")
    parser.add_argument("--report_only", action="store_true", help="Write the table from the runs already finished.")
    parser.add_argument("--repo", default=None, help="Repository root with the run scripts (default: this checkout).")
    parser.add_argument("--no_progress", action="store_true", help="No tqdm bar (one line per run stays).")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="Runs at once (default 1). Each gets OMP_NUM_THREADS = cores / jobs unless set; results do not change.",
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: give 1 or more runs at once.")

    repo = _repo(args.repo)
    # a SIGTERM'd grid raises SystemExit inside subprocess.run, which then kills the running script too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    grid_path = args.grid or str(repo / DEFAULT_GRID)
    grid = load_grid(grid_path, repo=repo, output_dir=args.output_dir, quick=args.quick)
    runs = grid.runs()
    if args.dry_run:
        for run in runs:
            _say(f"{run.name}: {' '.join(run.command(sys.executable, repo))}")
        return {"runs": [run.name for run in runs]}

    stage2 = sum(run.stage == "stage2" for run in runs)
    _say(
        f"[experiments] {len(runs)} runs ({len(runs) - stage2} stage 1, {stage2} stage 2: {len(grid.systems)} systems x "
        f"{len(grid.data)} data x {len(grid.seeds)} seeds) into {grid.output_dir}"
    )
    if args.report_only:
        state = load_state(grid)
    else:
        from tqdm.auto import tqdm

        state = execute(grid, repo, echo=tqdm.write, progress=not args.no_progress, jobs=args.jobs)
    report = write_report(grid, state)
    if grid.alignment_sweep:
        from .alignment_sweep import sweep_grid

        sweep = sweep_grid(grid, echo=_say)
        report["alignment_sweep"] = sweep["table"]
        _say(f"[experiments] alignment sweep: {grid.output_dir / 'alignment_sweep.md'}")
    out = grid.output_dir
    _say(f"[experiments] table: {out / 'results.md'}  JSON: {out / 'results.json'}")
    for plot in report["plots"]:
        _say(f"[experiments] plot: {plot}")
    planned = {run.name for run in runs}
    failed = [
        name
        for name, r in state.get("runs", {}).items()
        if name in planned and r.get("status") in ("failed", "skipped")
    ]
    report["failed"] = failed
    if failed:
        _say(f"[experiments] {len(failed)} run(s) failed or skipped: {', '.join(failed)}")
    return report


if __name__ == "__main__":
    sys.exit(1 if main().get("failed") else 0)
