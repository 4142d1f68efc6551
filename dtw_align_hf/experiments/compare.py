"""The grid's table: test BLEU/chrF, paired bootstrap against the baseline, alignment accuracy, time; mean +- std.

Read from what the run scripts write into each run folder:
- `results.json`: `test.bleu`, `test.chrf` and their sacrebleu signatures; `alignment.token_accuracy` /
  `frame_accuracy` (against the corpus' reference word timings, where it has them); `wall_time_seconds`;
- `test_hypotheses.txt` / `test_references.txt`: the paired bootstrap (Koehn, 2004) of every system against the
  baseline (DTW-Align) trained on the same data condition with the same seed
  (`dtw_align_hf.metrics.paired_bootstrap`, sacrebleu's implementation);
- `train_results.json`: `train_runtime` (the Trainer's training time, without test evaluation);
- `trainer_state.json`: `align/seconds` in `log_history` (logged when the run sets `alignment_timing: true`), the
  mean alignment time per step of each logging window; its total is sum(value x steps in the window).

Scores are averaged over seeds with the sample standard deviation (ddof=1; none for a single seed).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .grid import STAGE1_NAME, Grid


HYPOTHESES_FILE = "test_hypotheses.txt"
REFERENCES_FILE = "test_references.txt"
#: (key in a run record, column title, format scale): the mean +- std columns of the table, in order.
METRICS = (
    ("bleu", "BLEU", 1.0),
    ("chrf", "chrF", 1.0),
    ("delta_bleu", "ΔBLEU vs baseline", 1.0),
    ("token_accuracy", "token acc. %", 100.0),
    ("frame_accuracy", "frame acc. %", 100.0),
    ("train_seconds", "train s", 1.0),
    ("align_seconds", "align s", 1.0),
    ("wall_seconds", "run s", 1.0),
)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _read_lines(path: Path) -> list[str] | None:
    if not path.is_file():
        return None
    return path.read_text(encoding="utf-8").rstrip("\n").split("\n")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def align_seconds(state: dict[str, Any] | None) -> float | None:
    """Total alignment time of a run from `trainer_state.json`: sum of `align/seconds` x steps of its window."""
    if not state:
        return None
    total, previous_step, found = 0.0, 0, False
    for entry in state.get("log_history", []):
        step = entry.get("step")
        if "align/seconds" in entry and isinstance(step, int):
            total += float(entry["align/seconds"]) * max(step - previous_step, 1)
            previous_step, found = step, True
    return total if found else None


def run_record(folder: Path) -> dict[str, Any]:
    """The numbers of one finished run folder (`None` where the run did not produce them)."""
    results = _read_json(folder / "results.json") or {}
    test = results.get("test") or {}
    alignment = results.get("alignment") or {}
    train = _read_json(folder / "train_results.json") or {}
    return {
        "bleu": _number(test.get("bleu")),
        "chrf": _number(test.get("chrf")),
        "bleu_signature": test.get("bleu_signature"),
        "chrf_signature": test.get("chrf_signature"),
        "token_accuracy": _number(alignment.get("token_accuracy")),
        "frame_accuracy": _number(alignment.get("frame_accuracy")),
        "alignment_method": alignment.get("method"),
        "alignment_reference": alignment.get("reference"),
        "train_steps": (results.get("train") or {}).get("steps"),
        "train_seconds": _number(train.get("train_runtime")),
        "align_seconds": align_seconds(_read_json(folder / "trainer_state.json")),
        "wall_seconds": _number(results.get("wall_time_seconds")),
    }


def collect(grid: Grid, state: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One record per stage-2 run of the grid (and per stage 1, with `system` = "stage1_mt"), finished or not."""
    statuses = (state or {}).get("runs", {})
    records = []
    for run in grid.runs():
        record = {"data": run.data, "seed": run.seed, "system": run.system, "folder": str(run.output_dir)}
        status = statuses.get(run.name, {}).get("status")
        if run.finished:
            record.update(run_record(run.output_dir), status="finished")
        else:
            record["status"] = status or "not run"
        records.append(record)
    return records


