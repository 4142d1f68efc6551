import pytest
from transformers import AutoConfig, HubertConfig, M2M100Config, Wav2Vec2Config

from dtw_align_hf import DTWAlignConfig
from dtw_align_hf.testing_utils import tiny_speech_config, tiny_text_config


def test_defaults_follow_the_paper():
    config = DTWAlignConfig()
    assert config.model_type == "dtw_align"
    assert isinstance(config.speech_config, HubertConfig)
    assert isinstance(config.text_config, M2M100Config)
    assert (config.adapter_num_layers, config.adapter_kernel_size, config.adapter_stride) == (2, 5, 2)
    assert config.adapter_hidden_size == 1024
    assert config.adapter_downsampling == 4
    assert config.adapter_output_size == config.text_config.d_model
    assert (config.alignment, config.mixup, config.mixup_level, config.mix_position) == (
        "dtw",
        "interpolation",
        "token",
        "encoder_input",
    )
    assert config.discrete_mixup_prob == 0.2
    assert config.label_smoothing == 0.1
    assert (config.st_weight, config.mt_weight, config.mix_weight, config.kl_weight) == (1.0, 1.0, 1.0, 1.0)
    assert config.sampling_rate == 16000
    assert config.max_source_seconds == 30.0
    assert config.is_encoder_decoder


def test_token_ids_are_mirrored_from_the_translation_model():
    config = DTWAlignConfig(text_config=tiny_text_config(pad_token_id=5, eos_token_id=6, decoder_start_token_id=6))
    assert (config.pad_token_id, config.eos_token_id, config.decoder_start_token_id) == (5, 6, 6)


def test_cmot_preset_and_explicit_override():
    config = DTWAlignConfig(preset="cmot")
    assert config.alignment == "cmot"
    assert config.mixup == "discrete"
    assert config.mixup_level == "frame"
    assert config.mix_position == "encoder_output"
    assert config.discrete_mixup_prob == 0.2
    assert config.mix_weight == 0.0
    assert config.kl_weight == 2.0
    assert config.st_weight == config.mt_weight == 1.0
    assert config.label_smoothing == 0.1
    override = DTWAlignConfig(preset="cmot", kl_weight=3.0, alignment="dtw")
    assert override.kl_weight == 3.0 and override.alignment == "dtw" and override.mixup == "discrete"


@pytest.mark.parametrize(
    "field, value",
    [
        ("alignment", "viterbi"),
        ("alignment_backend", "cuda"),
        ("mixup", "cutmix"),
        ("mixup_level", "word"),
        ("mix_position", "decoder"),
        ("mixup_ratio_schedule", "cosine"),
        ("adapter_activation", "tanh"),
        ("preset", "stemm"),
    ],
)
def test_invalid_choice_lists_the_allowed_values(field, value):
    with pytest.raises(ValueError, match=rf"`{field}='{value}'` is not supported; choose one of") as info:
        DTWAlignConfig(**{field: value})
    assert "'" in str(info.value).split("choose one of")[1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mixup_ratio": 1.5}, "mixup_ratio"),
        ({"discrete_mixup_prob": -0.1}, "discrete_mixup_prob"),
        ({"mixup_ratio_min": 0.8, "mixup_ratio_max": 0.2}, "exceeds"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"kl_weight": -1.0}, "kl_weight"),
        ({"mixup_beta_alpha": 0.0}, "mixup_beta_alpha"),
        ({"adapter_num_layers": 0}, "adapter_num_layers"),
        ({"adapter_hidden_size": 33}, "even"),
        ({"max_source_seconds": 0}, "max_source_seconds"),
    ],
)
def test_invalid_numbers(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DTWAlignConfig(**kwargs)


def test_round_trip_through_dict_and_disk(tmp_path):
    config = DTWAlignConfig(
        speech_config=tiny_speech_config(),
        text_config=tiny_text_config(),
        preset="cmot",
        mixup_ratio_schedule="beta",
        adapter_hidden_size=32,
    )
    again = DTWAlignConfig.from_dict(config.to_dict())
    assert again.to_dict() == config.to_dict()
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, DTWAlignConfig)
    assert {k: v for k, v in loaded.to_dict().items() if k != "_name_or_path"} == {
        k: v for k, v in config.to_dict().items() if k != "_name_or_path"
    }
    assert isinstance(loaded.speech_config, HubertConfig) and loaded.speech_config.hidden_size == 32
    assert isinstance(loaded.text_config, M2M100Config) and loaded.text_config.d_model == 32
    assert loaded.get_text_config() is loaded.text_config


