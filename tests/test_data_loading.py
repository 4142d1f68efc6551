"""load_splits and its loaders: text-only stage 1 (no audio opened), text-only parallel files, manifest robustness
(BOM, bad bytes, broken lines, duplicate ids), column flags, skip counts of unique records across workers and
processes, test references without audio, stale corpus-build folders (issues 10, 11, 12)."""

import json
import logging
import multiprocessing
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from dtw_align_hf.data import DATASET_LOADERS, DATASETS, DataArguments, load_splits
from dtw_align_hf.data.covost2 import load_covost2
from dtw_align_hf.data.manifest import load_manifest, read_table
from dtw_align_hf.data.must_c import load_must_c
from dtw_align_hf.data.text import load_text_pairs, reference_translations
from dtw_align_hf.data.validation import (
    BadRecordCounter,
    MissingColumnError,
    clear_bad_record_spool,
    gather_bad_record_counters,
)
from tests.test_data import SR, _covost_parquet, _covost_rows, _must_c_folder, tone


def test_every_dataset_has_a_loader():
    assert set(DATASET_LOADERS) == set(DATASETS)


# ------------------------------------------------------------------------------------------------------ text only


@pytest.fixture
def no_audio(monkeypatch):
    """Any attempt to read or decode audio fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("audio was read in a text-only path")

    for module in ("dtw_align_hf.data.audio", "dtw_align_hf.data.manifest", "dtw_align_hf.data.must_c"):
        for name in ("decode_audio", "audio_info"):
            if hasattr(sys.modules.get(module), name):
                monkeypatch.setattr(f"{module}.{name}", refuse)
    monkeypatch.setattr("dtw_align_hf.data.covost2.decode_audio", refuse)


@pytest.mark.parametrize("streaming", [True, False])
def test_covost2_text_only_reads_no_audio(tmp_path, no_audio, streaming):
    rows = _covost_rows()
    for row in rows:  # undecodable audio everywhere: the audio path would skip every record
        row["audio"] = {"bytes": b"not audio at all", "path": "x.mp3"}
    path = _covost_parquet(tmp_path / "train-00000-of-00001.parquet", rows)
    counter = BadRecordCounter("covost text")
    ds = load_covost2("de_en", "train", data_files=path, streaming=streaming, text_only=True, counter=counter)
    examples = list(ds)
    assert [e["id"] for e in examples] == ["common_voice_en_1", "common_voice_en_2", "common_voice_en_3"]
    assert examples[1] == {
        "id": "common_voice_en_2",
        "transcript": "hallo welt",
        "translation": "hello world",
        "src_lang": "de",
        "tgt_lang": "en",
    }
    assert counter.counts == {"empty_transcript": 1}


def test_load_splits_text_only_never_opens_audio(tmp_path, no_audio):
    # a manifest whose audio files do not exist at all: stage 1 does not care
    rows = [
        {"id": "a", "audio": "missing/a.wav", "transcript": "das ist gut", "translation": "that is good"},
        {"id": "b", "audio": "missing/b.wav", "transcript": "hallo welt", "translation": "hello world"},
    ]
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    args = DataArguments(dataset="manifest", train_file=str(train), eval_split=None, test_split=None)
    splits, counters = load_splits(args, text_only=True)
    assert splits["train"].column_names == ["id", "transcript", "translation"]
    assert splits["train"]["id"] == ["a", "b"] and counters["train"].skipped == 0
    # the old spelling still works
    splits, _ = load_splits(args, decode_audio=False)
    assert splits["train"]["transcript"] == ["das ist gut", "hallo welt"]
    # MuST-C: the talk wavs are never opened
    _must_c_folder(tmp_path / "mustc")
    ds = load_must_c(tmp_path / "mustc", "dev", "en", "de", text_only=True)
    assert ds["id"] == ["ted_1_0", "ted_1_1", "ted_2_0"] and ds["translation"][2] == "a dog"


def test_demo_text_only_needs_no_synthesis(tmp_path, no_audio, monkeypatch):
    def no_build(*args, **kwargs):
        raise AssertionError("the demo corpus was synthesised for stage 1")

    monkeypatch.setattr("dtw_align_hf.data.demo.build_corpus_from_pairs", no_build)
    args = DataArguments(
        dataset="demo", cache_dir=str(tmp_path), demo_train_size=5, demo_eval_size=2, demo_test_size=3
    )
    splits, _ = load_splits(args, text_only=True)
    assert len(splits["train"]) == 5 and len(splits["eval"]) == 2 and len(splits["test"]) == 3
    assert splits["test"]["id"] == ["demo-test-00001", "demo-test-00002", "demo-test-00003"]


def test_demo_text_only_matches_the_built_corpus(tmp_path):
    from dtw_align_hf.data.demo import demo_text_records, load_demo_corpus

    sizes = {"train": 3, "dev": 2, "test": 2}
    built = load_demo_corpus("dev", cache_dir=tmp_path, split_sizes=sizes, decode=False, progress=False)
    planned = demo_text_records("dev", split_sizes=sizes)
    assert [(r["id"], r["transcript"], r["translation"]) for r in planned] == list(
        zip(built["id"], built["transcript"], built["translation"], strict=True)
    )


def test_text_train_files_are_combined(tmp_path):
    (tmp_path / "a.tsv").write_text("src\ttgt\nein hund\ta dog\ndas haus\tthe house\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(
        json.dumps({"id": "1", "transcript": "hallo", "translation": "hello"}) + "\n", encoding="utf-8"
    )
    ds = load_text_pairs([tmp_path / "a.tsv", tmp_path / "b.jsonl"], src_lang="de", tgt_lang="en")
    assert ds["id"] == ["a/a-000000", "a/a-000001", "b/1"]
    assert ds["transcript"] == ["ein hund", "das haus", "hallo"] and set(ds["src_lang"]) == {"de"}
    # next to a speech corpus's text (stage 1), or alone (manifest without train_file)
    rows = [{"id": "s1", "audio": "x.wav", "transcript": "ein tag", "translation": "a day"}]
    (tmp_path / "speech.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    args = DataArguments(
        dataset="manifest",
        train_file=str(tmp_path / "speech.jsonl"),
        text_train_files=[str(tmp_path / "a.tsv"), str(tmp_path / "b.jsonl")],
        eval_split=None,
        test_split=None,
    )
    splits, _ = load_splits(args, text_only=True)
    assert splits["train"]["translation"] == ["a day", "a dog", "the house", "hello"]
    args = DataArguments(
        dataset="manifest", text_train_files=str(tmp_path / "a.tsv"), eval_split=None, test_split=None
    )
    splits, _ = load_splits(args, text_only=True)
    assert splits["train"]["translation"] == ["a dog", "the house"]
    with pytest.raises(MissingColumnError, match="--translation_column"):
        (tmp_path / "c.tsv").write_text("src\tother\nx\ty\n", encoding="utf-8")
        load_text_pairs(tmp_path / "c.tsv")


# ----------------------------------------------------------------------------------------------- manifest faults


def _clip(tmp_path, name="a.wav"):
    sf.write(tmp_path / name, tone(0.3), SR)
    return name


def test_manifest_with_bom_keeps_the_id_column(tmp_path):
    clip = _clip(tmp_path)
    text = f"id,audio,transcript,translation\nu1,{clip},das ist gut,that is good\n"
    (tmp_path / "excel.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    ds = load_manifest(tmp_path / "excel.csv", decode=False)
    assert ds["id"] == ["u1"]


@pytest.mark.parametrize("fmt", ["tsv", "jsonl"])
def test_a_bad_line_is_skipped_counted_and_named(tmp_path, fmt, caplog):
    clip = _clip(tmp_path)
    good = [("u1", "das ist gut", "that is good"), ("u3", "ein hund", "a dog")]
    if fmt == "tsv":
        lines = [b"id\taudio\ttranscript\ttranslation"]
        lines += [f"{i}\t{clip}\t{s}\t{t}".encode() for i, s, t in good[:1]]
        lines += [b"u2\t" + clip.encode() + b"\tgr\xfc\xdfe\tgreetings"]  # latin-1 bytes
        lines += [f"{i}\t{clip}\t{s}\t{t}".encode() for i, s, t in good[1:]]
    else:
        lines = [json.dumps({"id": i, "audio": clip, "transcript": s, "translation": t}).encode() for i, s, t in good]
        lines.insert(1, b'{"id": "u2", "audio": "a.wav", "transcript": "broken')
    path = tmp_path / f"m.{fmt}"
    path.write_bytes(b"\n".join(lines) + b"\n")
    counter = BadRecordCounter("m")
    with caplog.at_level(logging.WARNING):
        ds = load_manifest(path, decode=False, counter=counter)
    assert ds["id"] == ["u1", "u3"]
    assert counter.counts == {"bad_line": 1}
    line = 3 if fmt == "tsv" else 2
    assert f"{path}:{line}" in caplog.text
    rows, _ = read_table(path)  # without a counter: a warning, the rest kept
    assert [r["id"] for r in rows] == ["u1", "u3"]


def test_duplicate_ids_are_reported_and_skipped(tmp_path, caplog):
    clip = _clip(tmp_path)
    rows = [
        {"id": "u1", "audio": clip, "transcript": "das ist gut", "translation": "that is good"},
        {"id": "u1", "audio": clip, "transcript": "ein hund", "translation": "a dog"},
        {"id": "u2", "audio": clip, "transcript": "hallo", "translation": "hello"},
    ]
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    counter = BadRecordCounter("m")
    with caplog.at_level(logging.WARNING):
        ds = load_manifest(path, decode=False, counter=counter)
    assert ds["id"] == ["u1", "u2"] and ds["transcript"][0] == "das ist gut"  # the first one is kept
    assert counter.counts == {"duplicate_id": 1}
    assert f"{path}:2" in caplog.text and f"{path}:1" in caplog.text


def test_column_flags_reach_the_manifest_loader(tmp_path):
    clip = _clip(tmp_path)
    (tmp_path / "m.tsv").write_text(f"utt\twav\tde\ten\nx1\t{clip}\tein hund\ta dog\n", encoding="utf-8")
    with pytest.raises(MissingColumnError) as err:
        load_manifest(tmp_path / "m.tsv")
    assert "--transcript_column" in str(err.value) and "transcript_column: <column>" in str(err.value)
    args = DataArguments(
        dataset="manifest",
        train_file=str(tmp_path / "m.tsv"),
        audio_column="wav",
        transcript_column="de",
        translation_column="en",
        id_column="utt",
        eval_split=None,
        test_split=None,
    )
    splits, _ = load_splits(args)
    ex = splits["train"][0]
    assert (ex["id"], ex["transcript"], ex["translation"]) == ("x1", "ein hund", "a dog")
    assert ex["audio"].shape == (round(0.3 * SR),)
    args.translation_column = "english"
    with pytest.raises(MissingColumnError, match="'english'.*--translation_column"):
        load_splits(args)


# ---------------------------------------------------------------------------------------------------- skip counts


def test_counter_counts_unique_records():
    counter = BadRecordCounter("train")
    for _epoch in range(2):
        counter.skip("bad1", "unreadable_audio")
        counter.skip("bad2", "too_long")
        counter.ok("good")
    counter.skip(None, "bad_line", "m.tsv:3")
    counter.skip(None, "bad_line", "m.tsv:3")
    assert counter.skipped == 3 and counter.summary() == {
        "seen": 4,
        "skipped": 3,
        "unreadable_audio": 1,
        "too_long": 1,
        "bad_line": 1,
    }


def _worker_skips(spool_dir, ids):  # runs in another process, like a DataLoader worker
    counter = BadRecordCounter("demo/train", spool_dir=spool_dir)
    for rid in ids:
        counter.skip(rid, "unreadable_audio", "x")


def test_counts_from_worker_processes_reach_the_main_process(tmp_path):
    import torch.utils.data

    spool = tmp_path / "_bad_records"
    counter = BadRecordCounter("demo/train", spool_dir=spool)

    class Bad(torch.utils.data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            if i % 2:
                counter.skip(f"bad{i}", "unreadable_audio", "in a worker")  # the worker's copy of the counter
            return i

    for _epoch in range(2):  # the second epoch re-reads the same bad records
        list(torch.utils.data.DataLoader(Bad(), batch_size=2, num_workers=2))
    assert counter.skipped == 3 and counter.counts == {"unreadable_audio": 3}
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_worker_skips, args=(str(spool), ["bad1", "other"]))
    proc.start()
    proc.join(60)
    assert counter.skipped == 4  # bad1 counted once, "other" added
    other = BadRecordCounter("demo/dev", spool_dir=spool)
    assert other.skipped == 0  # another split's spool files are not mixed in
    assert gather_bad_record_counters({"train": counter})["train"].skipped == 4  # one process: a no-op merge
    assert clear_bad_record_spool(spool) >= 2 and BadRecordCounter("demo/train", spool_dir=spool).skipped == 0


GATHER_SCRIPT = """
import os, sys, json
import torch.distributed as dist
from dtw_align_hf.data.validation import BadRecordCounter, gather_bad_record_counters
dist.init_process_group("gloo")
rank = dist.get_rank()
counter = BadRecordCounter("covost2/train")
counter.skip("shared", "unreadable_audio")
counter.skip(f"only{rank}", "too_long")
out = gather_bad_record_counters({"train": counter})
print(json.dumps(out["train"].summary()))
dist.destroy_process_group()
"""


@pytest.mark.slow  # two fresh interpreters (torch.distributed, gloo): ~20-40 s on 2 cores
def test_counts_are_gathered_across_ddp_processes(tmp_path):
    script = tmp_path / "gather.py"
    script.write_text(GATHER_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "WORLD_SIZE": "2"}
    from tests.test_distributed import _free_port

    env["MASTER_PORT"] = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, str(script)], env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, stdout=subprocess.PIPE
        )
        for r in range(2)
    ]
    outs = [json.loads(p.communicate(timeout=120)[0].decode().strip().splitlines()[-1]) for p in procs]
    for out in outs:
        assert out["skipped"] == 3 and out["unreadable_audio"] == 1 and out["too_long"] == 2


def test_references_are_read_without_decoding_audio(tmp_path, monkeypatch):
    for name in ("a", "b", "c"):
        _clip(tmp_path, f"{name}.wav")
    rows = [{"id": n, "audio": f"{n}.wav", "transcript": "x", "translation": f"ref {n}"} for n in ("a", "b", "c")]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    args = DataArguments(dataset="manifest", test_file=str(tmp_path / "test.jsonl"))
    splits, counters = load_splits(args)
    counters["test"].skip("b", "rejected_by_processor", "found bad while predicting")

    def refuse(*a, **k):
        raise AssertionError("audio decoded for the references")

    monkeypatch.setattr("dtw_align_hf.data.audio.decode_audio", refuse)
    assert reference_translations(splits["test"], counters["test"]) == ["ref a", "ref c"]
    assert reference_translations(splits["test"], return_ids=True)[1] == ("b", "ref b")
    # a CoVoST 2 test stream: read text-only
    path = _covost_parquet(tmp_path / "test-0.parquet", _covost_rows())
    stream = load_covost2("de_en", "test", data_files=path, text_only=True)
    assert reference_translations(stream) == ["that is good", "hello world", "a dog"]
    with pytest.raises(ValueError, match="text-only"):
        reference_translations(load_covost2("de_en", "test", data_files=path))


# -------------------------------------------------------------------------------------------- stale build folders


def test_stale_build_folders_are_removed(tmp_path):
    from dtw_align_hf.data.demo import remove_stale_build_folders

    out = tmp_path / "corpus"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"corpus.tmp-{dead.pid}"
    (stale / "audio").mkdir(parents=True)
    alive = tmp_path / f"corpus.tmp-{os.getpid()}"  # a build in progress (this process)
    alive.mkdir()
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    other_build = tmp_path / f"corpus.tmp-{running.pid}"
    other_build.mkdir()
    unrelated = [tmp_path / f"othercorpus.tmp-{dead.pid}", tmp_path / "corpus.tmp-notapid", tmp_path / "corpus"]
    for path in unrelated:
        path.mkdir()
    (tmp_path / f"corpus.tmp-{dead.pid}.txt").write_text("a file, not ours")
    try:
        assert remove_stale_build_folders(out) == [stale]
    finally:
        running.kill()
        running.wait()
    assert not stale.exists() and alive.exists() and other_build.exists()
    assert all(p.exists() for p in unrelated) and (tmp_path / f"corpus.tmp-{dead.pid}.txt").exists()


def test_a_corpus_build_cleans_stale_folders(tmp_path):
    from dtw_align_hf.data.demo import build_corpus_from_pairs

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"c.tmp-{dead.pid}"
    stale.mkdir()
    out = build_corpus_from_pairs(
        [("hallo welt", "hello world")], tmp_path / "c", src_lang="de", tgt_lang="en", progress=False, workers=1
    )
    assert (out / "train.jsonl").exists() and not stale.exists()
    assert np.isfinite(sf.read(out / "audio" / "train" / "utt-train-00001.flac")[0]).all()


def test_covost2_column_flags_and_error(tmp_path):
    folder = tmp_path / "de_en"
    folder.mkdir()
    _covost_parquet(folder / "train-00000-of-00001.parquet", _covost_rows())
    args = DataArguments(
        dataset="covost2",
        dataset_config="de_en",
        data_dir=str(tmp_path),
        transcript_column="translation",  # swapped on purpose: the flags reach the loader
        translation_column="sentence",
        eval_split=None,
        test_split=None,
    )
    splits, _ = load_splits(args, text_only=True)
    first = next(iter(splits["train"]))
    assert (first["transcript"], first["translation"]) == ("that is good", "das ist gut")
    bad = _covost_parquet(tmp_path / "bad.parquet", _covost_rows(), drop="translation")
    with pytest.raises(MissingColumnError, match="--translation_column"):
        load_covost2("de_en", "train", data_files=bad)


def test_text_train_files_next_to_a_covost2_stream(tmp_path, no_audio):
    (tmp_path / "de_en").mkdir()
    _covost_parquet(tmp_path / "de_en" / "train-00000-of-00001.parquet", _covost_rows())
    (tmp_path / "x.tsv").write_text("src\ttgt\nein\tone\n", encoding="utf-8")
    args = DataArguments(
        dataset="covost2",
        dataset_config="de_en",
        data_dir=str(tmp_path),
        text_train_files=[str(tmp_path / "x.tsv")],
        eval_split=None,
        test_split=None,
    )
    splits, counters = load_splits(args, text_only=True)
    assert [e["translation"] for e in splits["train"]] == ["that is good", "hello world", "a dog", "one"]
    assert counters["train"].counts == {"empty_transcript": 1}
