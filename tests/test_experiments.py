"""The experiment tool (`python -m dtw_align_hf.experiments`): grid -> runs, resume, failures, table, plots.

The unit tests drive the runner with a fake command runner that writes what the run scripts write
(results.json, test_hypotheses.txt / test_references.txt, train_results.json, trainer_state.json), so they check
the planning, resume and aggregation logic in milliseconds; `test_quick_grid_end_to_end` runs the real scripts.
"""

import json
import math
import os
import threading
import time
from pathlib import Path

import pytest

from dtw_align_hf.experiments import QUICK, aggregate, collect, execute, load_grid, mean_std, write_report
from dtw_align_hf.experiments.compare import add_bootstrap, align_seconds
from dtw_align_hf.experiments.grid import STAGE1_NAME, to_cli


REPO = Path(__file__).resolve().parents[1]
DEMO_GRID = REPO / "recipes/experiments/demo_grid.yaml"
QUICK_GRID = REPO / "recipes/experiments/quick_grid.yaml"
REFERENCES = ["the small red house", "a dog runs", "the cat sees the tree", "he was here", "we go home now"]


def _flag(command, name):
    return command[command.index(f"--{name}") + 1]


def _grid(tmp_path, **changes):
    raw = {
        "output_dir": str(tmp_path / "grid"),
        "stage1": {"recipe": "recipes/demo/pretrain_mt.yaml"},
        "stage2": {"recipe": "recipes/demo/finetune_st.yaml"},
        "data": {"low": {"demo_train_size": 10}},
        "seeds": [1, 2],
        "baseline": "dtw_align",
        "systems": {"dtw_align": {"alignment": "dtw"}, "cmot": {"preset": "cmot"}},
        "bootstrap": {"n_samples": 50},
    }
    raw.update(changes)
    return load_grid(raw, repo=REPO)


class FakeScripts:
    """Stands in for the run scripts: writes a run folder's outputs, or fails for the names in `fail`."""

    def __init__(self, hypotheses=None, fail=(), bleu=None):
        self.calls, self.fail = [], set(fail)
        self.hypotheses = hypotheses or {}
        self.bleu = bleu or {}

    def __call__(self, command, log_path, cwd, env):
        out = Path(_flag(command, "output_dir"))
        seed, system = int(_flag(command, "seed")), out.name
        self.calls.append(f"{out.parent.parent.name}/seed{seed}/{system}")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text("fake run\n")
        if system in self.fail:
            return 1
        out.mkdir(parents=True, exist_ok=True)
        hyps = self.hypotheses.get((system, seed), REFERENCES)
        (out / "test_hypotheses.txt").write_text("\n".join(hyps) + "\n")
        (out / "test_references.txt").write_text("\n".join(REFERENCES) + "\n")
        bleu, token = self.bleu.get((system, seed), (10.0, 0.5))
        results = {
            "test": {"bleu": bleu, "chrf": 2 * bleu, "bleu_signature": "nrefs:1|fake", "chrf_signature": "chrF2|f"},
            "wall_time_seconds": 100.0 + seed,
            "train": {"steps": 6},
        }
        if system != STAGE1_NAME:
            results["alignment"] = {"token_accuracy": token, "frame_accuracy": token / 2, "method": "dtw"}
        (out / "train_results.json").write_text(json.dumps({"train_runtime": 50.0 + seed}))
        log = [{"step": 3, "align/seconds": 0.5, "loss": 2.0}, {"step": 6, "align/seconds": 1.0}, {"step": 6}]
        (out / "trainer_state.json").write_text(json.dumps({"log_history": log}))
        (out / "results.json").write_text(json.dumps(results))
        return 0


