"""Every speech-encoder family (HuBERT on samples; Whisper and Speech2Text on mel features) through the whole model.

The `family` fixture (conftest.py) gives tiny random encoders saved with their own feature extractors.
"""

import copy
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor, WhisperFeatureExtractor

from dtw_align_hf import DTWAlignForSpeechTranslation, DTWAlignProcessor
from dtw_align_hf.testing_utils import make_tiny_whisper_encoder, synthetic_audio


INPUT_NAME = {"hubert": "input_values", "whisper": "input_features", "speech_to_text": "input_features"}


def _expected_frames(name: str, seconds: float) -> int:
    """Independent count of adapter frames for `seconds` of audio (one stride-2 adapter conv for mel families)."""
    if name == "hubert":  # tiny HuBERT CNN (kernel, stride) = (10, 5), (4, 4), (4, 4), then two (5, 2) convs
        n = round(seconds * 16000)
        for k, s in ((10, 5), (4, 4), (4, 4)):
            n = (n - k) // s + 1
        layers = 2
    else:  # 10 ms mel frames; Whisper: conv (3, 1) then (3, 2) padded by 1; Speech2Text: one (5, 2) conv padded by 2
        n = round(seconds * 100) if name == "whisper" else (round(seconds * 16000) - 400) // 160 + 1
        n = (n - 1) // 2 + 1
        layers = 1
    for _ in range(layers):
        n = (n + 4 - 5) // 2 + 1
    return n


def test_batch_keys_frame_lengths_and_masks(family):
    name, _, processor, make_model, make_batch = family
    model, batch = make_model(), make_batch(n=2)
    assert model.main_input_name == processor.audio_input_name == INPUT_NAME[name]
    assert set(batch) == {INPUT_NAME[name], "attention_mask", "input_ids", "text_attention_mask", "labels"}
    if name == "whisper":  # every clip padded to the 2 s window of the tiny encoder: 200 mel frames
        assert batch["input_features"].shape[1:] == (16, 200)
    with torch.no_grad():
        encoded = model.get_encoder()(batch[model.main_input_name], batch["attention_mask"])
    assert encoded.attention_mask.sum(-1).tolist() == [_expected_frames(name, 1.0), _expected_frames(name, 0.7)]
    # a padded batch gives each utterance what it gets alone (Whisper pads every clip to the same window anyway)
    alone = processor(audio=[synthetic_audio(0.7, seed=2)], sampling_rate=16000, text_target=["a dog runs"])
    with torch.no_grad():
        both = model(**{k: batch[k] for k in (model.main_input_name, "attention_mask", "labels")}).logits
        one = model(**alone).logits
    torch.testing.assert_close(both[1, : one.shape[1]], one[0], rtol=1e-4, atol=1e-4)


def test_training_step_freezing_and_checkpointing(family):
    name, _, _, make_model, make_batch = family
    model, batch = make_model(), make_batch()
    model.train()
    torch.manual_seed(3)
    out = model(**batch)
    assert torch.isfinite(out.loss) and out.align_valid_frac.item() == 1.0
    out.loss.backward()
    assert all(p.grad is not None for p in model.speech_encoder.parameters() if p.requires_grad)

    model.zero_grad()
    model.freeze_feature_encoder()
    front = {"hubert": "feature_extractor", "whisper": "conv", "speech_to_text": "conv."}[name]
    frozen = [n for n, p in model.speech_encoder.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith(front) for n in frozen if "embed_positions" not in n)
    torch.manual_seed(3)
    reference = model(**batch).loss
    reference.backward()
    assert all(p.grad is None for n, p in model.speech_encoder.named_parameters() if n in frozen)

    model.gradient_checkpointing_enable()
    torch.manual_seed(3)
    checkpointed = model(**batch).loss
    torch.testing.assert_close(checkpointed, reference)
    checkpointed.backward()

    model.freeze_speech_encoder()
    assert not any(p.requires_grad for p in model.speech_encoder.parameters())


def test_bf16_autocast_forward(family):
    _, _, _, make_model, make_batch = family
    model, batch = make_model(), make_batch()
    model.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()


