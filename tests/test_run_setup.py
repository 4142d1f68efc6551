"""Set-up mistakes caught before any data is read or any model is built (issue 11, items 2, 3, 7), settings changed
the one way on a checkpoint (issue 10, bug 3), and one audio-length limit (issue 10, bug 6)."""

import functools
import json
import logging
from pathlib import Path

import pytest

import run_finetune_st
import run_pretrain_mt
from dtw_align_hf.cli import SetupError, parse_args_and_config
from dtw_align_hf.run_utils import prepare_output_dir, run_settings
from dtw_align_hf.trainer import RUN_SETTINGS_NAME, DTWAlignTrainingArguments


REPO = Path(__file__).resolve().parent.parent
ST_RECIPE = str(REPO / "recipes" / "demo" / "finetune_st.yaml")
MT_RECIPE = str(REPO / "recipes" / "demo" / "pretrain_mt.yaml")


class NoWork(Exception):
    pass


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the script reaches data loading or model building."""

    def forbidden(*args, **kwargs):
        raise NoWork("the set-up error should have come before any work")

    for module in (run_finetune_st, run_pretrain_mt):
        monkeypatch.setattr(module, "load_splits", forbidden)
    monkeypatch.setattr(run_finetune_st, "build_model", forbidden)


def st(args, tmp_path, **config):
    config.setdefault("output_dir", str(tmp_path / "st"))
    return run_finetune_st.main(*parse_args_and_config(run_finetune_st.make_parser(), args, config=config))


def test_choice_errors_name_the_option_and_the_choices(tmp_path):
    with pytest.raises(SetupError, match=r"--mixup 'interp' is not one of interpolation, discrete, none"):
        st(["--config", ST_RECIPE, "--mixup", "interp"], tmp_path)
    with pytest.raises(SetupError, match=r"--alignment 'dwt'.*Did you mean --alignment dtw"):
        st(["--config", ST_RECIPE, "--alignment", "dwt"], tmp_path)
    with pytest.raises(SetupError, match=r"--alignment_window -1 must be >= 0"):
        st(["--config", ST_RECIPE, "--alignment_window", "-1"], tmp_path)
    help_text = run_finetune_st.make_parser().format_help()
    assert "dtw | ot | cmot" in help_text or "dtw | cmot" in help_text  # generated from the config's names


def test_resume_typo_is_refused_with_suggestion(tmp_path):
    with pytest.raises(ValueError, match=r"--resume 'nevr'.*Did you mean --resume never"):
        st(["--config", ST_RECIPE, "--resume", "nevr"], tmp_path)


def test_missing_stage1_model_is_refused_before_work(tmp_path, no_work, tiny_mt_dir):
    with pytest.raises(SetupError, match="--mt_model_name_or_path"):
        st(["--config", ST_RECIPE], tmp_path, mt_model_name_or_path=None)
    with pytest.raises(SetupError, match=r"--mt_model_name_or_path 'runs/nowhere/pretrain_mt'.*run stage 1 first"):
        st(["--config", ST_RECIPE], tmp_path, mt_model_name_or_path="runs/nowhere/pretrain_mt")
    with pytest.raises(SetupError, match=r"--train_file '.*missing.tsv': no such file"):
        st(
            ["--config", ST_RECIPE],
            tmp_path,
            dataset="manifest",
            train_file=str(tmp_path / "missing.tsv"),
            mt_model_name_or_path=str(tiny_mt_dir),
        )
    assert not (tmp_path / "st").exists()  # nothing written


def test_encoder_cache_without_a_frozen_encoder_is_refused_before_work(tmp_path, no_work, tiny_mt_dir):
    with pytest.raises(SetupError, match="--cache_speech_encoder_outputs.*--freeze_speech_encoder"):
        st(
            ["--config", ST_RECIPE, "--cache_speech_encoder_outputs"],
            tmp_path,
            mt_model_name_or_path=str(tiny_mt_dir),
            freeze_speech_encoder=False,
        )


def test_encoder_cache_folder_without_the_cache_is_refused_before_work(tmp_path, no_work, tiny_mt_dir):
    with pytest.raises(SetupError, match="--speech_encoder_cache_dir.*add --cache_speech_encoder_outputs"):
        st(
            ["--config", ST_RECIPE, "--speech_encoder_cache_dir", str(tmp_path / "enc")],
            tmp_path,
            mt_model_name_or_path=str(tiny_mt_dir),
            freeze_speech_encoder=True,
        )
    assert not (tmp_path / "enc").exists()


def test_nested_speech_encoder_config_typo_is_refused(tmp_path):
    with pytest.raises(SetupError, match=r"(?s)num_hiden_layers.*did you mean 'num_hidden_layers'"):
        st(["--config", ST_RECIPE], tmp_path, speech_encoder_config={"model_type": "hubert", "num_hiden_layers": 2})


def test_column_options_on_the_command_line_and_in_recipes(tmp_path):
    for module, recipe in ((run_finetune_st, ST_RECIPE), (run_pretrain_mt, MT_RECIPE)):
        parsed = parse_args_and_config(
            module.make_parser(),
            ["--config", recipe, "--transcript_column", "sentence", "--translation_column", "english"],
            config={"audio_column": "wav", "id_column": "key"},
        )
        data = parsed[1]
        assert (data.audio_column, data.transcript_column, data.translation_column, data.id_column) == (
            "wav", "sentence", "english", "key"
        )  # fmt: skip


# ---- the output folder: not ours, other settings, already done ----


def args_for(out, **kwargs):
    return DTWAlignTrainingArguments(output_dir=str(out), use_cpu=True, report_to="none", **kwargs)


def make_run_folder(out: Path, settings, step=4):
    ckpt = out / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (ckpt / RUN_SETTINGS_NAME).write_text(json.dumps(settings))
    (out / RUN_SETTINGS_NAME).write_text(json.dumps(settings))
    (out / "config.json").write_text('{"alignment": "dtw"}')


def test_foreign_folder_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    for name, text in (("README.md", "my notes"), ("config.json", "{}"), ("results.json", "{}")):
        (out / name).write_text(text)
    settings = {"script": "s", "settings": {}}
    with pytest.raises(SetupError, match=r"(?s)is not empty \(README.md, config.json, results.json\).*--overwrite"):
        prepare_output_dir(args_for(out), settings)
    assert (out / "README.md").read_text() == "my notes" and not (out / RUN_SETTINGS_NAME).exists()
    assert prepare_output_dir(args_for(out, overwrite_output_dir=True), settings) is None
    assert (out / RUN_SETTINGS_NAME).is_file()


def test_script_refuses_a_foreign_folder_before_work(tmp_path, no_work, tiny_mt_dir):
    out = tmp_path / "st"
    out.mkdir()
    (out / "README.md").write_text("my notes")
    with pytest.raises(SetupError, match="not a DTW-Align run folder"):
        st(["--config", ST_RECIPE], tmp_path, mt_model_name_or_path=str(tiny_mt_dir))
    assert (out / "README.md").read_text() == "my notes"


def test_resume_with_other_settings_is_refused_naming_the_keys(tmp_path):
    out = tmp_path / "run"
    old = {"script": "run_finetune_st", "settings": {"alignment.alignment": "dtw", "alignment.mixup": None}}
    new = {"script": "run_finetune_st", "settings": {"alignment.alignment": "ot", "alignment.mixup": "discrete"}}
    make_run_folder(out, old)
    with pytest.raises(SetupError) as err:
        prepare_output_dir(args_for(out, max_steps=4), new)
    message = str(err.value)
    assert "alignment.alignment: 'dtw' -> 'ot'" in message and "alignment.mixup: None -> 'discrete'" in message
    assert "--overwrite_output_dir" in message and "new --output_dir" in message
    assert json.loads((out / "config.json").read_text()) == {"alignment": "dtw"}  # nothing relabelled
    assert json.loads((out / RUN_SETTINGS_NAME).read_text()) == old
    # the way out: --overwrite_output_dir starts over (our old checkpoints are removed)
    assert prepare_output_dir(args_for(out, max_steps=4, overwrite_output_dir=True), new) is None
    assert not (out / "checkpoint-4").exists() and json.loads((out / RUN_SETTINGS_NAME).read_text()) == new


def test_run_already_at_max_steps_says_so(tmp_path, caplog):
    out = tmp_path / "run"
    settings = {"script": "run_finetune_st", "settings": {"alignment.alignment": "dtw"}}
    make_run_folder(out, settings, step=4)
    with caplog.at_level(logging.WARNING):
        resume = prepare_output_dir(args_for(out, max_steps=4), settings)
    assert Path(resume).name == "checkpoint-4"
    assert "already at step 4 >= max_steps=4" in caplog.text and "Raise --max_steps" in caplog.text


def test_run_settings_leave_out_evaluation_only_data_options():
    data = run_finetune_st.DataArguments(dataset="demo", test_split="test", eval_split="dev")
    settings = run_settings("s", data=data)["settings"]
    assert "data.dataset" in settings and "data.test_split" not in settings and "data.recipe" not in settings
    align = run_settings("s", alignment=run_finetune_st.DTWAlignArguments(alignment="dtw", alignment_backend="numba"))
    assert align["settings"]["alignment.alignment"] == "dtw" and "alignment.alignment_backend" not in align["settings"]


# ---- settings on a complete checkpoint (issue 10, bug 3) and the audio-length limit (bug 6) ----


@pytest.fixture
def checkpoint(tmp_path, make_model):
    path = tmp_path / "ckpt"
    make_model(max_source_seconds=12.0).save_pretrained(path)
    return path


def test_preset_expands_on_a_loaded_checkpoint(checkpoint, tmp_path):
    from dtw_align_hf.configuration_dtw_align import PRESET_VALUES

    model_args = run_finetune_st.ModelArguments(model_name_or_path=str(checkpoint))
    args = args_for(tmp_path / "out")
    model = run_finetune_st.build_model(model_args, run_finetune_st.DTWAlignArguments(preset="cmot"), args)
    for name, value in PRESET_VALUES["cmot"].items():
        assert getattr(model.config, name) == value, name
    assert model.config.alignment == "cmot" and model.config.kl_weight == 2.0
    with pytest.raises(SetupError, match="adapter_hidden_size"):  # build_model refuses too (library use)
        run_finetune_st.build_model(model_args, run_finetune_st.DTWAlignArguments(adapter_hidden_size=16), args)
    same = run_finetune_st.build_model(model_args, run_finetune_st.DTWAlignArguments(adapter_hidden_size=32), args)
    assert same.config.adapter_hidden_size == 32  # an equal value is no change


def test_architecture_fields_on_a_checkpoint_are_refused_before_work(checkpoint, tmp_path, no_work):
    with pytest.raises(SetupError, match=r"--adapter_num_layers would change the architecture"):
        st(
            ["--config", ST_RECIPE, "--adapter_num_layers", "3"],
            tmp_path,
            model_name_or_path=str(checkpoint),
            adapter_hidden_size=32,  # the recipe's 64 differs from the checkpoint's 32; equal values are accepted
        )


def test_one_audio_length_limit_the_model_config(checkpoint, tmp_path, monkeypatch):
    """The data filter follows the model's max_source_seconds (never above it); stage 1 decides no limit."""
    seen = {}

    def capture(data_args, **kwargs):
        seen["max_duration"] = data_args.max_duration
        raise NoWork

    monkeypatch.setattr(run_finetune_st, "load_splits", capture)
    st = functools.partial(globals()["st"], adapter_hidden_size=None)  # the recipe's adapter size is for new models
    with pytest.raises(NoWork):  # the checkpoint's 12 s caps the recipe's 30 s data filter
        st(
            ["--config", ST_RECIPE],
            tmp_path,
            model_name_or_path=str(checkpoint),
            max_duration=30.0,
            max_source_seconds=None,  # the demo recipe sets 30
        )
    assert seen["max_duration"] == 12.0
    with pytest.raises(NoWork):  # --max_source_seconds is the one knob
        st(["--config", ST_RECIPE], tmp_path, model_name_or_path=str(checkpoint), max_source_seconds=5.0)
    assert seen["max_duration"] == 5.0
    with pytest.raises(NoWork):  # a stricter data filter is the user's choice
        st(["--config", ST_RECIPE], tmp_path, model_name_or_path=str(checkpoint), max_duration=3.0)
    assert seen["max_duration"] == 3.0