def add_bootstrap(grid: Grid, records: list[dict[str, Any]]) -> None:
    """Paired bootstrap of each finished system against the baseline of the same data condition and seed, in place.

    Adds `bootstrap` (the `paired_bootstrap` dict) and `delta_bleu` / `delta_chrf` to each compared record; the
    baseline's own record gets `delta_bleu` = 0 and no p-value.
    """
    from dtw_align_hf.metrics import paired_bootstrap

    n_samples = int(grid.bootstrap.get("n_samples", 1000))
    seed = grid.bootstrap.get("seed", 12345)
    by_key = {(r["data"], r["seed"], r["system"]): r for r in records}
    for record in records:
        if record["system"] == STAGE1_NAME or record["status"] != "finished":
            continue
        base = by_key.get((record["data"], record["seed"], grid.baseline))
        if record["system"] == grid.baseline:
            record["delta_bleu"], record["delta_chrf"] = 0.0, 0.0
            continue
        if base is None or base["status"] != "finished":
            continue
        base_hyps = _read_lines(Path(base["folder"]) / HYPOTHESES_FILE)
        hyps = _read_lines(Path(record["folder"]) / HYPOTHESES_FILE)
        refs = _read_lines(Path(base["folder"]) / REFERENCES_FILE)
        own_refs = _read_lines(Path(record["folder"]) / REFERENCES_FILE)
        if base_hyps is None or hyps is None or refs is None:
            record["bootstrap_error"] = f"{HYPOTHESES_FILE} / {REFERENCES_FILE} missing"
            continue
        if own_refs is not None and own_refs != refs:
            record["bootstrap_error"] = "the test references differ from the baseline's (not the same test set)"
            continue
        result = paired_bootstrap(base_hyps, hyps, refs, n_samples=n_samples, seed=seed)
        record["bootstrap"] = result
        record["delta_bleu"] = result["bleu"]["delta"]
        record["delta_chrf"] = result["chrf"]["delta"]


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """Mean and sample standard deviation (ddof=1) of the non-missing values; std is None below two values."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return None, None, 0
    mean = sum(present) / len(present)
    if len(present) < 2:
        return mean, None, len(present)
    var = sum((v - mean) ** 2 for v in present) / (len(present) - 1)
    return mean, math.sqrt(var), len(present)


def aggregate(grid: Grid, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (data condition, system) in grid order: each metric's mean/std over seeds, p-values per seed."""
    rows = []
    for data in grid.data:
        for system in grid.systems:
            runs = [r for r in records if r["data"] == data and r["system"] == system]
            done = [r for r in runs if r["status"] == "finished"]
            row: dict[str, Any] = {
                "data": data,
                "system": system,
                "baseline": system == grid.baseline,
                "flags": grid.systems[system],
                "seeds": [r["seed"] for r in done],
                "missing_seeds": [r["seed"] for r in runs if r["status"] != "finished"],
                "alignment_methods": sorted({r["alignment_method"] for r in done if r.get("alignment_method")}),
            }
            for key, _, _ in METRICS:
                mean, std, n = mean_std([r.get(key) for r in done])
                row[key] = {"mean": mean, "std": std, "n": n}
            boot = [(r["seed"], r["bootstrap"]) for r in done if "bootstrap" in r]
            row["p_value_bleu"] = {str(s): b["bleu"]["p_value"] for s, b in boot}
            row["p_value_chrf"] = {str(s): b["chrf"]["p_value"] for s, b in boot}
            # 95% bootstrap interval of the system's BLEU, per seed: mean +- half-width
            row["bleu_ci95"] = {
                str(s): [
                    b["bleu"]["system_mean"] - b["bleu"]["system_ci"],
                    b["bleu"]["system_mean"] + b["bleu"]["system_ci"],
                ]
                for s, b in boot
            }
            rows.append(row)
    return rows


def _fmt(cell: dict[str, Any], scale: float) -> str:
    if cell["mean"] is None:
        return "n/a"
    text = f"{scale * cell['mean']:.2f}" if scale == 1.0 else f"{scale * cell['mean']:.1f}"
    if cell["std"] is not None:
        text += f" ± {scale * cell['std']:.2f}" if scale == 1.0 else f" ± {scale * cell['std']:.1f}"
    return text


def _fmt_p(values: dict[str, float]) -> str:
    return " / ".join(f"{p:.3f}" for p in values.values()) if values else "—"


def _fmt_ci(values: dict[str, list[float]]) -> str:
    return " / ".join(f"[{lo:.2f}, {hi:.2f}]" for lo, hi in values.values()) if values else "—"


