"""Data loaders, audio decoding, validation, collator, bucketing and hours subsets (issue 5).

Every fixture is generated inside the tests (tiny wavs, parquet files in the CoVoST 2 mirror's schema, a MuST-C
shaped folder, manifests); nothing touches the network. The synthesis/corpus tests live in test_data_corpus.py.
"""

import io
import json
import logging
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import torch

from dtw_align_hf.data.audio import AudioDecodeError, AudioOptions, decode_audio, parse_segment_spec
from dtw_align_hf.data.collator import (
    DataCollatorSpeechTranslation,
    bucket_by_length,
    length_grouped_sampler,
    sort_by_length_buffered,
)
from dtw_align_hf.data.covost2 import covost2_parquet_schema, load_covost2, parse_covost2_config
from dtw_align_hf.data.manifest import EXAMPLE_FIELDS, load_manifest
from dtw_align_hf.data.must_c import load_must_c
from dtw_align_hf.data.subset import subset_by_hours
from dtw_align_hf.data.validation import BadRecordCounter, MissingColumnError, check_columns


SR = 16000


def tone(seconds: float, rate: int = SR, channels: int = 1, freq: float = 220.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def wav_bytes(seconds: float, rate: int = SR, fmt: str = "WAV", channels: int = 1) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, tone(seconds, rate, channels), rate, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def word_tokenizer():
    """A tiny word-level fast tokenizer (any HF tokenizer works with the collator)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["das", "ist", "gut", "that", "is", "good", "hallo", "welt", "hello", "world", "ein", "hund", "a", "dog"]
    vocab = {"<pad>": 0, "<unk>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(dict.fromkeys(words))}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="</s>")


# ----------------------------------------------------------------------------------------------------------- audio


def test_decode_audio_resamples_and_downmixes(tmp_path):
    path = tmp_path / "stereo.flac"
    sf.write(path, tone(1.0, 44100, channels=2), 44100)
    out = decode_audio(str(path))
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - SR) <= 1
    # bytes, datasets' {"bytes", "path"} and {"array", "sampling_rate"} forms give the same samples
    raw = path.read_bytes()
    np.testing.assert_array_equal(decode_audio(raw), out)
    np.testing.assert_array_equal(decode_audio({"bytes": raw, "path": None}), out)
    arr = decode_audio({"array": tone(0.5, 8000), "sampling_rate": 8000})
    assert len(arr) == SR // 2
    # explicit options: keep the first channel, refuse resampling
    first = decode_audio(str(path), AudioOptions(mono="first"))
    assert first.shape == out.shape
    with pytest.raises(AudioDecodeError) as err:
        decode_audio(str(path), AudioOptions(resample=False))
    assert err.value.kind == "bad_sampling_rate"
    with pytest.raises(AudioDecodeError) as err:
        decode_audio(str(path), AudioOptions(mono="error"))
    assert err.value.kind == "bad_channels"
    with pytest.raises(AudioDecodeError) as err:
        decode_audio(b"not audio")
    assert err.value.kind == "unreadable_audio"


def test_odd_rate_and_segments(tmp_path):
    # an odd rate whose polyphase factors would be huge falls back to FFT resampling
    out = decode_audio(tone(0.5, 22051), sampling_rate=22051)
    assert abs(len(out) - SR // 2) <= 1
    with pytest.raises(AudioDecodeError) as err:
        decode_audio(tone(0.5, 4000), sampling_rate=4000)  # below min_source_rate
    assert err.value.kind == "bad_sampling_rate"
    path = tmp_path / "talk.wav"
    sf.write(path, np.arange(SR * 2, dtype=np.float32) / (SR * 4), SR)
    assert parse_segment_spec(f"{path}:16000:8000") == (str(path), 16000, 8000)
    seg = decode_audio(f"{path}:16000:8000")
    assert len(seg) == 8000 and seg[0] == pytest.approx(16000 / (SR * 4), abs=1e-4)


# ------------------------------------------------------------------------------------------------------- manifests


def _write_manifest(tmp_path, fmt: str, rows: list[dict]) -> str:
    path = tmp_path / f"m.{fmt}"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    else:
        sep = "\t" if fmt == "tsv" else ","
        lines = [sep.join(cols)] + [sep.join(str(r.get(c, "")) for c in cols) for r in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("fmt", ["tsv", "csv", "jsonl"])
def test_load_manifest_formats(tmp_path, fmt):
    (tmp_path / "clips").mkdir()
    sf.write(tmp_path / "clips" / "a.wav", tone(1.0), SR)
    sf.write(tmp_path / "clips" / "b.flac", tone(0.5, 22050), 22050)
    rows = [
        {"id": "a", "path": "clips/a.wav", "sentence": "das ist gut", "translation": "that is good"},
        {"id": "b", "path": "clips/b.flac", "sentence": "hallo welt", "translation": "hello world"},
    ]
    ds = load_manifest(_write_manifest(tmp_path, fmt, rows), src_lang="de", tgt_lang="en")
    assert len(ds) == 2
    ex = ds[1]
    assert set(EXAMPLE_FIELDS) <= set(ex)
    assert ex["audio"].dtype == np.float32 and ex["sampling_rate"] == SR
    assert abs(len(ex["audio"]) - SR // 2) <= 1 and ex["duration"] == pytest.approx(0.5, abs=1e-3)
    assert (ex["transcript"], ex["translation"], ex["src_lang"], ex["tgt_lang"]) == (
        "hallo welt",
        "hello world",
        "de",
        "en",
    )
    assert list(ds["length"]) == [SR, SR // 2]  # precomputed: no decoding needed for bucketing


def test_manifest_missing_column_is_a_clear_error(tmp_path):
    sf.write(tmp_path / "a.wav", tone(0.3), SR)
    path = _write_manifest(tmp_path, "tsv", [{"audio": "a.wav", "transcript": "das ist gut"}])
    with pytest.raises(MissingColumnError, match=r"translation.*Existing columns: \['audio', 'transcript'\]"):
        load_manifest(path)
    with pytest.raises(MissingColumnError, match="Existing columns"):
        check_columns(["audio"], {"transcript": "sentence"}, dataset_name="x")


def test_bad_records_are_skipped_and_counted(tmp_path, caplog):
    sf.write(tmp_path / "ok.wav", tone(0.5), SR)
    sf.write(tmp_path / "long.wav", tone(3.0), SR)
    sf.write(tmp_path / "low.wav", tone(0.5, 4000), 4000)
    (tmp_path / "broken.wav").write_bytes(b"RIFF....garbage")
    rows = [
        {"id": "good", "audio": "ok.wav", "transcript": "das ist gut", "translation": "that is good"},
        {"id": "unreadable", "audio": "broken.wav", "transcript": "x", "translation": "y"},
        {"id": "no-file", "audio": "missing.wav", "transcript": "x", "translation": "y"},
        {"id": "empty-src", "audio": "ok.wav", "transcript": " ", "translation": "y"},
        {"id": "empty-tgt", "audio": "ok.wav", "transcript": "x", "translation": ""},
        {"id": "no-tgt-key", "audio": "ok.wav", "transcript": "x"},
        {"id": "low-rate", "audio": "low.wav", "transcript": "x", "translation": "y"},
        {"id": "too-long", "audio": "long.wav", "transcript": "x", "translation": "y"},
    ]
    counter = BadRecordCounter("test")
    with caplog.at_level(logging.WARNING):
        ds = load_manifest(
            _write_manifest(tmp_path, "jsonl", rows), options=AudioOptions(max_duration=2.0), counter=counter
        )
    assert ds["id"] == ["good"]
    assert counter.summary() == {
        "seen": 8,
        "skipped": 7,
        "unreadable_audio": 2,
        "empty_transcript": 1,
        "empty_translation": 1,
        "missing_column": 1,
        "bad_sampling_rate": 1,
        "too_long": 1,
    }
    for rid in ("unreadable", "no-file", "empty-src", "empty-tgt", "no-tgt-key", "low-rate", "too-long"):
        assert f"'{rid}'" in caplog.text  # the warning names the record
    # resampling disabled: a 22.05 kHz clip cannot be used
    sf.write(tmp_path / "r.wav", tone(0.5, 22050), 22050)
    counter = BadRecordCounter("test")
    path = _write_manifest(tmp_path, "tsv", [{"audio": "r.wav", "transcript": "a", "translation": "b"}])
    assert len(load_manifest(path, options=AudioOptions(resample=False), counter=counter)) == 0
    assert counter.counts["bad_sampling_rate"] == 1


# -------------------------------------------------------------------------------------------------------- CoVoST 2


def _covost_parquet(path, rows: list[dict], *, hf_metadata: bool = True, drop: str | None = None) -> str:
    audio_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    fields = [
        ("client_id", pa.string()),
        ("file", pa.string()),
        ("audio", audio_type),
        ("sentence", pa.string()),
        ("translation", pa.string()),
        ("id", pa.string()),
    ]
    fields = [f for f in fields if f[0] != drop]
    schema = pa.schema(fields)
    if hf_metadata:
        feats = covost2_parquet_schema()
        if drop:
            del feats[drop]
        schema = schema.with_metadata({"huggingface": json.dumps({"info": {"features": feats.to_dict()}})})
    table = pa.Table.from_pylist([{k: r.get(k) for k, _ in fields} for r in rows], schema=schema)
    pq.write_table(table, path)
    return str(path)


def _covost_rows() -> list[dict]:
    return [
        {
            "client_id": "spk1",
            "file": "common_voice_en_1.mp3",
            "audio": {"bytes": wav_bytes(1.0, 48000), "path": "common_voice_en_1.mp3"},
            "sentence": "das ist gut",
            "translation": "that is good",
            "id": "common_voice_en_1",
        },
        {
            "client_id": "spk2",
            "file": "common_voice_en_2.mp3",
            "audio": {"bytes": b"garbage", "path": "common_voice_en_2.mp3"},
            "sentence": "hallo welt",
            "translation": "hello world",
            "id": "common_voice_en_2",
        },
        {
            "client_id": "spk3",
            "file": "common_voice_en_3.mp3",
            "audio": {"bytes": wav_bytes(0.5, 22050, "FLAC", channels=2), "path": "x.flac"},
            "sentence": "ein hund",
            "translation": "a dog",
            "id": "common_voice_en_3",
        },
        {
            "client_id": "spk4",
            "file": "common_voice_en_4.mp3",
            "audio": {"bytes": wav_bytes(0.5), "path": "y.wav"},
            "sentence": "",
            "translation": "nothing",
            "id": "common_voice_en_4",
        },
    ]


@pytest.mark.parametrize("hf_metadata", [True, False])
def test_covost2_streamed_from_parquet(tmp_path, hf_metadata, caplog):
    """The Hub path is load_dataset(..., streaming=True) on parquet shards: the same code as a local file."""
    path = _covost_parquet(tmp_path / "train-00000-of-00001.parquet", _covost_rows(), hf_metadata=hf_metadata)
    counter = BadRecordCounter("covost")
    with caplog.at_level(logging.WARNING):
        ds = load_covost2("de_en", "train", data_files=path, counter=counter)
        examples = list(ds)
    assert [ex["id"] for ex in examples] == ["common_voice_en_1", "common_voice_en_3"]
    ex = examples[0]
    assert set(EXAMPLE_FIELDS) <= set(ex)
    assert isinstance(ex["audio"], np.ndarray) and ex["audio"].dtype == np.float32
    assert ex["sampling_rate"] == SR and abs(len(ex["audio"]) - SR) <= 1
    assert (ex["src_lang"], ex["tgt_lang"]) == ("de", "en") and ex["duration"] == pytest.approx(1.0, abs=1e-3)
    assert examples[1]["audio"].ndim == 1 and abs(len(examples[1]["audio"]) - SR // 2) <= 1
    assert counter.counts == {"unreadable_audio": 1, "empty_transcript": 1}
    assert "common_voice_en_2" in caplog.text and "common_voice_en_4" in caplog.text


def test_covost2_map_style_and_missing_column(tmp_path):
    path = _covost_parquet(tmp_path / "a.parquet", _covost_rows())
    ds = load_covost2("de_en", "test", data_files={"test": path}, streaming=False)
    assert list(ds["id"]) == ["common_voice_en_1", "common_voice_en_3"]
    ex = ds[0]
    assert isinstance(ex["audio"], np.ndarray) and ex["audio"].dtype == np.float32 and len(ex["audio"]) == ex["length"]
    assert isinstance(ex["transcript"], str) and ex["sampling_rate"] == SR
    bad = _covost_parquet(tmp_path / "b.parquet", _covost_rows(), drop="translation")
    with pytest.raises(MissingColumnError, match=r"'translation'.*Existing columns: \[.*'sentence'"):
        load_covost2("de_en", "train", data_files=bad)
    assert parse_covost2_config("en_zh-CN") == ("en", "zh-CN")
    with pytest.raises(ValueError, match="<src>_<tgt>"):
        parse_covost2_config("en-de")


# ---------------------------------------------------------------------------------------------------------- MuST-C


def _must_c_folder(root):
    split_dir = root / "en-de" / "data" / "dev"
    (split_dir / "wav").mkdir(parents=True)
    (split_dir / "txt").mkdir()
    sf.write(split_dir / "wav" / "ted_1.wav", tone(4.0, freq=100), SR)
    sf.write(split_dir / "wav" / "ted_2.wav", tone(2.0, freq=300), SR)
    segs = [
        ("ted_1.wav", 0.5, 1.0, "das ist gut", "that is good"),
        ("ted_1.wav", 2.0, 1.5, "hallo welt", "hello world"),
        ("ted_2.wav", 0.0, 1.25, "ein hund", "a dog"),
        ("ted_2.wav", 1.0, 0.5, "", "empty source"),
    ]
    (split_dir / "txt" / "dev.yaml").write_text(
        "".join(
            f"- {{duration: {d}, offset: {o}, rW: 3, uW: 0, speaker_id: spk.{w[4]}, wav: {w}}}\n"
            for w, o, d, _, _ in segs
        )
    )
    (split_dir / "txt" / "dev.en").write_text("".join(s[3] + "\n" for s in segs))
    (split_dir / "txt" / "dev.de").write_text("".join(s[4] + "\n" for s in segs))
    return split_dir


def test_must_c_yaml_layout(tmp_path):
    _must_c_folder(tmp_path)
    counter = BadRecordCounter("mustc")
    ds = load_must_c(tmp_path, "dev", "en", "de", counter=counter)
    assert ds["id"] == ["ted_1_0", "ted_1_1", "ted_2_0"]
    assert [len(ds[i]["audio"]) for i in range(3)] == [16000, 24000, 20000]
    assert ds[1]["transcript"] == "hallo welt" and ds[1]["translation"] == "hello world"
    assert counter.counts == {"empty_transcript": 1}
    # root may also point at the language pair directory
    assert len(load_must_c(tmp_path / "en-de", "dev")) == 3


def test_must_c_fairseq_tsv(tmp_path):
    split_dir = _must_c_folder(tmp_path)
    talk = split_dir / "wav" / "ted_1.wav"
    # raw-audio zip as written by fairseq's prep scripts: stored (uncompressed) members, byte ranges
    zpath = tmp_path / "flac.zip"
    with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("seg.flac", wav_bytes(0.75, fmt="FLAC"))
    with zipfile.ZipFile(zpath) as z:
        info = z.getinfo("seg.flac")
        offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        size = info.file_size
    header = "id\taudio\tn_frames\ttgt_text\tspeaker"
    st_rows = [
        f"ted_1_0\t{talk}:8000:16000\t16000\tthat is good\tspk.1",
        f"ted_1_1\tflac.zip:{offset}:{size}\t12000\thello world\tspk.1",
    ]
    (tmp_path / "dev_st.tsv").write_text(header + "\tsrc_text\n" + "\n".join(r + "\tdas ist gut" for r in st_rows))
    ds = load_must_c(tsv=tmp_path / "dev_st.tsv")
    assert [len(ds[i]["audio"]) for i in range(2)] == [16000, 12000]
    assert ds[0]["transcript"] == "das ist gut" and ds[1]["translation"] == "hello world"
    # no src_text: the transcript comes from the ASR manifest, or a clear error
    (tmp_path / "dev_st2.tsv").write_text(header + "\n" + "\n".join(st_rows) + "\n")
    with pytest.raises(MissingColumnError, match="src_text.*transcript_tsv"):
        load_must_c(tsv=tmp_path / "dev_st2.tsv")
    (tmp_path / "dev_asr.tsv").write_text(
        header + "\nted_1_0\tx\t1\tdas ist gut\tspk.1\nted_1_1\tx\t1\thallo welt\tspk.1\n"
    )
    ds = load_must_c(tsv=tmp_path / "dev_st2.tsv", transcript_tsv=tmp_path / "dev_asr.tsv")
    assert ds["transcript"] == ["das ist gut", "hallo welt"]


# -------------------------------------------------------------------------------------------------------- collator


def _examples(lengths=(16000, 8000, 12000)):
    texts = [("das ist gut", "that is good"), ("hallo", "hello world"), ("ein hund ist gut", "a dog")]
    return [
        {"id": str(i), "audio": tone(n / SR), "sampling_rate": SR, "transcript": s, "translation": t}
        for i, (n, (s, t)) in enumerate(zip(lengths, texts, strict=True))
    ]


def _word_processor(word_tokenizer, do_normalize=False):
    from dtw_align_hf import DTWAlignProcessor
    from dtw_align_hf.processing_dtw_align import make_feature_extractor

    return DTWAlignProcessor(make_feature_extractor(do_normalize=do_normalize), word_tokenizer)


def test_collator_shapes_masks_and_labels(word_tokenizer):
    collate = DataCollatorSpeechTranslation(_word_processor(word_tokenizer))
    batch = collate(_examples())
    assert set(batch) == {"input_values", "attention_mask", "input_ids", "text_attention_mask", "labels"}
    assert batch["input_values"].shape == (3, 16000) and batch["input_values"].dtype == torch.float32
    assert batch["attention_mask"].dtype == torch.long
    assert batch["attention_mask"].sum(1).tolist() == [16000, 8000, 12000]
    assert torch.all(batch["input_values"][1, 8000:] == 0)
    # transcripts without EOS (the processor's convention), translations with it
    assert batch["input_ids"].shape == (3, 4) and batch["text_attention_mask"].sum(1).tolist() == [3, 1, 4]
    eos = word_tokenizer.eos_token_id
    assert batch["labels"].shape == (3, 4)
    assert batch["labels"][1].tolist() == word_tokenizer("hello world")["input_ids"] + [eos, -100]
    assert batch["labels"][2].tolist()[2:] == [eos, -100]
    # pre-tokenised inputs are padded, not encoded again
    batch = collate([dict(e, input_ids=[5, 6], labels=[7]) for e in _examples()])
    assert batch["labels"].tolist() == [[7], [7], [7]] and batch["input_ids"].shape == (3, 2)
    with pytest.raises(ValueError, match="'0'.*22050 Hz"):
        collate([dict(_examples()[0], sampling_rate=22050)])


def test_collator_with_feature_extractor(word_tokenizer):
    batch = DataCollatorSpeechTranslation(_word_processor(word_tokenizer, do_normalize=True))(_examples())
    assert batch["input_values"].shape == (3, 16000) and batch["attention_mask"].sum(1).tolist() == [
        16000,
        8000,
        12000,
    ]
    x = batch["input_values"][1, :8000]
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1) < 1e-2  # normalised per clip


def test_length_bucketing():
    lengths = [5, 100, 7, 98, 6, 99, 50, 51]
    examples = [{"id": i, "length": n} for i, n in enumerate(lengths)]
    out = list(sort_by_length_buffered(examples, buffer_size=8, batch_size=2, seed=3))
    assert sorted(e["id"] for e in out) == list(range(8))
    batches = [[e["length"] for e in out[i : i + 2]] for i in range(0, 8, 2)]
    assert sorted(batches) == [[5, 6], [7, 50], [51, 98], [99, 100]]
    assert out == list(sort_by_length_buffered(examples, buffer_size=8, batch_size=2, seed=3))
    sampler = length_grouped_sampler(lengths=lengths, batch_size=2, seed=0)
    assert sorted(sampler) == list(range(8))
    import datasets

    stream = datasets.IterableDataset.from_generator(lambda: iter(examples))
    assert [e["id"] for e in bucket_by_length(stream, buffer_size=8, batch_size=2, seed=3)] == [e["id"] for e in out]


# ---------------------------------------------------------------------------------------------------------- subset


def test_subset_by_hours_within_one_utterance():
    import datasets

    rng = np.random.default_rng(0)
    durations = rng.uniform(1.0, 15.0, size=2000).round(3)
    langs = ["fr" if i % 3 else "es" for i in range(2000)]
    rows = {"id": [str(i) for i in range(2000)], "duration": durations.tolist(), "src_lang": langs}
    ds = datasets.Dataset.from_dict(rows)
    target = 0.5
    sub = subset_by_hours(ds, target, seed=1)
    assert sub["id"] == subset_by_hours(ds, target, seed=1)["id"]  # deterministic
    assert sub["id"] != subset_by_hours(ds, target, seed=2)["id"]
    for lang in ("fr", "es"):
        secs = sum(d for d, lg in zip(sub["duration"], sub["src_lang"], strict=True) if lg == lang)
        assert abs(secs - target * 3600) <= 15.0  # within one utterance (the longest is < 15 s)
    only_fr = subset_by_hours(ds, {"fr": 0.2}, seed=0)
    assert set(only_fr["src_lang"]) == {"fr"}
    assert abs(sum(only_fr["duration"]) - 720) <= 15.0
    # streamed: same rule, stops once full
    stream = ds.to_iterable_dataset(num_shards=4)
    got = list(subset_by_hours(stream, {"fr": 0.1, "es": 0.1}, seed=0, buffer_size=100))
    for lang in ("fr", "es"):
        assert abs(sum(e["duration"] for e in got if e["src_lang"] == lang) - 360) <= 15.0
    assert [e["id"] for e in got] == [
        e["id"] for e in subset_by_hours(stream, {"fr": 0.1, "es": 0.1}, seed=0, buffer_size=100)
    ]
    # plain lists work too; one language when language_key=None
    lst = subset_by_hours([{"duration": 2.0, "id": i} for i in range(100)], 60 / 3600, language_key=None)
    assert sum(e["duration"] for e in lst) == 60.0


def test_subset_map_style_keeps_lazy_decoding(tmp_path):
    for i in range(6):
        sf.write(tmp_path / f"{i}.wav", tone(1.0 + i * 0.1), SR)
    rows = [{"audio": f"{i}.wav", "transcript": "a", "translation": "b"} for i in range(6)]
    ds = load_manifest(_write_manifest(tmp_path, "jsonl", rows))
    sub = subset_by_hours(ds, 3.0 / 3600, seed=0, language_key=None)
    assert abs(sum(sub["duration"]) - 3.0) <= 1.5
    assert isinstance(sub[0]["audio"], np.ndarray)
