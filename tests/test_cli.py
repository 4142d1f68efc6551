"""parse_args_and_config: recipe values as defaults, command line wins, unknown keys are errors."""

import json
from dataclasses import dataclass, field

import pytest
from transformers import HfArgumentParser

from dtw_align_hf.cli import (
    SetupError,
    check_config_keys,
    check_nested_config,
    load_config_file,
    parse_args_and_config,
)


@dataclass
class ModelArgs:
    mt_model_name_or_path: str = field(metadata={"help": "required: no default"})
    d_model: int = 512
    freeze: bool = True


@dataclass
class AlignArgs:
    alignment: str | None = None
    kl_weight: float | None = None
    recipe: str | None = None


def parser():
    return HfArgumentParser((ModelArgs, AlignArgs))


def write(tmp_path, text, name="recipe.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_recipe_values_become_defaults_and_cli_wins(tmp_path):
    recipe = write(tmp_path, "mt_model_name_or_path: runs/mt\nd_model: 64\nalignment: dtw\nkl_weight: 2.0\n")
    model, align = parse_args_and_config(parser(), ["--config", recipe, "--alignment", "ot", "--d_model", "128"])
    assert model.mt_model_name_or_path == "runs/mt"  # a required field supplied by the recipe
    assert model.d_model == 128 and align.alignment == "ot"  # command line wins
    assert align.kl_weight == 2.0  # recipe value kept
    assert align.recipe == recipe  # the recipe path is recorded for the card


def test_config_order_independent_and_json(tmp_path):
    recipe = write(tmp_path, json.dumps({"mt_model_name_or_path": "x", "freeze": False}), "recipe.json")
    model, _ = parse_args_and_config(parser(), ["--d_model", "32", "--config", recipe])
    assert model.d_model == 32 and model.freeze is False


def test_yaml_exponent_strings_are_converted(tmp_path):
    # PyYAML reads "1e-4" (no dot) as a string; argparse converts string defaults with the field type.
    recipe = write(tmp_path, "mt_model_name_or_path: x\nkl_weight: 1e-4\n")
    _, align = parse_args_and_config(parser(), ["--config", recipe])
    assert align.kl_weight == pytest.approx(1e-4)


def test_unknown_key_is_an_error_with_suggestion(tmp_path):
    recipe = write(tmp_path, "mt_model_name_or_path: x\nkl_wieght: 2.0\nnot_a_field: 1\n")
    with pytest.raises(ValueError, match=r"kl_wieght.*did you mean 'kl_weight'") as err:
        parse_args_and_config(parser(), ["--config", recipe])
    assert "not_a_field" in str(err.value)


def test_unknown_command_line_flag_is_our_error_with_suggestion(tmp_path):
    recipe = write(tmp_path, "mt_model_name_or_path: x\n")
    with pytest.raises(SetupError, match=r"(?s)Unknown command-line argument.*--no_such_flag"):
        parse_args_and_config(parser(), ["--config", recipe, "--no_such_flag", "1"])
    with pytest.raises(SetupError, match=r"(?s)--kl_wieght.*did you mean '--kl_weight'"):
        parse_args_and_config(parser(), ["--config", recipe, "--kl_wieght", "1"])


def test_missing_required_without_recipe_fails():
    with pytest.raises(SetupError, match="mt_model_name_or_path"):
        parse_args_and_config(parser(), [])


def test_bad_values_are_our_errors(tmp_path):
    """A non-integer batch size (recipe or command line) and a bad bool are rejected with a message naming the key."""
    recipe = write(tmp_path, "mt_model_name_or_path: x\nd_model: 8.5\n")
    with pytest.raises(SetupError, match=r"d_model: 8.5 is not an integer"):
        parse_args_and_config(parser(), ["--config", recipe])
    recipe = write(tmp_path, "mt_model_name_or_path: x\nfreeze: maybe\n")
    with pytest.raises(SetupError, match=r"freeze: 'maybe' is not true or false"):
        parse_args_and_config(parser(), ["--config", recipe])
    with pytest.raises(SetupError, match=r"--d_model.*invalid int value: '8.5'"):
        parse_args_and_config(parser(), ["--mt_model_name_or_path", "x", "--d_model", "8.5"])
    model, _ = parse_args_and_config(
        parser(), ["--config", write(tmp_path, "mt_model_name_or_path: x\nd_model: 64.0\n")]
    )
    assert model.d_model == 64


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    recipe = write(tmp_path, "mt_model_name_or_path: x\nd_model: [64\nfreeze: true\n")
    with pytest.raises(SetupError, match=r"recipe\.yaml.*line \d+.*YAML syntax error"):
        parse_args_and_config(parser(), ["--config", recipe])


def test_nested_config_typo_is_an_error_with_suggestion():
    with pytest.raises(SetupError, match=r"(?s)num_hiden_layers.*did you mean 'num_hidden_layers'"):
        check_nested_config("speech_encoder_config", {"model_type": "hubert", "num_hiden_layers": 2})
    with pytest.raises(SetupError, match=r"model_type 'hubrt'.*did you mean 'hubert'"):
        check_nested_config("speech_encoder_config", {"model_type": "hubrt"})
    assert check_nested_config("speech_encoder_config", '{"num_hidden_layers": 2}') == {"num_hidden_layers": 2}
    with pytest.raises(SetupError, match="not valid JSON"):
        check_nested_config("speech_encoder_config", "{num_hidden_layers: 2")


def test_python_overrides_dict(tmp_path):
    recipe = write(tmp_path, "mt_model_name_or_path: x\nd_model: 64\n")
    model, _ = parse_args_and_config(parser(), ["--config", recipe], config={"d_model": 16})
    assert model.d_model == 16
    with pytest.raises(ValueError, match="bogus"):
        parse_args_and_config(parser(), ["--config", recipe], config={"bogus": 1})


def test_load_config_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_config_file(tmp_path / "missing.yaml")
    with pytest.raises(TypeError):
        load_config_file(write(tmp_path, "- a\n- b\n"))
    assert load_config_file(write(tmp_path, "")) == {}
    check_config_keys({"d_model": 1}, parser())


def test_bad_samples_are_skipped_and_counted(tmp_path):
    import numpy as np
    import soundfile as sf

    from dtw_align_hf.data import BadSampleFilter, SafeAudioDecoder
    from dtw_align_hf.data.audio import AudioOptions
    from dtw_align_hf.data.validation import BadRecordCounter

    counter = BadRecordCounter("train")
    good_path = tmp_path / "good.wav"
    sf.write(good_path, np.zeros(1600, dtype=np.float32), 16000)
    decoded = SafeAudioDecoder(AudioOptions(), counter)(
        {"id": ["ok", "missing"], "audio": [str(good_path), str(tmp_path / "missing.wav")]}
    )
    assert decoded["audio"][0].shape == (1600,) and decoded["audio"][1] is None
    assert counter.skipped == 1

    def collator(features):
        if any(f["transcript"] == "" for f in features):
            raise ValueError("empty transcript")
        return {"ids": [f["id"] for f in features]}

    features = [
        {"id": "ok", "audio": decoded["audio"][0], "transcript": "a"},
        {"id": "missing", "audio": None, "transcript": "b"},  # already counted by the decoder
        {"id": "empty", "audio": decoded["audio"][0], "transcript": ""},
    ]
    guarded = BadSampleFilter(collator, {"train": counter})
    assert guarded(features) == {"ids": ["ok"]}
    assert counter.skipped == 2 and guarded.skipped == 1
    from dtw_align_hf.data.filtering import is_skipped_batch

    assert is_skipped_batch(guarded([features[2]]))  # an all-bad batch is skipped, never the end of the run
