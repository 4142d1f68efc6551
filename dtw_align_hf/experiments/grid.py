"""The experiment grid: a small YAML file -> the list of runs (stage-1 MT models and stage-2 systems) to execute.

A grid names `systems` (DTW-Align settings, the `DTWAlignConfig` field names the stage-2 script takes as flags),
`data` conditions (data flags such as `demo_train_size` or `dataset: manifest` + `train_file`), `seeds`, a shared
stage 1 and `common` flags. One stage-1 translation model is trained per data condition and seed and reused by
every system of that condition and seed, so the systems differ only in their DTW-Align settings: same data, same
data order (the seed), same steps. Layout of `output_dir`:

    <output_dir>/<data>/seed<seed>/stage1_mt/      stage 1 (run_pretrain_mt.py)
    <output_dir>/<data>/seed<seed>/<system>/       stage 2 (run_finetune_st.py)
    <output_dir>/logs/<data>__seed<seed>__<name>.log

The systems follow the comparisons of the DTW-Align paper (Tables 1-3: DTW-Align vs CMOT, interpolation vs
discrete mixup, the multitask and plain-ST baselines); see `recipes/experiments/demo_grid.yaml`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


STAGE1_NAME = "stage1_mt"
STAGE1_SCRIPT = "run_pretrain_mt.py"
STAGE2_SCRIPT = "run_finetune_st.py"
GRID_KEYS = ("description", "output_dir", "stage1", "stage2", "common", "data", "seeds", "systems", "baseline")
GRID_KEYS += ("bootstrap", "quick_systems", "alignment_sweep")
STAGE_KEYS = ("recipe", "overrides")
# Set by the grid for every run; a grid that sets them itself is refused.
RESERVED_FLAGS = ("output_dir", "seed", "data_seed", "mt_model_name_or_path", "config", "overwrite_output_dir")

#: `--quick`: the settings of `run_demo.py --quick` (a tiny corpus and a few steps), applied to both stages.
QUICK = {
    "demo_train_size": 48,
    "demo_eval_size": 8,
    "demo_test_size": 8,
    "max_steps": 12,
    "save_steps": 6,
    "logging_steps": 3,
    "warmup_steps": 2,
    "per_device_train_batch_size": 8,
}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass
class Run:
    """One invocation of a run script, in its own folder. Finished when the script has written `results.json`."""

    stage: str  # "stage1" | "stage2"
    data: str
    seed: int
    system: str  # STAGE1_NAME for stage 1
    output_dir: Path
    recipe: Path
    flags: dict[str, Any]
    depends_on: Run | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"{self.data}/seed{self.seed}/{self.system}"

    @property
    def results_file(self) -> Path:
        return self.output_dir / "results.json"

    @property
    def finished(self) -> bool:
        return self.results_file.is_file()

    @property
    def script(self) -> str:
        return STAGE1_SCRIPT if self.stage == "stage1" else STAGE2_SCRIPT

    def command(self, python: str, repo: Path) -> list[str]:
        """`python <repo>/<script> --config <recipe> --output_dir ... --seed ... [--flag value ...]`."""
        return [python, str(repo / self.script), "--config", str(self.recipe), *to_cli(self.flags)]


@dataclass
class Grid:
    """A parsed grid. `runs()` gives the runs in execution order (each stage 1 before the systems that use it)."""

    output_dir: Path
    stage1_recipe: Path
    stage2_recipe: Path
    stage1_overrides: dict[str, Any]
    stage2_overrides: dict[str, Any]
    common: dict[str, Any]
    data: dict[str, dict[str, Any]]
    seeds: list[int]
    systems: dict[str, dict[str, Any]]
    baseline: str
    bootstrap: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    source: str | None = None
    alignment_sweep: dict[str, Any] = field(default_factory=dict)

    def runs(self) -> list[Run]:
        """Each data condition and seed: its stage 1, then every system. Conditions whose stage-1 flags are the same
        (they differ only in `stage2:` data flags, e.g. the demo's steady vs varied speech over the same text) share
        the first one's stage 1 instead of training identical models twice."""
        runs: list[Run] = []
        shared: dict[str, Run] = {}
        for data_name, all_flags in self.data.items():
            data_flags = {k: v for k, v in all_flags.items() if k != "stage2"}
            stage2_data_flags = all_flags.get("stage2") or {}
            for seed in self.seeds:
                folder = self.output_dir / data_name / f"seed{seed}"
                stage1_flags = {**self.common, **data_flags, **self.stage1_overrides, "seed": seed, "data_seed": seed}
                key = json.dumps(stage1_flags, sort_keys=True, default=str)
                stage1 = shared.get(key)
                if stage1 is None:
                    stage1_dir = folder / STAGE1_NAME
                    stage1 = Run(
                        stage="stage1",
                        data=data_name,
                        seed=seed,
                        system=STAGE1_NAME,
                        output_dir=stage1_dir,
                        recipe=self.stage1_recipe,
                        flags={**stage1_flags, "output_dir": str(stage1_dir)},
                    )
                    shared[key] = stage1
                    runs.append(stage1)
                stage1_dir = stage1.output_dir
                for system, system_flags in self.systems.items():
                    run_dir = folder / system
                    flags = {**self.common, **data_flags, **stage2_data_flags, **self.stage2_overrides, **system_flags}
                    flags.update(
                        output_dir=str(run_dir), seed=seed, data_seed=seed, mt_model_name_or_path=str(stage1_dir)
                    )
                    runs.append(
                        Run("stage2", data_name, seed, system, run_dir, self.stage2_recipe, flags, depends_on=stage1)
                    )
        return runs


def to_cli(flags: dict[str, Any]) -> list[str]:
    """Flags as command-line strings for `HfArgumentParser`: booleans `true`/`false`, dicts as JSON, lists spread."""
    args: list[str] = []
    for key, value in flags.items():
        if value is None:
            raise ValueError(f"Flag {key!r} is null in the grid; remove it to keep the recipe's value.")
        args.append(f"--{key}")
        if isinstance(value, bool):
            args.append("true" if value else "false")
        elif isinstance(value, dict):
            args.append(json.dumps(value))
        elif isinstance(value, (list, tuple)):
            if not value:
                raise ValueError(f"Flag {key!r} is an empty list in the grid; remove it or give values.")
            args.extend(json.dumps(v) if isinstance(v, dict) else str(v) for v in value)
        else:
            args.append(str(value))
    return args


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{where} must be a mapping of flag -> value, got {type(value).__name__}.")
    for key in value:
        if not isinstance(key, str) or key.startswith("-"):
            raise ValueError(f"{where}: flag names are written without dashes, e.g. `max_steps: 200`; got {key!r}.")
        if key in RESERVED_FLAGS:
            raise ValueError(
                f"{where} sets {key!r}, which the grid sets for every run (one folder, seed and stage-1 model per "
                "run); remove it (use `output_dir`/`seeds` at the top of the grid)."
            )
    return dict(value)


def expand_preset(flags: dict[str, Any], where: str = "grid") -> dict[str, Any]:
    """Spell out a system's `preset` as explicit flags (the system's own flags still win).

    A value given explicitly wins over the preset in `DTWAlignConfig`, and stage-2 recipes set `alignment`, `mixup`,
    `kl_weight`, ... explicitly (the demo recipe does), so `--preset cmot` alone on top of such a recipe would still
    train DTW + interpolation. Passing every preset field makes the system what its preset says, whatever the recipe.
    """
    if "preset" not in flags:
        return flags
    from dtw_align_hf.configuration_dtw_align import PRESET_VALUES

    if flags["preset"] not in PRESET_VALUES:
        raise ValueError(f"{where}: preset {flags['preset']!r} is not one of {sorted(PRESET_VALUES)}.")
    return {"preset": flags["preset"], **PRESET_VALUES[flags["preset"]], **flags}


def _resolve(path: str | Path, repo: Path) -> Path:
    """A relative recipe path: from the current directory if it exists there, else from the repository root."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path.resolve()
    return (repo / path).resolve()


def load_grid(
    path: str | Path | dict[str, Any],
    *,
    repo: Path,
    output_dir: str | Path | None = None,
    quick: bool = False,
) -> Grid:
    """Read and check a grid (a YAML file or an already-loaded dict).

    Args:
        path: the YAML grid, or its content as a dict.
        repo (`Path`): the repository root (holds the run scripts; relative recipe paths fall back to it).
        output_dir: overrides the grid's `output_dir`.
        quick (`bool`): shrink the grid to a smoke run: `QUICK` flags (run_demo.py's tiny corpus and few steps) on
            both stages, one data condition (`quick`: the grid's data flags are dropped, so the recipes' own dataset
            runs, the demo corpus for the demo recipes), the first seed, and two systems (the baseline and the first
            of `quick_systems`, default the next system listed).

    Raises:
        `ValueError` naming the key for an unknown key, a bad name, a reserved flag or a missing part.
    """
    if isinstance(path, dict):
        raw, source = dict(path), None
    else:
        import yaml

        source = str(path)
        if not Path(path).is_file():
            raise FileNotFoundError(f"Grid file {source!r} does not exist (see recipes/experiments/demo_grid.yaml).")
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    where = f"grid {source!r}" if source else "grid"
    unknown = sorted(set(raw) - set(GRID_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {list(GRID_KEYS)}.")

    stages = {}
    for stage in ("stage1", "stage2"):
        section = raw.get(stage) or {}
        if not isinstance(section, dict) or sorted(set(section) - set(STAGE_KEYS)):
            raise ValueError(f"{where}: `{stage}` takes only {list(STAGE_KEYS)}, got {section!r}.")
        if not section.get("recipe"):
            raise ValueError(f"{where}: `{stage}.recipe` is missing (e.g. recipes/demo/pretrain_mt.yaml).")
        recipe = _resolve(section["recipe"], repo)
        if not recipe.is_file():
            raise FileNotFoundError(f"{where}: `{stage}.recipe` {str(recipe)!r} does not exist.")
        stages[stage] = (recipe, _mapping(section.get("overrides"), f"{where} `{stage}.overrides`"))

    systems_raw = raw.get("systems")
    if not isinstance(systems_raw, dict) or not systems_raw:
        raise ValueError(f"{where}: `systems` must map system names to DTW-Align flags (at least one system).")
    systems = {}
    for name, flags in systems_raw.items():
        if not isinstance(name, str) or not _NAME.match(name) or name == STAGE1_NAME:
            raise ValueError(
                f"{where}: system name {name!r} must be a folder name (letters, digits, _ . + -) other than "
                f"{STAGE1_NAME!r}."
            )
        systems[name] = expand_preset(_mapping(flags, f"{where} system {name!r}"), f"{where} system {name!r}")

    data_raw = raw.get("data") or {"default": {}}
    if not isinstance(data_raw, dict):
        raise TypeError(f"{where}: `data` must map condition names (e.g. low, high) to data flags.")
    data = {}
    for name, flags in data_raw.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{where}: data condition name {name!r} must be a folder name.")
        flags = dict(flags) if isinstance(flags, dict) else flags
        stage2_only = flags.pop("stage2", None) if isinstance(flags, dict) else None
        data[name] = _mapping(flags, f"{where} data condition {name!r}")
        if stage2_only is not None:
            data[name]["stage2"] = _mapping(stage2_only, f"{where} data condition {name!r} `stage2`")

    seeds = raw.get("seeds", [1])
    seeds = [seeds] if isinstance(seeds, int) else seeds
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f"{where}: `seeds` must be an integer or a non-empty list of integers, got {seeds!r}.")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{where}: `seeds` has duplicates: {seeds}.")

    baseline = raw.get("baseline", next(iter(systems)))
    if baseline not in systems:
        raise ValueError(f"{where}: `baseline` {baseline!r} is not one of the systems {list(systems)}.")
    bootstrap = raw.get("bootstrap") or {}
    if not isinstance(bootstrap, dict) or sorted(set(bootstrap) - {"n_samples", "seed"}):
        raise ValueError(f"{where}: `bootstrap` takes `n_samples` and `seed`, got {bootstrap!r}.")
    common = _mapping(raw.get("common"), f"{where} `common`")
    sweep = raw.get("alignment_sweep") or {}
    from .alignment_sweep import SWEEP_KEYS

    if not isinstance(sweep, dict) or sorted(set(sweep) - set(SWEEP_KEYS)):
        raise ValueError(f"{where}: `alignment_sweep` takes {list(SWEEP_KEYS)}, got {sweep!r}.")
    unknown_sweep = [s for s in sweep.get("systems") or [] if s not in systems]
    if unknown_sweep:
        raise ValueError(f"{where}: `alignment_sweep.systems` names unknown systems {unknown_sweep}.")

    if quick:
        others = [s for s in raw.get("quick_systems") or systems if s != baseline]
        unknown_quick = [s for s in others if s not in systems]
        if unknown_quick:
            raise ValueError(f"{where}: `quick_systems` names unknown systems {unknown_quick}.")
        systems = {baseline: systems[baseline], **({others[0]: systems[others[0]]} if others else {})}
        data = {"quick": {}}
        seeds = seeds[:1]
        common = {**common, **QUICK}
        stages = {k: (recipe, {**over, **QUICK}) for k, (recipe, over) in stages.items()}
        bootstrap = {**bootstrap, "n_samples": min(int(bootstrap.get("n_samples", 1000)), 200)}
        if sweep:
            sweep = {**sweep, "systems": [s for s in sweep.get("systems") or [] if s in systems], "max_samples": 8}

    out = output_dir or raw.get("output_dir")
    if not out:
        raise ValueError(f"{where}: give `output_dir` in the grid or --output_dir.")
    return Grid(
        output_dir=Path(out).resolve(),
        stage1_recipe=stages["stage1"][0],
        stage2_recipe=stages["stage2"][0],
        stage1_overrides=stages["stage1"][1],
        stage2_overrides=stages["stage2"][1],
        common=common,
        data=data,
        seeds=list(seeds),
        systems=systems,
        baseline=baseline,
        bootstrap=dict(bootstrap),
        description=raw.get("description"),
        source=source,
        alignment_sweep=dict(sweep),
    )
