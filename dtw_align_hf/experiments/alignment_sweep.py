"""Alignment options on trained models: chosen on the dev split, reported on the test split.

The similarity corrections of `align()` (`normalization`: per-token centring, z-scores, CSLS; `diagonal_prior`: a
soft pull towards the length-proportional diagonal) change only which path DTW takes on a trained model's
embeddings, so they can be compared after training on the same embeddings, side by side with the `uniform` split
(frame n takes token floor(n M / N)) and CMOT's windowed nearest neighbour. A prior weight picked on the test set
would flatter the prior, so every choice here is made on dev (token accuracy against the dev split's word timings)
and only then read on test.

    python -m dtw_align_hf.experiments.alignment_sweep runs/experiments/x/varied_low/seed1/dtw_align [...] \
        --output sweep.json

A grid runs it for the systems named under its `alignment_sweep:` key (see `recipes/experiments/`) and writes
`alignment_sweep.md` next to its table; each run's figures go to `<run>/alignment_sweep.json` (kept on rerun).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


SWEEP_FILE = "alignment_sweep.json"
DEFAULT_PRIORS = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
DEFAULT_NORMALIZATIONS = ("none", "token_center", "token_zscore", "csls")
SWEEP_KEYS = ("systems", "priors", "normalizations", "max_samples")


def option_name(normalization: str, prior: float) -> str:
    return f"dtw|{normalization}|{prior:g}"


def candidate_options(
    priors: Sequence[float] = DEFAULT_PRIORS, normalizations: Sequence[str] = DEFAULT_NORMALIZATIONS
) -> dict[str, dict[str, Any]]:
    """`{name: align kwargs}`: `uniform`, `cmot` and DTW for every (normalization, prior weight) pair."""
    options: dict[str, dict[str, Any]] = {"uniform": {"method": "uniform"}, "cmot": {"method": "cmot"}}
    for normalization in normalizations:
        for prior in priors:
            options[option_name(normalization, float(prior))] = {
                "method": "dtw",
                "normalization": normalization,
                "diagonal_prior": float(prior),
            }
    return options


def _best(dev: dict[str, dict[str, Any]], names: list[str]) -> str | None:
    """The name with the highest dev token accuracy; ties go to the earlier (smaller prior) one."""
    scored = [(dev[n]["token_accuracy"], -i, n) for i, n in enumerate(names) if dev[n]["token_accuracy"] is not None]
    return max(scored)[2] if scored else None


def choose(
    dev: dict[str, dict[str, Any]], priors: Sequence[float], normalizations: Sequence[str]
) -> dict[str, str | None]:
    """The dev-chosen settings: `prior` (best weight, no normalization), `<normalization>` (best weight with it) and
    `best` (best pair overall); plain DTW and the uniform split are fixed rows, not choices."""
    chosen: dict[str, str | None] = {}
    chosen["prior"] = _best(dev, [option_name("none", float(p)) for p in priors])
    for normalization in normalizations:
        if normalization != "none":
            chosen[normalization] = _best(dev, [option_name(normalization, float(p)) for p in priors])
    names = [option_name(n, float(p)) for n in normalizations for p in priors]
    chosen["best"] = _best(dev, names)
    return chosen


def _data_arguments(settings: dict[str, Any]):
    from dtw_align_hf.data.arguments import DataArguments

    names = {f.name for f in dataclasses.fields(DataArguments)}
    values = {k.split(".", 1)[1]: v for k, v in settings.items() if k.startswith("data.") and k[5:] in names}
    return DataArguments(**values)


def _run_settings(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "dtw_align_run.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{str(run_dir)!r} has no dtw_align_run.json: give a finished run_finetune_st.py folder."
        )
    return json.loads(path.read_text(encoding="utf-8"))["settings"]


def sweep_run(
    run_dir: str | Path,
    *,
    priors: Sequence[float] = DEFAULT_PRIORS,
    normalizations: Sequence[str] = DEFAULT_NORMALIZATIONS,
    max_samples: int | None = 200,
    speech_encoder_cache_dir: str | None = None,
) -> dict[str, Any]:
    """Every candidate of `candidate_options` on a finished stage-2 run's dev and test splits, plus the dev choices.

    The data come from the run's own stored settings (`dtw_align_run.json`); reference timings from the demo corpus.
    A run trained with a frozen encoder reuses `speech_encoder_cache_dir` (the grid's encoder cache) when given.
    Returns (and writes to `<run_dir>/alignment_sweep.json`) `{"dev": {...}, "test": {...}, "chosen": {...}}`.
    """
    from dtw_align_hf import DTWAlignForSpeechTranslation, DTWAlignProcessor
    from dtw_align_hf.data.loading import load_splits
    from dtw_align_hf.evaluation import compare_alignment_options, reference_timings_for

    run_dir = Path(run_dir)
    settings = _run_settings(run_dir)
    data_args = _data_arguments(settings)
    model = DTWAlignForSpeechTranslation.from_pretrained(run_dir)
    processor = DTWAlignProcessor.from_pretrained(run_dir)
    model.eval()
    if settings.get("model.freeze_speech_encoder") and speech_encoder_cache_dir:
        model.freeze_speech_encoder()
        model.cache_speech_encoder_outputs(directory=speech_encoder_cache_dir)
    splits, _ = load_splits(data_args)
    options = candidate_options(priors, normalizations)
    result: dict[str, Any] = {"run": str(run_dir), "options": options, "max_samples": max_samples}
    for role, split in (("dev", data_args.eval_split), ("test", data_args.test_split)):
        key = "eval" if role == "dev" else "test"
        timings = reference_timings_for(data_args, split) if split else None
        if not timings or splits.get(key) is None:
            raise ValueError(
                f"{str(run_dir)!r}: the {role} split {split!r} has no reference word timings; the sweep needs both "
                "dev and test timings (the demo corpus has them)."
            )
        result[role] = compare_alignment_options(
            model, processor, splits[key], timings, options, max_samples=max_samples
        )
    result["chosen"] = choose(result["dev"], priors, normalizations)
    tmp = run_dir / f"{SWEEP_FILE}.tmp"
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tmp.replace(run_dir / SWEEP_FILE)
    return result


def summary_row(result: dict[str, Any]) -> dict[str, tuple[float | None, str | None]]:
    """Test token accuracy of the fixed rows and of each dev choice: `{column: (accuracy, option name)}`."""
    test = result["test"]
    row = {
        "uniform": (test["uniform"]["token_accuracy"], "uniform"),
        "cmot": (test["cmot"]["token_accuracy"], "cmot"),
        "dtw": (test[option_name("none", 0.0)]["token_accuracy"], option_name("none", 0.0)),
    }
    for column, name in result["chosen"].items():
        row[f"dtw+{column}"] = (test[name]["token_accuracy"] if name else None, name)
    return row


def _fmt_percent(values: list[float]) -> str:
    """`mean ± std` in percent over seeds (`compare.mean_std`: sample std, none for a single seed)."""
    from .compare import mean_std

    mean, std, _ = mean_std(values)
    if mean is None:
        return "-"
    return f"{100 * mean:.1f}" if std is None else f"{100 * mean:.1f} ± {100 * std:.1f}"


def sweep_table(results: dict[tuple[str, str], list[dict[str, Any]]]) -> str:
    """Markdown: one row per (data, system), test token accuracy (%) mean ± std over seeds; the dev-chosen options."""
    columns: list[str] = []
    for runs in results.values():
        for result in runs:
            for column in summary_row(result):
                if column not in columns:
                    columns.append(column)
    lines = [
        "| data | system | seeds | " + " | ".join(columns) + " | dev-chosen (per seed) |",
        "|" + "---|" * (len(columns) + 4),
    ]
    for (data, system), runs in results.items():
        rows = [summary_row(r) for r in runs]
        cells = [_fmt_percent([r[c][0] for r in rows if c in r and r[c][0] is not None]) for c in columns]
        chosen = "; ".join(
            ", ".join(
                f"{k}={v.split('|', 1)[1] if v else '-'}" for k, v in r["chosen"].items() if k in ("prior", "best")
            )
            for r in runs
        )
        lines.append(f"| {data} | {system} | {len(runs)} | " + " | ".join(cells) + f" | {chosen} |")
    return "\n".join(lines) + "\n"


def sweep_grid(grid, echo=None) -> dict[str, Any]:
    """The sweep of `grid.alignment_sweep` over its finished runs (a run's existing `alignment_sweep.json` is kept);
    writes `<output_dir>/alignment_sweep.md` and `.json`. Returns `{"table", "results", "failed"}`."""
    spec = grid.alignment_sweep
    echo = echo or (lambda _: None)
    priors = [float(p) for p in spec.get("priors") or DEFAULT_PRIORS]
    normalizations = list(spec.get("normalizations") or DEFAULT_NORMALIZATIONS)
    wanted = set(spec.get("systems") or [])
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    failed = []
    for run in grid.runs():
        if run.stage != "stage2" or run.system not in wanted or not run.finished:
            continue
        path = run.output_dir / SWEEP_FILE
        result = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        if result is None or result.get("options") != candidate_options(priors, normalizations):
            try:
                result = sweep_run(
                    run.output_dir,
                    priors=priors,
                    normalizations=normalizations,
                    max_samples=spec.get("max_samples", 200),
                    speech_encoder_cache_dir=run.flags.get("speech_encoder_cache_dir"),
                )
            except (OSError, ValueError, RuntimeError) as error:  # one run's problem must not lose the others
                echo(f"[alignment sweep] {run.name}: FAILED ({error})")
                failed.append(run.name)
                continue
            echo(f"[alignment sweep] {run.name}: done")
        results.setdefault((run.data, run.system), []).append(result)
    table = sweep_table(results) if results else ""
    grid.output_dir.mkdir(parents=True, exist_ok=True)
    header = (
        "Test token accuracy (%) of alignment options on the trained models, mean ± std over seeds; every `dtw+...` "
        "column is the setting chosen on the dev split (`prior`: diagonal-prior weight without normalization; "
        "`<normalization>`: its best prior weight; `best`: the best pair). `dev-chosen` lists normalization|weight.\n\n"
    )
    (grid.output_dir / "alignment_sweep.md").write_text(header + table, encoding="utf-8")
    if results:
        plot_sweep(results, grid.output_dir / "alignment_sweep.png")
    flat = [{"data": d, "system": s, **r} for (d, s), runs in results.items() for r in runs]
    (grid.output_dir / "alignment_sweep.json").write_text(json.dumps(flat, indent=2) + "\n", encoding="utf-8")
    return {"table": table, "results": results, "failed": failed}


def plot_sweep(results: dict[tuple[str, str], list[dict[str, Any]]], path: str | Path) -> Path:
    """Bars of test token accuracy per alignment option (uniform, cmot, dtw, the dev-chosen corrections), one group
    per (data, system), std over seeds as error bars."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = list(results)
    columns: list[str] = []
    for runs in results.values():
        for column in summary_row(runs[0]):
            if column not in columns:
                columns.append(column)
    fig = Figure(figsize=(min(16.0, max(7.0, 1.2 * len(groups))), 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = np.arange(len(groups))
    width = 0.85 / max(len(columns), 1)
    for i, column in enumerate(columns):
        means, stds = [], []
        for group in groups:
            values = [100 * v for r in results[group] if (v := summary_row(r).get(column, (None,))[0]) is not None]
            means.append(float(np.mean(values)) if values else np.nan)
            stds.append(float(np.std(values, ddof=1)) if len(values) > 1 else 0.0)
        ax.bar(x + (i - (len(columns) - 1) / 2) * width, means, width, yerr=stds, capsize=2, label=column)
    ax.set_xticks(x, [f"{d}\n{s}" for d, s in groups], fontsize="small")
    ax.set_ylabel("test token accuracy (%)")
    ax.set_title("Alignment options on the trained models (dtw+...: chosen on dev)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="x-small", ncols=4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return Path(path)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m dtw_align_hf.experiments.alignment_sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("runs", nargs="+", help="Finished run_finetune_st.py folders.")
    parser.add_argument("--priors", type=float, nargs="+", default=list(DEFAULT_PRIORS))
    parser.add_argument("--normalizations", nargs="+", default=list(DEFAULT_NORMALIZATIONS))
    parser.add_argument("--max_samples", type=int, default=200)
    parser.add_argument("--speech_encoder_cache_dir", default=None)
    parser.add_argument("--output", default=None, help="JSON with every run's figures (default: print the table).")
    args = parser.parse_args(argv)
    results = {}
    for run in args.runs:
        result = sweep_run(
            run,
            priors=args.priors,
            normalizations=args.normalizations,
            max_samples=args.max_samples,
            speech_encoder_cache_dir=args.speech_encoder_cache_dir,
        )
        results[(str(Path(run).parent), Path(run).name)] = [result]
    table = sweep_table(results)
    print(table)  # noqa: T201 -- the command line's own output
    if args.output:
        Path(args.output).write_text(json.dumps([r for v in results.values() for r in v], indent=2), encoding="utf-8")
    return {"table": table}


if __name__ == "__main__":
    main()