REMOTE = textwrap.dedent(
    """
    import json, sys
    class _Block:  # our package is unimportable, even through the editable install's path hook
        def find_spec(self, name, path=None, target=None):
            if name == "dtw_align_hf" or name.startswith("dtw_align_hf."):
                raise ModuleNotFoundError(name)
    sys.meta_path.insert(0, _Block())
    sys.path = [p for p in sys.path if p not in ("", ".", REPO)]
    import torch
    from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor
    model = AutoModelForSpeechSeq2Seq.from_pretrained(CKPT, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(CKPT, trust_remote_code=True)
    audio = torch.load(AUDIO)
    batch = processor(audio=[a.numpy() for a in audio], sampling_rate=16000)
    ids = model.generate(**batch, num_beams=2, max_new_tokens=6)
    print(json.dumps({"ids": ids.tolist(), "model": type(model).__module__, "keys": sorted(batch)}))
    """
)


def test_save_load_auto_classes_and_remote_code(family, tmp_path):
    name, _, processor, make_model, make_batch = family
    model, batch = make_model(), make_batch()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert "modeling_speech_encoders.py" in os.listdir(tmp_path)
    for loaded in (
        DTWAlignForSpeechTranslation.from_pretrained(tmp_path),
        AutoModelForSpeechSeq2Seq.from_pretrained(tmp_path),
    ):
        assert type(loaded.speech_encoder) is type(model.speech_encoder)
        with torch.no_grad():
            # Speech2Text recomputes its sinusoidal table on load (a non-persistent buffer): float32 rounding only
            torch.testing.assert_close(loaded.eval()(**batch).logits, model(**batch).logits, rtol=1e-5, atol=1e-6)
    reloaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(reloaded, DTWAlignProcessor) and type(reloaded.feature_extractor) is type(
        processor.feature_extractor
    )
    again = reloaded(audio=[synthetic_audio(1.0, seed=1), synthetic_audio(0.7, seed=2)], sampling_rate=16000)
    torch.testing.assert_close(again[model.main_input_name], batch[model.main_input_name])

    if name == "hubert":
        return  # its remote-code run is test_modeling_dtw_align.py::test_remote_code_loads_without_the_package
    audio = [torch.from_numpy(synthetic_audio(s, seed=i + 1)) for i, s in enumerate((1.0, 0.7))]
    torch.save(audio, tmp_path / "audio.pt")
    script = f"REPO = {str(Path(__file__).parents[1])!r}\nCKPT = {str(tmp_path)!r}\nAUDIO = {str(tmp_path / 'audio.pt')!r}\n"
    env = dict(os.environ, HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_OFFLINE="1", PYTHONPATH="")
    result = subprocess.run(
        [sys.executable, "-c", script + REMOTE], check=False, cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert remote["model"].startswith("transformers_modules.") and model.main_input_name in remote["keys"]
    with torch.no_grad():
        local = model.generate(
            **{k: batch[k] for k in (model.main_input_name, "attention_mask")}, num_beams=2, max_new_tokens=6
        )
    assert remote["ids"] == local.tolist()


# ---------------------------------------------------------------- Whisper's fixed window


def test_whisper_window_from_a_full_checkpoint_rebuilds_only_the_position_table(tmp_path, tiny_mt_dir):
    full = make_tiny_whisper_encoder(tmp_path / "whisper", window_seconds=2.0, full=True)
    model = DTWAlignForSpeechTranslation.from_pretrained_parts(
        str(tmp_path / "whisper"), str(tiny_mt_dir), speech_window_seconds=1.0, adapter_hidden_size=32
    )
    encoder = model.speech_encoder
    assert type(encoder).__name__ == "WhisperEncoder" and model.config.speech_window_seconds == 1.0
    assert encoder.config.max_source_positions == 50 and encoder.embed_positions.weight.shape == (50, 32)
    # sinusoidal table rebuilt for the shorter window == the stored table's first rows; every other weight as stored
    stored = full.model.encoder.state_dict()
    torch.testing.assert_close(encoder.embed_positions.weight, stored["embed_positions.weight"][:50])
    for key, value in encoder.state_dict().items():
        if key != "embed_positions.weight":
            torch.testing.assert_close(value, stored[key], rtol=0, atol=0)

    processor = DTWAlignProcessor.from_pretrained_parts(
        str(tmp_path / "whisper"), str(tiny_mt_dir), speech_window_seconds=1.0
    )
    assert processor.max_source_seconds == 1.0
    batch = processor(audio=[synthetic_audio(0.6)], sampling_rate=16000)
    assert batch["input_features"].shape == (1, 16, 100) and batch["attention_mask"].sum().item() == 60
    with torch.no_grad():
        assert model.generate(**batch, max_new_tokens=3).shape[0] == 1
    with pytest.raises(ValueError, match=r"Whisper window `max_source_seconds=1.0`"):
        processor(audio=[synthetic_audio(1.5)], sampling_rate=16000)
    with pytest.raises(ValueError, match=r"speech_window_seconds=1.0.*takes exactly 100 mel frames, got 200"):
        model.generate(input_features=torch.zeros(1, 16, 200), max_new_tokens=2)
    # audio longer than max_source_seconds but inside the window: the model names the limit
    model.update_dtw_align(max_source_seconds=0.5)
    with pytest.raises(ValueError, match=r"Samples \[0\] last \[0.6\] s, above `max_source_seconds=0.5`"):
        model.generate(**batch, max_new_tokens=2)


def test_whisper_padded_window_frames_are_masked(family):
    name, _, processor, make_model, _ = family
    if name != "whisper":
        pytest.skip("Whisper only")
    model = make_model()
    batch = processor(audio=[synthetic_audio(0.5)], sampling_rate=16000, text=["das haus"], text_target=["the house"])
    with torch.no_grad():
        speech, mask = model.speech_embeddings(batch["input_features"], batch["attention_mask"])
    assert speech.shape[1] == 50 and mask.sum().item() == _expected_frames("whisper", 0.5) == 13
    model.train()
    captured = {}
    from dtw_align_hf import modeling_dtw_align

    real_align = modeling_dtw_align.align

    def spy(*args, **kwargs):
        captured["out"] = real_align(*args, **kwargs)
        return captured["out"]

    modeling_dtw_align.align = spy
    try:
        model(**batch)
    finally:
        modeling_dtw_align.align = real_align
    frame_to_token = captured["out"].frame_to_token[0]
    assert (frame_to_token[:13] >= 0).all() and (frame_to_token[13:] == -1).all()


def test_whisper_window_must_be_even_frames(tmp_path, tiny_mt_dir):
    make_tiny_whisper_encoder(tmp_path)
    with pytest.raises(ValueError, match="multiple of 0.02 s"):
        DTWAlignForSpeechTranslation.from_pretrained_parts(str(tmp_path), str(tiny_mt_dir), speech_window_seconds=1.01)


def test_wrong_input_kind_is_named(family):
    name, _, _, make_model, make_batch = family
    model, batch = make_model(), make_batch()
    wrong = "input_values" if name != "hubert" else "input_features"
    audio = batch.pop(model.main_input_name)
    with pytest.raises(ValueError, match=f"takes `{model.main_input_name}`, got `{wrong}`"):
        model(**batch, **{wrong: audio})


def test_processor_uses_the_encoders_own_feature_extractor(tiny_whisper_dir, tiny_mt_dir):
    processor = DTWAlignProcessor.from_pretrained_parts(str(tiny_whisper_dir), str(tiny_mt_dir))
    assert isinstance(processor.feature_extractor, WhisperFeatureExtractor)
    assert processor.feature_extractor.feature_size == 16 and processor.window_seconds == 2.0
    clips = processor.check_audio([synthetic_audio(0.3), np.zeros(800, np.float32) + 0.1], 16000)
    padded = processor.pad_audio(clips)
    assert set(padded) == {"input_features", "attention_mask"}
    assert padded["attention_mask"].sum(-1).tolist() == [30, 5] and padded["input_features"].shape == (2, 16, 200)


@pytest.mark.parametrize("window", [1.0, 1.5])
def test_windowed_processor_survives_save_and_reload(tiny_whisper_dir, tiny_mt_dir, tmp_path, window):
    # transformers' WhisperFeatureExtractor recomputes n_samples from chunk_length on load: a float for a fractional
    # window, which its padding rejects (TypeError) unless the processor re-derives the integer counts.
    processor = DTWAlignProcessor.from_pretrained_parts(
        str(tiny_whisper_dir), str(tiny_mt_dir), speech_window_seconds=window
    )
    processor.save_pretrained(tmp_path)
    reloaded = DTWAlignProcessor.from_pretrained(tmp_path)
    clip = processor.check_audio([synthetic_audio(0.4)], 16000)
    expected = processor.pad_audio(clip)
    got = reloaded.pad_audio(clip)
    assert got["input_features"].shape[-1] == round(window * 100)
    torch.testing.assert_close(got["input_features"], expected["input_features"])


def test_stock_asr_pipeline_runs_for_each_family(family, tmp_path):
    """`pipeline("automatic-speech-recognition")` on a saved checkpoint of each family (it passes no attention mask
    for Whisper, so only Speech2Text and HuBERT are compared with `generate`)."""
    from transformers import pipeline

    name, _, processor, make_model, _ = family
    model = make_model()
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    asr = pipeline("automatic-speech-recognition", model=str(tmp_path))
    wav = synthetic_audio(1.0, seed=3)
    text = asr(wav, num_beams=2, max_new_tokens=6)["text"]
    assert isinstance(text, str)
    if name != "whisper":
        with torch.no_grad():
            ids = model.generate(**processor(audio=[wav], sampling_rate=16000), num_beams=2, max_new_tokens=6)
        assert text == processor.batch_decode(ids)[0]


def test_non_finite_features_are_rejected_before_compute(family):
    _, _, _, make_model, make_batch = family
    model, batch = make_model(), make_batch()
    model.speech_encoder.register_forward_pre_hook(lambda *a: (_ for _ in ()).throw(AssertionError("encoder ran")))
    audio = batch[model.main_input_name].clone()
    audio[1].view(-1)[7] = float("nan")
    with pytest.raises(ValueError, match=rf"Samples \[1\] contain NaN or inf values in `{model.main_input_name}`"):
        model(**{**batch, model.main_input_name: audio})
    with pytest.raises(ValueError, match=r"Samples \[1\] contain NaN or inf"):
        model.generate(**{model.main_input_name: audio, "attention_mask": batch["attention_mask"]}, max_new_tokens=2)


def test_integer_pcm_gives_the_same_features_as_float(family):
    _, _, processor, _, _ = family
    wav = synthetic_audio(0.5) * 0.5
    pcm = np.round(wav * 32768).astype(np.int16)
    key = processor.audio_input_name
    a = processor(audio=[wav], sampling_rate=16000)[key]
    b = processor(audio=[pcm], sampling_rate=16000)[key]
    torch.testing.assert_close(a, b, rtol=0.02, atol=0.01)  # int16 quantisation, seen through log-mel + CMVN


def test_data_collator_gives_the_processors_batch_for_each_family(family):
    # The run scripts' one collator must emit the processor's own audio key and values (input_features for mel
    # encoders), so a Whisper or Speech2Text model trains from the same batches as processor(...) builds.
    from conftest import TRANSCRIPTS, TRANSLATIONS

    from dtw_align_hf.data import DataCollatorSpeechTranslation

    name, _, processor, _, make_batch = family
    expected = make_batch(n=2)
    features = [
        {
            "id": f"u{i}",
            "audio": synthetic_audio(seconds, seed=i + 1),
            "sampling_rate": 16000,
            "transcript": TRANSCRIPTS[i],
            "translation": TRANSLATIONS[i],
        }
        for i, seconds in enumerate((1.0, 0.7))
    ]
    got = DataCollatorSpeechTranslation(processor)(features)
    key = INPUT_NAME[name]
    assert key in got and ("input_values" not in got or key == "input_values")
    for k in (key, "attention_mask", "input_ids", "labels"):
        torch.testing.assert_close(got[k], expected[k])


def _trim_to(width, reference, reference_mask):
    """The uncached output cut to the cached width: the cache keeps frames up to the batch's longest utterance only
    (a Whisper window's padded frames are masked), and every frame it cuts must be padding."""
    assert width <= reference_mask.shape[1] and not reference_mask[:, width:].any()
    return reference[:, :width], reference_mask[:, :width]


def test_frozen_encoder_cache_equals_the_encoder_and_runs_it_once_per_utterance(family):
    _, _, _, make_model, make_batch = family
    model = make_model()
    with pytest.raises(ValueError, match="freeze_speech_encoder"):
        model.cache_speech_encoder_outputs()  # a trainable encoder's outputs change every step
    model.freeze_speech_encoder()
    batch = make_batch(n=2)
    audio, mask = batch[model.main_input_name], batch["attention_mask"]
    with torch.no_grad():
        reference, reference_mask = model.speech_embeddings(audio, mask)  # eval mode, no cache
    model.cache_speech_encoder_outputs()
    calls = []
    hook = model.speech_encoder.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    try:
        with torch.no_grad():
            first, first_mask = model.speech_embeddings(audio, mask)
            second, _ = model.speech_embeddings(audio, mask)  # a second epoch: all hits
            model.train()  # training mode still reads the cache (eval-mode outputs: no dropout, no SpecAugment)
            model.speech_embeddings(audio, mask)
            model.eval()
            alone, alone_mask = model.speech_embeddings(audio[1:2], mask[1:2])  # another batch composition: a hit
    finally:
        hook.remove()
    assert calls == [2], "the frozen encoder ran more than once per utterance"
    assert model._speech_cache.hits == 5 and model._speech_cache.misses == 2
    reference, reference_mask = _trim_to(first_mask.shape[1], reference, reference_mask)
    assert torch.equal(first_mask, reference_mask)
    real = reference_mask.bool()
    torch.testing.assert_close(first[real], reference[real], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(second, first)
    n = int(alone_mask.sum())
    torch.testing.assert_close(alone[0, :n], first[1, :n], rtol=1e-5, atol=1e-5)
    model.cache_speech_encoder_outputs(False)
    assert model._speech_cache is None


def test_frozen_encoder_cache_on_disk_is_shared_by_a_second_model_and_keyed_by_the_weights(family, tmp_path):
    _, _, _, make_model, make_batch = family
    model = make_model()
    model.freeze_speech_encoder()
    batch = make_batch(n=2)
    audio, mask = batch[model.main_input_name], batch["attention_mask"]
    with torch.no_grad():
        reference, reference_mask = model.speech_embeddings(audio, mask)
    model.cache_speech_encoder_outputs(directory=tmp_path / "enc")
    with torch.no_grad():
        model.speech_embeddings(audio, mask)
    folders = list((tmp_path / "enc").iterdir())
    assert len(folders) == 1 and len(list(folders[0].glob("*.pt"))) == 2
    assert not list(folders[0].glob("*.tmp"))

    # a second run (a new model with the same weights) reads the files and never runs its encoder
    again = copy.deepcopy(model)
    again.cache_speech_encoder_outputs(directory=tmp_path / "enc")
    calls = []
    hook = again.speech_encoder.register_forward_hook(lambda module, args, output: calls.append(1))
    try:
        with torch.no_grad():
            second, second_mask = again.speech_embeddings(audio, mask)
    finally:
        hook.remove()
    assert calls == [] and again._speech_cache.disk_hits == 2
    reference, reference_mask = _trim_to(second_mask.shape[1], reference, reference_mask)
    real = reference_mask.bool()
    assert torch.equal(second_mask, reference_mask)
    torch.testing.assert_close(second[real], reference[real], rtol=1e-5, atol=1e-5)

    # other weights: another sub-folder, the encoder runs
    with torch.no_grad():
        next(again.speech_encoder.parameters()).add_(0.5)
    other = copy.deepcopy(again)
    other.cache_speech_encoder_outputs(directory=tmp_path / "enc")
    with torch.no_grad():
        other.speech_embeddings(audio, mask)
    assert other._speech_cache.disk_hits == 0 and len(list((tmp_path / "enc").iterdir())) == 2

    # a torn file is recomputed, not trusted
    for path in folders[0].glob("*.pt"):
        path.write_bytes(b"torn")
    torn = copy.deepcopy(model)
    torn.cache_speech_encoder_outputs(directory=tmp_path / "enc")
    with torch.no_grad():
        third, _ = torn.speech_embeddings(audio, mask)
    assert torn._speech_cache.disk_hits == 0 and torn._speech_cache.misses == 2
    torch.testing.assert_close(third[real], reference[real], rtol=1e-5, atol=1e-5)
