"""Experiment grids: DTW-Align against CMOT and the multitask baselines, run through the real run scripts.

    python -m dtw_align_hf.experiments --grid recipes/experiments/demo_grid.yaml
    python -m dtw_align_hf.experiments --quick --output_dir /tmp/grid     # a smoke run, about a minute on a CPU

`grid` turns a YAML grid into runs, `runner` executes them as subprocesses (resuming a killed grid), `compare`
writes the table (Markdown + JSON) and the plots.
"""

from .compare import aggregate, collect, mean_std, write_report
from .grid import QUICK, Grid, Run, load_grid
from .runner import execute


__all__ = ["QUICK", "Grid", "Run", "aggregate", "collect", "execute", "load_grid", "mean_std", "write_report"]
