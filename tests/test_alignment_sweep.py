"""The alignment sweep: one embedding pass compared against the per-setting evaluation, and the dev-side choices."""

import pytest

from dtw_align_hf.evaluation import compare_alignment_options, evaluate_alignment
from dtw_align_hf.experiments.alignment_sweep import (
    candidate_options,
    choose,
    option_name,
    summary_row,
    sweep_table,
)
from dtw_align_hf.testing_utils import synthetic_audio


DATASET = [
    {"id": "a", "audio": synthetic_audio(1.0, seed=1), "transcript": "das kleine haus"},
    {"id": "b", "audio": synthetic_audio(0.8, seed=2), "transcript": "ein hund"},
    {"id": "c", "audio": synthetic_audio(0.9, seed=3), "transcript": "ein hund"},  # no timings: skipped
    {"id": "d", "audio": synthetic_audio(1.2, seed=4), "transcript": "der hund"},  # 3 reference words: skipped
]
TIMINGS = {
    "a": [
        {"word": "das", "start": 0.0, "end": 0.2},
        {"word": "kleine", "start": 0.2, "end": 0.7},
        {"word": "haus", "start": 0.7, "end": 1.0},
    ],
    "b": [{"word": "ein", "start": 0.0, "end": 0.5}, {"word": "hund", "start": 0.5, "end": 0.8}],
    "d": [{"word": "x", "start": 0.0, "end": 0.4}, {"word": "y", "start": 0.4, "end": 0.8}, {"word": "z", "start": 1}],
}


def test_one_pass_equals_evaluate_alignment_setting_by_setting(make_model, tiny_processor):
    model = make_model(alignment="dtw")
    options = candidate_options(priors=[0.0, 0.5], normalizations=["none", "token_center"])
    assert list(options) == [
        "uniform",
        "cmot",
        "dtw|none|0",
        "dtw|none|0.5",
        "dtw|token_center|0",
        "dtw|token_center|0.5",
    ]
    got = compare_alignment_options(model, tiny_processor, DATASET, TIMINGS, options, batch_size=3)
    for name, kwargs in options.items():
        model.config.alignment_normalization = kwargs.get("normalization", "none")
        model.config.alignment_diagonal_prior = kwargs.get("diagonal_prior", 0.0)
        reference = evaluate_alignment(model, tiny_processor, DATASET, TIMINGS, method=kwargs["method"])
        assert got[name]["num_samples"] == reference["num_samples"] == 2, name
        assert got[name]["token_accuracy"] == pytest.approx(reference["token_accuracy"]), name
        assert got[name]["frame_accuracy"] == pytest.approx(reference["frame_accuracy"]), name


def _fake(dev_acc, test_acc):
    return {"dev": {k: {"token_accuracy": v} for k, v in dev_acc.items()},
            "test": {k: {"token_accuracy": v} for k, v in test_acc.items()}}  # fmt: skip


def test_choices_are_made_on_dev_and_read_on_test():
    priors, norms = [0.0, 0.5, 1.0], ["none", "csls"]
    dev = {"uniform": 0.6, "cmot": 0.1}
    dev.update(
        {option_name("none", p): a for p, a in zip(priors, [0.4, 0.7, 0.7], strict=True)}
    )  # tie: the smaller weight
    dev.update({option_name("csls", p): a for p, a in zip(priors, [0.5, 0.6, 0.8], strict=True)})
    test = {k: 1.0 - v for k, v in dev.items()}  # test figures differ: only dev decides
    result = _fake(dev, test)
    result["chosen"] = choose(result["dev"], priors, norms)
    assert result["chosen"] == {"prior": "dtw|none|0.5", "csls": "dtw|csls|1", "best": "dtw|csls|1"}
    row = summary_row(result)
    assert row["dtw"] == (pytest.approx(0.6), "dtw|none|0")
    assert row["dtw+prior"] == (pytest.approx(0.3), "dtw|none|0.5")
    assert row["dtw+best"] == (pytest.approx(0.2), "dtw|csls|1")
    table = sweep_table({("varied", "dtw_align"): [result, result]})
    line = next(line for line in table.splitlines() if line.startswith("| varied |"))
    assert "| 2 | 40.0 ± 0.0 | 90.0 ± 0.0 | 60.0 ± 0.0 |" in line and "best=csls|1" in line


def test_sweep_plot_is_written(tmp_path):
    from dtw_align_hf.experiments.alignment_sweep import plot_sweep

    dev = {"uniform": 0.6, "cmot": 0.1, "dtw|none|0": 0.5, "dtw|none|1": 0.7}
    result = _fake(dev, dev)
    result["chosen"] = choose(result["dev"], [0.0, 1.0], ["none"])
    path = plot_sweep(
        {("steady", "dtw_align"): [result], ("varied", "dtw_align"): [result, result]}, tmp_path / "s.png"
    )
    assert path.stat().st_size > 0