def test_demo_grid_plans_every_system_on_a_shared_stage1():
    grid = load_grid(DEMO_GRID, repo=REPO, output_dir="/tmp/never-written")
    runs = grid.runs()
    assert set(grid.systems) >= {"dtw_align", "cmot", "dtw_discrete", "cmot_interpolation", "multitask", "st_only"}
    assert len(runs) == len(grid.data) * len(grid.seeds) * (1 + len(grid.systems)) == 42
    for run in runs:
        command = run.command("python", REPO)
        assert command[1] == str(REPO / run.script) and _flag(command, "config") == str(run.recipe)
        assert _flag(command, "seed") == _flag(command, "data_seed") == str(run.seed)  # same data order per seed
        assert Path(_flag(command, "output_dir")) == grid.output_dir / run.data / f"seed{run.seed}" / run.system
        if run.stage == "stage2":
            # every system of a data condition and seed starts from the same stage-1 model, trained before it
            assert _flag(command, "mt_model_name_or_path") == str(run.depends_on.output_dir)
            assert runs.index(run.depends_on) < runs.index(run)
            assert _flag(command, "demo_train_size") == str(grid.data[run.data]["demo_train_size"])
    flags = grid.systems
    # the preset is spelled out, since the demo recipe sets alignment/mixup/kl_weight explicitly (CMOT's released recipe)
    assert flags["cmot"]["alignment"] == "cmot" and flags["cmot"]["mixup"] == "discrete"
    assert flags["cmot"]["kl_weight"] == 2.0 and flags["cmot"]["mix_weight"] == 0.0
    assert (flags["dtw_align"]["alignment"], flags["dtw_align"]["mixup"]) == ("dtw", "interpolation")
    assert (flags["dtw_discrete"]["alignment"], flags["dtw_discrete"]["mixup"]) == ("dtw", "discrete")
    assert (flags["cmot_interpolation"]["alignment"], flags["cmot_interpolation"]["mixup"]) == (
        "cmot",
        "interpolation",
    )
    assert flags["multitask"] == {"alignment": "none", "mixup": "none"}
    assert flags["st_only"] == {"alignment": "none", "mixup": "none", "mt_weight": 0, "kl_weight": 0}


