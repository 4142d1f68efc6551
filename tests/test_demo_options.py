"""Demo corpus build options: demo_text="grammar", demo_speech="varied", and split-independent dev/test draws."""

import itertools
import json

import numpy as np
import pytest
import soundfile as sf

from dtw_align_hf.data.demo import build_demo_corpus, demo_corpus_dir, demo_text_records


SIZES = {"train": 6, "dev": 4, "test": 4}


@pytest.fixture(scope="module")
def varied_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("varied")
    return build_demo_corpus(root, split_sizes=SIZES, text="grammar", speech="varied", workers=2, progress=False)


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_cache_key_changes_with_each_option(tmp_path):
    base = demo_corpus_dir(tmp_path, split_sizes=SIZES)
    assert base == demo_corpus_dir(tmp_path, split_sizes=SIZES, text="ding", speech="steady")
    others = {
        demo_corpus_dir(tmp_path, split_sizes=SIZES, text="grammar"),
        demo_corpus_dir(tmp_path, split_sizes=SIZES, speech="varied"),
        demo_corpus_dir(tmp_path, split_sizes=SIZES, text="grammar", speech="varied"),
    }
    assert len(others) == 3 and base not in others
    with pytest.raises(ValueError, match="demo_text"):
        demo_corpus_dir(tmp_path, text="wiki")


def test_varied_speech_keeps_exact_timings(varied_dir):
    info = json.loads((varied_dir / "build_info.json").read_text())
    assert info["speech"] == "varied" and info["text"] == "grammar" and info["words_without_event"] == 0
    timings = {}
    for line in (varied_dir / "train.timings.jsonl").read_text().splitlines():
        rec = json.loads(line)
        timings[rec["id"]] = rec["words"]
    gaps = 0
    spreads = []
    for row in _rows(varied_dir / "train.jsonl"):
        audio, sr = sf.read(varied_dir / row["audio"], dtype="float32")
        assert sr == 16000 and abs(len(audio) / sr - row["duration"]) < 1e-3
        assert row["speech"] == "varied" and row["rate_range"][0] <= row["rate"] <= row["rate_range"][1]
        spreads.append(row["rate_range"][1] - row["rate_range"][0])
        words = timings[row["id"]]
        assert " ".join(w["word"] for w in words) == " ".join(row["transcript"].split())
        for w in words:
            assert 0 <= w["start"] <= w["end"] <= row["duration"] + 1e-4
        for prev, w in itertools.pairwise(words):
            assert prev["end"] <= w["start"] + 1e-4
        assert words[0]["start"] >= 0.0 and np.abs(audio).max() > 0.05  # speech is there
        # silence before the first word, after the last and inside long gaps: only the noise floor
        quiet = [(0.0, words[0]["start"] - 0.02), (words[-1]["end"] + 0.06, row["duration"])]
        quiet += [
            (a["end"] + 0.06, b["start"] - 0.03) for a, b in itertools.pairwise(words) if b["start"] - a["end"] > 0.2
        ]
        for lo, hi in quiet:
            if hi - lo < 0.02:
                continue
            gaps += 1
            seg = audio[int(lo * sr) : int(hi * sr)]
            rms_db = 20 * np.log10(np.sqrt(np.mean(seg.astype(np.float64) ** 2)) + 1e-12)
            assert -62 < rms_db < -38, (row["id"], lo, hi, rms_db)  # not digital zero, not speech
    assert gaps > 0
    assert sum(r["pauses"] for r in _rows(varied_dir / "train.jsonl")) > 0
    assert max(spreads) >= 30  # the rate changes inside utterances


def test_dev_and_test_do_not_depend_on_the_train_size(tmp_path):
    kw = {"text": "grammar", "speech": "varied", "workers": 2, "progress": False}
    small = build_demo_corpus(tmp_path, split_sizes={"train": 2, "dev": 3, "test": 3}, **kw)
    large = build_demo_corpus(tmp_path, split_sizes={"train": 5, "dev": 3, "test": 3}, **kw)
    assert small != large
    for split in ("dev", "test"):
        assert _rows(small / f"{split}.jsonl") == _rows(large / f"{split}.jsonl")
        assert (small / f"{split}.timings.jsonl").read_text() == (large / f"{split}.timings.jsonl").read_text()


