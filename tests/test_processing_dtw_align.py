import numpy as np
import pytest
import torch
from transformers import AutoProcessor, AutoTokenizer, Speech2TextTokenizer

from dtw_align_hf import DTWAlignProcessor
from dtw_align_hf.processing_dtw_align import lang_token, make_feature_extractor
from dtw_align_hf.testing_utils import synthetic_audio


def test_sentencepiece_ids_follow_fairseq(tiny_tokenizer, tiny_tokenizer_dir):
    assert isinstance(tiny_tokenizer, Speech2TextTokenizer)
    assert (tiny_tokenizer.bos_token_id, tiny_tokenizer.pad_token_id) == (0, 1)
    assert (tiny_tokenizer.eos_token_id, tiny_tokenizer.unk_token_id) == (2, 3)
    assert 50 <= len(tiny_tokenizer) <= 99
    again = AutoTokenizer.from_pretrained(tiny_tokenizer_dir)
    assert again("das rote haus")["input_ids"] == tiny_tokenizer("das rote haus")["input_ids"]
    assert (
        tiny_tokenizer.decode(tiny_tokenizer("das rote haus")["input_ids"], skip_special_tokens=True)
        == "das rote haus"
    )


def test_call_builds_the_model_batch(tiny_processor):
    wavs = [synthetic_audio(1.0, seed=1), synthetic_audio(0.5, seed=2)]
    batch = tiny_processor(
        audio=wavs, sampling_rate=16000, text=["das haus", "ein kleiner hund"], text_target=["the house", "a dog runs"]
    )
    assert set(batch) == {"input_values", "attention_mask", "input_ids", "text_attention_mask", "labels"}
    assert batch["input_values"].shape == (2, 16000) and batch["input_values"].dtype == torch.float32
    assert batch["attention_mask"].sum(-1).tolist() == [16000, 8000]
    eos, pad = tiny_processor.tokenizer.eos_token_id, tiny_processor.tokenizer.pad_token_id
    # transcripts: no EOS, padded with pad id; mask marks real tokens
    for row, mask in zip(batch["input_ids"], batch["text_attention_mask"], strict=True):
        assert eos not in row[mask.bool()].tolist()
        assert (row[~mask.bool()] == pad).all()
    # translations: end with EOS, padded with -100
    for row in batch["labels"]:
        real = row[row != -100].tolist()
        assert real[-1] == eos and eos not in real[:-1]
    assert (batch["labels"] == -100).any()
    assert tiny_processor.batch_decode(batch["labels"]) == ["the house", "a dog runs"]


def test_target_language_token(tiny_lang_tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_lang_tokenizer_dir)
    processor = DTWAlignProcessor(make_feature_extractor(), tokenizer, tgt_lang="en")
    en = tokenizer.convert_tokens_to_ids(lang_token("en"))
    labels = processor(text_target=["the house"])["labels"]
    assert labels[0, 0].item() == en
    assert processor.generation_kwargs() == {"forced_bos_token_id": en}
    assert processor(text_target=["das haus"], tgt_lang="de")["labels"][0, 0].item() == processor.lang_token_id("de")
    assert processor.batch_decode(labels) == ["the house"]  # the language tag is a special token
    assert processor.lang_token_id("fr") is None


def test_no_language_token_without_one_in_the_vocabulary(tiny_processor):
    assert tiny_processor.generation_kwargs("de") == {}


def test_save_and_load(tiny_processor, tmp_path):
    processor = DTWAlignProcessor(
        tiny_processor.feature_extractor, tiny_processor.tokenizer, tgt_lang="de", max_source_seconds=12.0
    )
    processor.save_pretrained(tmp_path)
    for loaded in (DTWAlignProcessor.from_pretrained(tmp_path), AutoProcessor.from_pretrained(tmp_path)):
        assert isinstance(loaded, DTWAlignProcessor)
        assert loaded.tgt_lang == "de" and loaded.max_source_seconds == 12.0
        a = processor(audio=synthetic_audio(0.5), sampling_rate=16000, text="das haus", text_target="the house")
        b = loaded(audio=synthetic_audio(0.5), sampling_rate=16000, text="das haus", text_target="the house")
        for key in a:
            torch.testing.assert_close(a[key], b[key])