def test_any_audio_encoder_config_from_a_dict():
    config = DTWAlignConfig(speech_config={"model_type": "wav2vec2", "hidden_size": 48})
    assert isinstance(config.speech_config, Wav2Vec2Config)
    assert config.speech_config.hidden_size == 48


def test_uses_mixup():
    assert DTWAlignConfig().uses_mixup
    assert not DTWAlignConfig(alignment="none").uses_mixup
    assert not DTWAlignConfig(mixup="none").uses_mixup


def test_update_dtw_align_applies_presets_then_overrides():
    config = DTWAlignConfig()
    config.update_dtw_align(preset="cmot", kl_weight=4.0)
    assert (config.alignment, config.mix_position, config.mix_weight, config.kl_weight) == (
        "cmot",
        "encoder_output",
        0.0,
        4.0,
    )
    with pytest.raises(ValueError, match="choose one of"):
        config.update_dtw_align(mixup="cutmix")
    with pytest.raises(ValueError, match="not a DTW-Align setting. Did you mean `mixup_ratio`"):
        config.update_dtw_align(mixup_ratio_=0.3)


def test_update_dtw_align_expands_every_preset_value_on_a_loaded_config(tmp_path):
    from dtw_align_hf.configuration_dtw_align import PRESET_VALUES

    DTWAlignConfig().save_pretrained(tmp_path)
    config = DTWAlignConfig.from_pretrained(tmp_path)
    config.update_dtw_align(preset="cmot")
    assert {name: getattr(config, name) for name in PRESET_VALUES["cmot"]} == PRESET_VALUES["cmot"]
    assert (config.alignment, config.kl_weight, config.mix_weight, config.speech_positions) == (
        "cmot",
        2.0,
        0.0,
        "none",
    )
    config.update_dtw_align(preset="dtw_align")
    assert {name: getattr(config, name) for name in PRESET_VALUES["dtw_align"]} == PRESET_VALUES["dtw_align"]


@pytest.mark.parametrize(
    "field, value",
    [("adapter_num_layers", 3), ("adapter_hidden_size", 64), ("speech_config", {}), ("text_config", {}),
     ("speech_window_seconds", 10.0), ("adapter_activation", "gelu")],
)  # fmt: skip
def test_update_dtw_align_refuses_architecture_fields(field, value):
    config = DTWAlignConfig()
    before = config.to_dict()
    with pytest.raises(ValueError, match=f"`{field}` is an architecture field.*build a new model"):
        config.update_dtw_align(**{field: value}, alignment="nn")
    assert config.to_dict() == before  # nothing half-applied
    config.update_dtw_align(adapter_num_layers=config.adapter_num_layers)  # an unchanged value is fine


def test_update_dtw_align_is_all_or_nothing():
    config = DTWAlignConfig()
    with pytest.raises(ValueError, match="mixup_ratio"):
        config.update_dtw_align(preset="cmot", mixup_ratio=2.0)
    assert (config.preset, config.alignment, config.kl_weight) == (None, "dtw", 1.0)


def test_new_settings_are_validated():
    with pytest.raises(ValueError, match="speech_positions"):
        DTWAlignConfig(speech_positions="learned")
    with pytest.raises(ValueError, match="alignment_normalization"):
        DTWAlignConfig(alignment_normalization="zscore")
    with pytest.raises(ValueError, match="alignment_diagonal_prior"):
        DTWAlignConfig(alignment_diagonal_prior=-1.0)
    with pytest.raises(ValueError, match="alignment_window"):
        DTWAlignConfig(alignment_window=-1)
    with pytest.raises(ValueError, match="speech_window_seconds.*Whisper"):
        DTWAlignConfig(speech_window_seconds=10.0)  # a HuBERT config has no fixed window
    config = DTWAlignConfig()
    assert (config.speech_positions, config.alignment_timing, config.alignment_normalization) == (
        "sinusoidal",
        False,
        "none",
    )


def test_names_are_defined_once():
    from dtw_align_hf import alignment
    from dtw_align_hf.configuration_dtw_align import ALIGNMENTS

    assert set(ALIGNMENTS) == {*alignment.ALIGNMENT_METHODS, "ot", "none"}