def test_quick_mode_is_run_demo_quick_with_two_systems_and_one_seed():
    import run_demo

    assert run_demo.QUICK == QUICK
    grid = load_grid(DEMO_GRID, repo=REPO, output_dir="/tmp/never-written", quick=True)
    assert list(grid.systems) == ["dtw_align", "cmot"] and grid.seeds == [1] and list(grid.data) == ["quick"]
    stage1, *systems = grid.runs()
    for run in (stage1, *systems):
        assert {k: run.flags[k] for k in QUICK} == QUICK
    # the committed quick grid is the same smoke run
    small = load_grid(QUICK_GRID, repo=REPO, output_dir="/tmp/never-written")
    assert list(small.systems) == ["dtw_align", "cmot"] and small.seeds == [1]
    for a, b in zip(grid.runs(), small.runs(), strict=True):
        assert {k: a.flags[k] for k in QUICK} == {k: b.flags[k] for k in QUICK}
        assert a.name == b.name


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sytems": {}}, "unknown key"),
        ({"systems": {"a": {"seed": 3}}}, "sets 'seed'"),
        ({"systems": {"a/b": {}}}, "folder name"),
        ({"systems": {STAGE1_NAME: {}}}, "folder name"),
        ({"baseline": "nope"}, "`baseline` 'nope'"),
        ({"seeds": [1, 1]}, "duplicates"),
        ({"common": {"--max_steps": 3}}, "without dashes"),
        ({"systems": {"a": {"preset": "fairseq"}}}, "preset 'fairseq'"),
    ],
)
def test_bad_grids_are_refused_before_any_run(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        _grid(tmp_path, **change)


def test_flags_become_hf_argparser_strings():
    args = to_cli({"freeze_feature_encoder": False, "speech_encoder_config": {"hidden_size": 4}})
    assert args == ["--freeze_feature_encoder", "false", "--speech_encoder_config", '{"hidden_size": 4}']
    assert to_cli({"files": ["a", "b"], "lr": 0.001}) == ["--files", "a", "b", "--lr", "0.001"]
    with pytest.raises(ValueError, match="null"):
        to_cli({"x": None})


def test_resume_skips_finished_runs_and_reruns_only_the_rest(tmp_path):
    grid = _grid(tmp_path)
    fake = FakeScripts()
    state = execute(grid, REPO, runner=fake, progress=False, echo=lambda _: None)
    order = ["low/seed1/stage1_mt", "low/seed1/dtw_align", "low/seed1/cmot"]
    assert fake.calls == order + [name.replace("seed1", "seed2") for name in order]
    assert {r["status"] for r in state["runs"].values()} == {"finished"}

    again = FakeScripts()
    execute(grid, REPO, runner=again, progress=False, echo=lambda _: None)
    assert again.calls == []  # every run has its results.json

    # a killed grid: one system finished, another left a checkpoint, a third died before its first save
    (grid.output_dir / "low/seed1/cmot/results.json").unlink()
    (grid.output_dir / "low/seed2/cmot/results.json").unlink()
    (grid.output_dir / "low/seed2/cmot/checkpoint-6").mkdir()
    (grid.output_dir / "low/seed2/dtw_align/results.json").unlink()
    stale = grid.output_dir / "low/seed2/dtw_align/stale.txt"
    stale.write_text("x")
    resumed = FakeScripts()
    state = execute(grid, REPO, runner=resumed, progress=False, echo=lambda _: None)
    assert resumed.calls == ["low/seed1/cmot", "low/seed2/dtw_align", "low/seed2/cmot"]
    assert (grid.output_dir / "low/seed2/cmot/checkpoint-6").is_dir()  # kept: the script resumes from it
    assert not stale.exists()  # nothing to resume from: the folder was emptied first
    assert state["runs"]["low/seed1/dtw_align"]["status"] == "finished"
    assert json.loads((grid.output_dir / "grid_state.json").read_text())["runs"].keys() == state["runs"].keys()


def test_a_failed_run_is_recorded_and_the_grid_goes_on(tmp_path):
    grid = _grid(tmp_path, seeds=[1])
    messages = []
    state = execute(grid, REPO, runner=FakeScripts(fail={"dtw_align"}), progress=False, echo=messages.append)
    runs = state["runs"]
    assert runs["low/seed1/dtw_align"]["status"] == "failed"
    assert runs["low/seed1/dtw_align"]["reason"] == "exit code 1"
    assert runs["low/seed1/cmot"]["status"] == "finished"
    assert any("FAILED" in m and "dtw_align" in m for m in messages)

    grid = _grid(tmp_path, seeds=[1], output_dir=str(tmp_path / "second"))
    state = execute(grid, REPO, runner=FakeScripts(fail={STAGE1_NAME}), progress=False, echo=lambda _: None)
    assert state["runs"]["low/seed1/stage1_mt"]["status"] == "failed"
    assert {state["runs"][f"low/seed1/{s}"]["status"] for s in ("dtw_align", "cmot")} == {"skipped"}
    report = write_report(grid, state)  # the table is still written, naming what did not finish
    assert all(row["bleu"]["mean"] is None for row in report["rows"])
    assert "Not finished" in (grid.output_dir / "results.md").read_text()


class SlowFakeScripts(FakeScripts):
    """FakeScripts that take a moment and record how many runs were live at once, and each run's stage-1 state."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lock, self.live, self.peak, self.stage1_done = threading.Lock(), 0, 0, {}

    def __call__(self, command, log_path, cwd, env):
        out = Path(_flag(command, "output_dir"))
        if out.name != STAGE1_NAME:
            self.stage1_done[str(out)] = (out.parent / STAGE1_NAME / "results.json").is_file()
        with self.lock:
            self.live += 1
            self.peak = max(self.peak, self.live)
        time.sleep(0.05)
        try:
            return super().__call__(command, log_path, cwd, env)
        finally:
            with self.lock:
                self.live -= 1


def test_parallel_jobs_respect_stage1_and_give_the_sequential_results(tmp_path):
    grid = _grid(tmp_path)
    fake = SlowFakeScripts(fail={"cmot"})
    messages = []
    state = execute(grid, REPO, runner=fake, progress=False, echo=messages.append, jobs=3)
    assert fake.peak >= 2, "no two runs ever ran at once"
    assert fake.stage1_done and all(fake.stage1_done.values()), "a system started before its stage 1 finished"
    assert sorted(fake.calls) == sorted(f"low/seed{s}/{n}" for s in (1, 2) for n in ("stage1_mt", "dtw_align", "cmot"))
    statuses = {name: r["status"] for name, r in state["runs"].items()}
    sequential = execute(
        _grid(tmp_path, output_dir=str(tmp_path / "seq")), REPO, runner=FakeScripts(fail={"cmot"}), progress=False,
        echo=lambda _: None,
    )  # fmt: skip
    assert statuses == {name: r["status"] for name, r in sequential["runs"].items()}
    assert len(messages) == 6 and sum("FAILED" in m for m in messages) == 2
    assert write_report(grid, state)["rows"][0]["bleu"]["mean"] == 10.0

    # a stage 1 that fails skips its systems, the other seed goes on
    fail_grid = _grid(tmp_path, output_dir=str(tmp_path / "fail"))
    fake = SlowFakeScripts(fail={STAGE1_NAME})
    state = execute(fail_grid, REPO, runner=fake, progress=False, echo=lambda _: None, jobs=2)
    assert {r["status"] for n, r in state["runs"].items() if not n.endswith(STAGE1_NAME)} == {"skipped"}
    with pytest.raises(ValueError, match="jobs=0"):
        execute(grid, REPO, runner=fake, progress=False, echo=lambda _: None, jobs=0)


def test_conditions_that_differ_only_in_stage2_flags_share_one_stage1(tmp_path):
    data = {
        "steady": {"demo_train_size": 10, "stage2": {"demo_speech": "steady"}},
        "varied": {"demo_train_size": 10, "stage2": {"demo_speech": "varied"}},
        "more": {"demo_train_size": 20, "stage2": {"demo_speech": "varied"}},
    }
    grid = _grid(tmp_path, data=data)
    runs = grid.runs()
    stage1 = [r for r in runs if r.stage == "stage1"]
    assert sorted(r.name for r in stage1) == [f"{d}/seed{s}/stage1_mt" for d in ("more", "steady") for s in (1, 2)]
    assert all("demo_speech" not in r.flags for r in stage1)
    for run in runs:
        if run.stage == "stage2":
            assert run.flags["demo_speech"] == data[run.data]["stage2"]["demo_speech"]
            expected = "more" if run.data == "more" else "steady"
            assert run.depends_on.name == f"{expected}/seed{run.seed}/stage1_mt"
            assert run.flags["mt_model_name_or_path"] == str(run.depends_on.output_dir)
    fake = FakeScripts()
    state = execute(grid, REPO, runner=fake, progress=False, echo=lambda _: None)
    assert sum(c.endswith("stage1_mt") for c in fake.calls) == 4
    assert {r["status"] for r in state["runs"].values()} == {"finished"}
    with pytest.raises(ValueError, match="flag names are written without dashes"):
        _grid(tmp_path, data={"x": {"stage2": {"--demo_speech": "varied"}}})


@pytest.mark.parametrize(
    ("sweep", "message"),
    [({"systems": ["nope"]}, "alignment_sweep.systems` names unknown"), ({"prior": [1]}, "alignment_sweep` takes")],
)
def test_bad_alignment_sweeps_are_refused(tmp_path, sweep, message):
    with pytest.raises(ValueError, match=message):
        _grid(tmp_path, alignment_sweep=sweep)


def test_mean_std_over_seeds():
    assert mean_std([10.0, 12.0, 17.0]) == (13.0, math.sqrt(13.0), 3)  # ((9 + 1 + 16) / 2) ** 0.5
    assert mean_std([4.0, None]) == (4.0, None, 1)
    assert mean_std([None]) == (None, None, 0)


def test_align_seconds_weights_each_window_by_its_steps():
    log = [{"step": 3, "align/seconds": 0.5}, {"step": 6, "align/seconds": 1.0}, {"step": 6, "train_loss": 1.0}]
    assert align_seconds({"log_history": log}) == pytest.approx(0.5 * 3 + 1.0 * 3)
    assert align_seconds({"log_history": [{"step": 3, "loss": 1.0}]}) is None  # not logged: n/a
    assert align_seconds(None) is None


def test_table_aggregates_over_seeds_and_bootstraps_against_the_baseline(tmp_path):
    grid = _grid(tmp_path, seeds=[1, 2, 3])
    worse = ["the house", "a dog", "cat tree", "he was", "we go"]
    fake = FakeScripts(
        hypotheses={("cmot", s): worse for s in (1, 2, 3)},
        bleu={
            ("dtw_align", 1): (10.0, 0.40),
            ("dtw_align", 2): (12.0, 0.50),
            ("dtw_align", 3): (17.0, 0.60),
            ("cmot", 1): (8.0, 0.1),
            ("cmot", 2): (8.0, 0.2),
            ("cmot", 3): (8.0, 0.3),
        },
    )
    state = execute(grid, REPO, runner=fake, progress=False, echo=lambda _: None)
    records = collect(grid, state)
    add_bootstrap(grid, records)
    rows = {row["system"]: row for row in aggregate(grid, records)}
    base, cmot = rows["dtw_align"], rows["cmot"]
    assert base["bleu"]["mean"] == pytest.approx(13.0) and base["bleu"]["std"] == pytest.approx(math.sqrt(13.0))
    assert base["chrf"]["mean"] == pytest.approx(26.0) and base["chrf"]["std"] == pytest.approx(2 * math.sqrt(13.0))
    assert base["token_accuracy"]["mean"] == pytest.approx(0.5) and base["token_accuracy"]["std"] == pytest.approx(0.1)
    assert cmot["bleu"]["std"] == pytest.approx(0.0) and cmot["frame_accuracy"]["mean"] == pytest.approx(0.1)
    assert base["train_seconds"]["mean"] == pytest.approx(52.0) and base["align_seconds"]["mean"] == pytest.approx(4.5)
    assert base["wall_seconds"]["mean"] == pytest.approx(102.0)
    assert base["seeds"] == [1, 2, 3] and base["p_value_bleu"] == {} and base["delta_bleu"]["mean"] == 0.0
    # the bootstrap compares the hypothesis files (perfect baseline vs a worse system), one p-value per seed
    assert set(cmot["p_value_bleu"]) == {"1", "2", "3"}
    assert all(0.0 < p <= 1.0 for p in cmot["p_value_bleu"].values())
    assert cmot["delta_bleu"]["mean"] < 0 and cmot["delta_bleu"]["std"] == pytest.approx(0.0)
    for lo, hi in cmot["bleu_ci95"].values():
        assert lo <= hi

    report = write_report(grid, state)
    table = (grid.output_dir / "results.md").read_text()
    main_rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| low |")]
    assert [cells[1] for cells in main_rows if len(cells) > 5] == ["**dtw_align**", "cmot"]  # then stage 1's table
    assert "13.00 ± 3.61" in table and "nrefs:1|fake" in table
    assert json.loads((grid.output_dir / "results.json").read_text())["rows"] == json.loads(
        json.dumps(report["rows"], default=str)
    )
    assert sorted(Path(p).name for p in report["plots"]) == ["bleu.png", "chrf.png", "token_accuracy.png"]


def test_quick_grid_end_to_end(tmp_path, monkeypatch):
    """`--quick` through the real run scripts: the tiny demo corpus, 2 systems, 1 seed, 12 steps, the two systems at
    once (`--jobs 2`); about a minute on 2 CPUs, in the default suite."""
    from dtw_align_hf.experiments.__main__ import main

    monkeypatch.setenv("DTW_ALIGN_HF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    out = tmp_path / "grid"
    report = main(["--quick", "--output_dir", str(out), "--no_progress", "--jobs", "2"])
    assert report["failed"] == []
    assert [(row["data"], row["system"]) for row in report["rows"]] == [("quick", "dtw_align"), ("quick", "cmot")]
    for row in report["rows"]:
        assert row["bleu"]["mean"] is not None and row["token_accuracy"]["mean"] is not None
    cmot = report["rows"][1]
    assert set(cmot["p_value_bleu"]) == {"1"} and 0.0 < cmot["p_value_bleu"]["1"] <= 1.0
    table = (out / "results.md").read_text()
    assert sum(line.startswith("| quick |") and len(line.split(" | ")) > 5 for line in table.splitlines()) == 2
    assert "nrefs:1" in table
    assert json.loads((out / "results.json").read_text())["baseline"] == "dtw_align"
    for name in ("bleu.png", "chrf.png", "token_accuracy.png"):
        assert (out / name).stat().st_size > 0
    for system in ("stage1_mt", "dtw_align", "cmot"):
        assert (out / "quick/seed1" / system / "results.json").is_file()
    sweep = (out / "alignment_sweep.md").read_text()  # the grid's alignment sweep ran on the DTW-Align run
    assert "| quick | dtw_align | 1 |" in sweep and "dtw+prior" in sweep
    assert (out / "quick/seed1/dtw_align/alignment_sweep.json").is_file()
    assert (out / "alignment_sweep.png").stat().st_size > 0
    # rerunning the finished grid trains nothing
    again = main(["--quick", "--output_dir", str(out), "--no_progress"])
    state = json.loads((out / "grid_state.json").read_text())
    assert {r["status"] for r in state["runs"].values()} == {"finished"} and again["failed"] == []


def test_table_names_the_post_hoc_aligner_of_systems_trained_without_alignment(tmp_path):
    systems = {"dtw_align": {"alignment": "dtw"}, "multitask": {"alignment": "none", "mixup": "none"}}
    grid = _grid(tmp_path, seeds=[1], systems=systems)
    state = execute(grid, REPO, runner=FakeScripts(), progress=False, echo=lambda _: None)
    write_report(grid, state)
    table = (grid.output_dir / "results.md").read_text()
    assert "| low | multitask [dtw] |" in table and "| low | **dtw_align** |" in table


def test_a_finished_run_with_other_flags_is_kept_and_flagged(tmp_path):
    grid = _grid(tmp_path, seeds=[1])
    execute(grid, REPO, runner=FakeScripts(), progress=False, echo=lambda _: None)
    changed = _grid(tmp_path, seeds=[1], common={"max_steps": 7})
    messages, fake = [], FakeScripts()
    state = execute(changed, REPO, runner=fake, progress=False, echo=messages.append)
    assert fake.calls == []  # results.json decides; the warning says how to rerun
    assert all(record["changed"] for record in state["runs"].values())
    assert all("delete the folder to rerun" in message for message in messages)