@pytest.mark.parametrize(
    "audio, kwargs, message",
    [
        (synthetic_audio(0.5), {"sampling_rate": 8000}, "8000 Hz but the model expects 16000 Hz; resample"),
        (np.stack([synthetic_audio(0.5)] * 2), {"sampling_rate": 16000}, "stereo"),
        ([np.stack([synthetic_audio(0.5)] * 2, axis=1)], {"sampling_rate": 16000}, "stereo"),
        ([np.zeros(0, dtype=np.float32)], {"sampling_rate": 16000}, "empty"),
        ([synthetic_audio(31.0)], {"sampling_rate": 16000}, "max_source_seconds=30.0"),
        ([np.full(800, np.nan, dtype=np.float32)], {"sampling_rate": 16000}, "NaN"),
    ],
)
def test_bad_audio_raises_with_the_fix(tiny_processor, audio, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_processor(audio=audio, **kwargs)


def test_empty_transcript_raises(tiny_processor):
    with pytest.raises(ValueError, match="empty"):
        tiny_processor(text=["das haus", ""])
    with pytest.raises(ValueError, match="audio"):
        tiny_processor()


def test_from_pretrained_parts(tiny_speech_encoder_dir, tiny_mt_dir, tmp_path):
    processor = DTWAlignProcessor.from_pretrained_parts(str(tiny_speech_encoder_dir), str(tiny_mt_dir), tgt_lang="en")
    assert processor.feature_extractor.return_attention_mask
    assert processor.tgt_lang == "en" and len(processor.tokenizer) > 50
    # a folder without a feature-extractor config falls back to the default one
    (tmp_path / "config.json").write_text((tiny_speech_encoder_dir / "config.json").read_text())
    fallback = DTWAlignProcessor.from_pretrained_parts(str(tmp_path), str(tiny_mt_dir))
    assert fallback.feature_extractor.sampling_rate == 16000 and fallback.feature_extractor.do_normalize


# ---------------------------------------------------------------- what the processor reads as audio


def test_integer_pcm_is_scaled_to_float(tiny_processor):
    wav = synthetic_audio(0.5) * 0.5
    reference = tiny_processor.check_audio([wav], 16000)[0]
    for dtype, scale, offset in ((np.int16, 32768, 0), (np.int32, 2**31, 0), (np.uint8, 128, 128)):
        pcm = np.clip(np.round(wav * scale + offset), np.iinfo(dtype).min, np.iinfo(dtype).max).astype(dtype)
        scaled = tiny_processor.check_audio([pcm], 16000)[0]
        assert scaled.dtype == np.float32 and np.abs(scaled).max() <= 1.0
        np.testing.assert_allclose(scaled, reference, atol=1.5 / scale)
    # do_normalize=False feature extractors see the scaled values, not +-30000
    raw = DTWAlignProcessor(make_feature_extractor(do_normalize=False), tiny_processor.tokenizer)
    batch = raw(audio=(wav * 32767).astype(np.int16), sampling_rate=16000)
    assert batch["input_values"].abs().max() <= 1.0
    with pytest.raises(ValueError, match="int64 integer data, not a PCM format"):
        tiny_processor.check_audio([np.zeros(800, np.int64)], 16000)


def test_a_list_of_numbers_is_one_clip(tiny_processor):
    wav = synthetic_audio(0.2)
    clips = tiny_processor.check_audio([float(x) for x in wav], 16000)
    assert len(clips) == 1 and clips[0].shape == wav.shape
    batch = tiny_processor(audio=wav.tolist(), sampling_rate=16000)
    assert batch["input_values"].shape == (1, wav.size)


def test_two_dimensional_arrays_are_one_clip_never_a_batch(tiny_processor):
    wav = synthetic_audio(0.5)
    for mono in (wav[None, :], wav[:, None], torch.from_numpy(wav)[None]):
        clips = tiny_processor.check_audio(mono, 16000)
        assert len(clips) == 1 and clips[0].shape == wav.shape
    with pytest.raises(ValueError) as error:
        tiny_processor(audio=np.random.randn(16000, 16).astype(np.float32), sampling_rate=16000)
    message = str(error.value)
    assert "(16000, 16)" in message and "never as a batch" in message and "list of 1-D arrays" in message
    assert len(message) < 400  # names the shape, not 16000 sample indices
    with pytest.raises(ValueError, match="never as a batch"):
        tiny_processor.check_audio(np.stack([wav, wav]), 16000)


def test_pad_audio_is_the_call_path(tiny_processor):
    clips = tiny_processor.check_audio([synthetic_audio(0.5), synthetic_audio(0.3, seed=2)], 16000)
    padded = tiny_processor.pad_audio(clips)
    called = tiny_processor(audio=clips, sampling_rate=16000)
    assert set(padded) == {"input_values", "attention_mask"}
    for key in padded:
        torch.testing.assert_close(padded[key], called[key])
    assert padded["attention_mask"].sum(-1).tolist() == [8000, 4800]


def test_max_source_seconds_has_a_setter_and_survives_saving(tiny_processor, tmp_path):
    processor = DTWAlignProcessor(tiny_processor.feature_extractor, tiny_processor.tokenizer)
    processor.max_source_seconds = 0.4
    with pytest.raises(ValueError, match="max_source_seconds=0.4"):
        processor(audio=synthetic_audio(0.5), sampling_rate=16000)
    processor.save_pretrained(tmp_path)
    assert DTWAlignProcessor.from_pretrained(tmp_path).max_source_seconds == 0.4
    with pytest.raises(ValueError, match="must be > 0"):
        processor.max_source_seconds = 0