def markdown_table(grid: Grid, rows: list[dict[str, Any]], records: list[dict[str, Any]]) -> str:
    """The Markdown report: the table, the sacrebleu signatures, the stage-1 scores and what did not finish."""
    lines = ["# Experiment grid results", ""]
    if grid.description:
        lines += [grid.description.strip(), ""]
    lines += [
        (
            f"Grid: `{grid.source or '(dict)'}`; seeds {grid.seeds}; baseline `{grid.baseline}`. Mean ± standard "
            "deviation over seeds (none for one seed). p: two-sided paired bootstrap p-value of BLEU against the baseline "
            f"of the same data and seed ({int(grid.bootstrap.get('n_samples', 1000))} resamples), one per seed; 95% CI: "
            "the system's bootstrap interval of BLEU per seed. Alignment accuracy is against the corpus' reference word "
            "timings (for a system trained without alignment: the method in brackets, run on its trained "
            "embeddings); 'align s' is the total alignment time during training, logged only with "
            "`alignment_timing: true`; 'train s' is the Trainer's training time (the shared stage 1 not included)."
        ),
        "",
    ]
    titles = [title for _, title, _ in METRICS]
    lines.append(
        "| data | system | "
        + " | ".join(titles[:3])
        + " | p (BLEU) | 95% CI (BLEU) | "
        + " | ".join(titles[3:])
        + " | seeds |"
    )
    lines.append("| --- | --- | " + " | ".join(["---:"] * (len(titles) + 2)) + " | --- |")
    for row in rows:
        cells = [_fmt(row[key], scale) for key, _, scale in METRICS]
        name = f"**{row['system']}**" if row["baseline"] else row["system"]
        if row["alignment_methods"] and row["flags"].get("alignment") == "none":
            name += f" [{', '.join(row['alignment_methods'])}]"
        seeds = ",".join(map(str, row["seeds"])) or "none"
        if row["missing_seeds"]:
            seeds += f" (missing {','.join(map(str, row['missing_seeds']))})"
        lines.append(
            f"| {row['data']} | {name} | {' | '.join(cells[:3])} | {_fmt_p(row['p_value_bleu'])} | "
            f"{_fmt_ci(row['bleu_ci95'])} | {' | '.join(cells[3:])} | {seeds} |"
        )
    signatures = {r.get("bleu_signature") for r in records if r.get("bleu_signature")}
    chrf = {r.get("chrf_signature") for r in records if r.get("chrf_signature")}
    if signatures:
        lines += ["", "sacrebleu signatures: " + "; ".join(f"`{s}`" for s in sorted(signatures | chrf))]
    stage1 = [r for r in records if r["system"] == STAGE1_NAME]
    if stage1:
        lines += ["", "Stage 1 (MT on the transcripts, shared by every system of its data condition and seed):", ""]
        lines += ["| data | seed | BLEU | chrF | status |", "| --- | ---: | ---: | ---: | --- |"]
        for r in stage1:
            bleu = "n/a" if r.get("bleu") is None else f"{r['bleu']:.2f}"
            chrf_score = "n/a" if r.get("chrf") is None else f"{r['chrf']:.2f}"
            lines.append(f"| {r['data']} | {r['seed']} | {bleu} | {chrf_score} | {r['status']} |")
    lines += ["", "Systems (stage-2 flags on top of the recipe):", ""]
    lines += [f"- `{name}`: {json.dumps(flags)}" for name, flags in grid.systems.items()]
    problems = [r for r in records if r["status"] != "finished"]
    if problems:
        lines += ["", "Not finished:", ""]
        lines += [f"- {r['data']}/seed{r['seed']}/{r['system']}: {r['status']}" for r in problems]
    return "\n".join(lines) + "\n"


def plot_rows(grid: Grid, rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """One PNG per metric (BLEU, chrF, token accuracy): bars per system, grouped by data, std over seeds as error bars."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    paths = []
    systems, conditions = list(grid.systems), list(grid.data)
    width = 0.8 / max(len(systems), 1)
    for key, title, scale in (METRICS[0], METRICS[1], METRICS[3]):
        if all(row[key]["mean"] is None for row in rows):
            continue
        fig = Figure(figsize=(max(6.0, 1.2 * len(systems) * len(conditions)), 4.0))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        x = np.arange(len(conditions))
        for i, system in enumerate(systems):
            cells = [next(r[key] for r in rows if r["data"] == d and r["system"] == system) for d in conditions]
            means = [scale * (c["mean"] if c["mean"] is not None else np.nan) for c in cells]
            stds = [scale * (c["std"] or 0.0) for c in cells]
            ax.bar(x + (i - (len(systems) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=system)
        ax.set_xticks(x, conditions)
        ax.set_xlabel("data condition")
        ax.set_ylabel(title)
        ax.set_title(f"{title} over seeds {grid.seeds} (error bars: std)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize="small", ncols=2)
        fig.tight_layout()
        path = out_dir / f"{key}.png"
        fig.savefig(path, dpi=110)
        paths.append(path)
    return paths


def write_report(grid: Grid, state: dict[str, Any] | None = None) -> dict[str, Any]:
    """Collect, bootstrap, aggregate; write `results.md`, `results.json` and the plots into `output_dir`."""
    records = collect(grid, state)
    add_bootstrap(grid, records)
    rows = aggregate(grid, records)
    out = grid.output_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(markdown_table(grid, rows, records), encoding="utf-8")
    plots = plot_rows(grid, rows, out)
    report = {
        "grid": grid.source,
        "baseline": grid.baseline,
        "seeds": grid.seeds,
        "data": grid.data,
        "systems": grid.systems,
        "rows": rows,
        "runs": records,
        "plots": [str(p) for p in plots],
    }
    (out / "results.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return report