def test_text_records_honour_demo_text():
    ding = demo_text_records("dev", split_sizes=SIZES)
    gram = demo_text_records("dev", split_sizes=SIZES, text="grammar")
    assert [r["id"] for r in ding] == [r["id"] for r in gram]
    assert [r["transcript"] for r in ding] != [r["transcript"] for r in gram]
    from dtw_align_hf.data.grammar import grammar_splits

    assert [(r["transcript"], r["translation"]) for r in gram] == grammar_splits(SIZES)["dev"]


def test_text_only_loading_route_passes_the_options(tmp_path, monkeypatch):
    from dtw_align_hf.data.arguments import DataArguments
    from dtw_align_hf.data.grammar import grammar_splits
    from dtw_align_hf.data.loading import load_splits

    def no_build(*args, **kwargs):
        raise AssertionError("the demo corpus was synthesised for stage 1")

    monkeypatch.setattr("dtw_align_hf.data.demo.build_corpus_from_pairs", no_build)
    args = DataArguments(
        dataset="demo", cache_dir=str(tmp_path), demo_train_size=5, demo_eval_size=2, demo_test_size=3,
        demo_text="grammar", demo_speech="varied",
    )  # fmt: skip
    splits, _ = load_splits(args, text_only=True)
    plan = grammar_splits({"train": 5, "dev": 2, "test": 3})
    assert list(splits["test"]["transcript"]) == [de for de, _ in plan["test"]]
    assert list(splits["train"]["translation"]) == [en for _, en in plan["train"]]
    with pytest.raises(ValueError, match="demo_speech"):
        DataArguments(dataset="demo", demo_speech="fast")


def test_phrases_are_joined_with_exact_offsets():
    from dtw_align_hf.data.synth import get_synthesizer, synthesize_phrases

    synth = get_synthesizer()  # one per process: the library is global state
    phrases = [{"text": "Der Hund", "rate": 120}, {"text": "sieht die Katze.", "rate": 220}]
    utt = synthesize_phrases(
        phrases, "de", pauses=[0.5], lead=0.25, trail=0.1, noise_dbfs=-50.0, noise_seed=3, seed=0,
        synthesizer=synth, variant="m3", pitch=50,
    )  # fmt: skip
    (a0, a1), (b0, b1) = utt.phrases
    assert a0 == 4000 and b0 - a1 == 8000 and len(utt.audio) - b1 == 1600  # lead, pause, trail
    assert len(utt.audio) == 4000 + (a1 - a0) + 8000 + (b1 - b0) + 1600  # the sum of the parts
    assert [w.word for w in utt.words] == ["Der", "Hund", "sieht", "die", "Katze."]
    # phrase 2 alone, shifted by its offset (espeak's state moves timings by well under a millisecond)
    alone = synth.synthesize("sieht die Katze.", "de", variant="m3", rate=220, pitch=50, seed=1)
    for got, ref in zip(utt.words[2:], alone.words, strict=True):
        assert got.start == pytest.approx(ref.start + b0 / 16000, abs=1e-3)
        assert got.end == pytest.approx(ref.end + b0 / 16000, abs=1e-3)
    assert utt.words[1].end <= a1 / 16000 and utt.words[2].start >= b0 / 16000
    pause = utt.audio[a1 + 800 : b0 - 800]
    assert 20 * np.log10(np.sqrt(np.mean(pause.astype(np.float64) ** 2))) == pytest.approx(-50.0, abs=1.0)


def test_cli_takes_the_options(tmp_path, capsys):
    from dtw_align_hf.data.demo import main

    argv = ["--text", "grammar", "--speech", "varied", "--cache-dir", str(tmp_path), "--train-size", "7"]
    assert main(argv) == 0
    want = demo_corpus_dir(
        tmp_path, split_sizes={"train": 7, "dev": 100, "test": 100}, text="grammar", speech="varied"
    )
    assert str(want) in capsys.readouterr().out