@pytest.mark.slow
def test_script_prints_one_line_and_exits_2(tmp_path):
    """From the shell a set-up error is one line on stderr and exit status 2, no traceback (as argparse does)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "run_finetune_st.py", "--config", ST_RECIPE, "--mixup", "interp", "--resume", "never"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("run_finetune_st.py: error: --mixup 'interp'")


def test_a_test_set_without_one_usable_utterance_is_reported_not_fatal(caplog):
    # Every test batch skipped (e.g. a manifest whose audio paths are all wrong): Trainer.predict then returns no
    # predictions; the run must end with a clear warning and an unscored result, not a TypeError after training.
    from types import SimpleNamespace

    from dtw_align_hf.data.validation import BadRecordCounter
    from dtw_align_hf.run_utils import evaluate_test_set

    trainer = SimpleNamespace(predict=lambda *a, **k: SimpleNamespace(predictions=None, label_ids=None))
    tokenizer = SimpleNamespace(pad_token_id=1)
    counter = BadRecordCounter("manifest/test")
    counter.skip("u1", "unreadable_audio", "audio file not found: a.flac")
    with caplog.at_level("WARNING"):
        out = evaluate_test_set(trainer, [], tokenizer, counter)
    assert out["num_samples"] == 0 and out["hypotheses"] == [] and "bleu" not in out
    assert "No test utterance could be used (1 skipped" in caplog.text
