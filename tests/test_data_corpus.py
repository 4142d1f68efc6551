"""Speech synthesis with word timings, the bundled demo corpus builder and the word-timing converters (issue 5)."""

import hashlib
import json

import numpy as np
import pytest
import soundfile as sf

from dtw_align_hf.data.demo import (
    build_corpus_from_tsv,
    build_demo_corpus,
    demo_corpus_dir,
    demo_pairs,
    load_demo_corpus,
    load_demo_timings,
    main,
    read_parallel_tsv,
)
from dtw_align_hf.data.manifest import EXAMPLE_FIELDS, load_manifest
from dtw_align_hf.data.synth import split_words, synthesize
from dtw_align_hf.data.timings import (
    align_records_to_manifest,
    ctm_to_timings,
    match_timings_to_transcript,
    read_timings,
    textgrid_to_timings,
)


SIZES = {"train": 12, "dev": 4, "test": 4}


def _hashes(directory):
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != "build_info.json"
    }


def _check_timings(corpus_dir, split):
    """Every word of every utterance has a timing inside its audio, in order."""
    manifest = [json.loads(line) for line in (corpus_dir / f"{split}.jsonl").read_text().splitlines()]
    timings = read_timings(corpus_dir / f"{split}.timings.jsonl")
    assert list(timings) == [row["id"] for row in manifest]
    for row in manifest:
        info = sf.info(corpus_dir / row["audio"])
        assert info.samplerate == 16000 and info.channels == 1
        duration = info.frames / info.samplerate
        assert row["duration"] == pytest.approx(duration, abs=1e-3)
        words = timings[row["id"]]
        assert [w["word"] for w in words] == split_words(row["transcript"])
        assert " ".join(w["word"] for w in words) == " ".join(row["transcript"].split())
        prev_end = 0.0
        for w in words:
            assert 0.0 <= w["start"] < w["end"] <= duration + 1e-4, (row["id"], w)
            assert w["start"] >= prev_end - 1e-4
            prev_end = w["end"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return build_demo_corpus(tmp_path_factory.mktemp("demo"), split_sizes=SIZES, seed=7, workers=2, progress=False)


def test_synthesis_times_every_word():
    for text, voice in [
        ("Fährst du über Weihnachten nach Hause?", "de"),
        ("the cat sat on the mat", "en-us"),  # "on the" is one dictionary entry: the ZWSP fix keeps both words
        ("Il fait beau aujourd'hui – n'est-ce pas ?", "fr"),
        ("¿Dónde está la biblioteca?", "es"),
    ]:
        utt = synthesize(text, voice, variant="f2", rate=170, pitch=45)
        assert utt.sampling_rate == 16000 and utt.audio.dtype == np.float32
        assert not utt.missing
        assert [w.word for w in utt.words] == split_words(text)
        assert all(0 <= w.start < w.end <= utt.duration for w in utt.words)
        # there is sound inside every word span
        for w in utt.words:
            seg = utt.audio[int(w.start * 16000) : int(w.end * 16000)]
            assert np.abs(seg).max() > 0.01
    assert split_words("Ja – gut …") == ["Ja –", "gut …"]


def test_demo_corpus_is_deterministic_and_timed(demo_dir, tmp_path):
    info = json.loads((demo_dir / "build_info.json").read_text())
    assert info["split_sizes"] == SIZES and info["words_without_event"] == 0
    for split in SIZES:
        _check_timings(demo_dir, split)
    # same seed, another cache and one worker: identical bytes
    again = build_demo_corpus(tmp_path, split_sizes=SIZES, seed=7, workers=1, progress=False)
    assert again.name == demo_dir.name
    assert _hashes(again) == _hashes(demo_dir)
    # a rebuild with the same parameters is a no-op
    mtime = (again / "build_info.json").stat().st_mtime_ns
    assert build_demo_corpus(tmp_path, split_sizes=SIZES, seed=7, progress=False) == again
    assert (again / "build_info.json").stat().st_mtime_ns == mtime
    # another seed: another directory and other sentences
    other = demo_corpus_dir(tmp_path, split_sizes=SIZES, seed=8)
    assert other != again


def test_load_demo_corpus(demo_dir):
    cache = demo_dir.parent
    ds = load_demo_corpus("dev", cache_dir=cache, split_sizes=SIZES, seed=7, build=False)
    assert len(ds) == 4
    ex = ds[0]
    assert set(EXAMPLE_FIELDS) <= set(ex)
    assert ex["src_lang"] == "de" and ex["tgt_lang"] == "en" and ex["sampling_rate"] == 16000
    assert ex["audio"].dtype == np.float32 and len(ex["audio"]) == ex["length"]
    assert ex["id"] == "demo-dev-00001"
    assert (ex["transcript"], ex["translation"]) in set(demo_pairs())
    timings = load_demo_timings("dev", cache_dir=cache, split_sizes=SIZES, seed=7, build=False)
    assert set(timings) == set(ds["id"])
    # the manifest is a plain manifest for load_manifest
    assert load_manifest(demo_dir / "test.jsonl")["id"] == [f"demo-test-{i:05d}" for i in range(1, 5)]
    # splits are disjoint
    sentences = [set(load_manifest(demo_dir / f"{s}.jsonl", decode=False)["transcript"]) for s in SIZES]
    assert not (sentences[0] & sentences[1] or sentences[0] & sentences[2] or sentences[1] & sentences[2])
    with pytest.raises(ValueError, match="splits"):
        load_demo_corpus("nope", cache_dir=cache, split_sizes=SIZES, seed=7, build=False)
    with pytest.raises(FileNotFoundError):
        load_demo_corpus("dev", cache_dir=cache, split_sizes=SIZES, seed=99, build=False)


def test_committed_text_resource():
    pairs = demo_pairs()
    assert len(pairs) == 6000 and len(set(pairs)) == 6000
    assert all(3 <= len(de.split()) <= 14 and de[-1] in ".?!" and en[-1] in ".?!" for de, en in pairs)
    assert not any(c in de + en for de, en in pairs for c in "[](){}/<>;0123456789")


def test_cli_prints_locations(demo_dir, capsys):
    cache = demo_dir.parent
    args = ["--seed", "7", "--train-size", "12", "--dev-size", "4", "--test-size", "4", "--cache-dir", str(cache)]
    assert main(["--build", *args]) == 0
    out = capsys.readouterr().out
    assert str(demo_dir) in out and "train.timings.jsonl" in out


def test_build_corpus_from_tsv_other_languages(tmp_path):
    tsv = tmp_path / "fr-en.tsv"
    tsv.write_text(
        "source\ttarget\n"
        "Il fait beau aujourd'hui.\tThe weather is nice today.\n"
        "Où est la gare ?\tWhere is the station?\n"
        "Je voudrais un café, s'il vous plaît.\tI would like a coffee, please.\n"
        "# a comment\n"
        "Nous partons demain matin.\tWe are leaving tomorrow morning.\n"
    )
    assert len(read_parallel_tsv(tsv)) == 4
    out = build_corpus_from_tsv(
        tsv, "fr", out_dir=tmp_path / "fr", split_sizes={"train": 3, "test": 1}, progress=False
    )
    _check_timings(out, "train")
    ds = load_manifest(out / "test.jsonl")
    assert ds[0]["src_lang"] == "fr" and ds[0]["tgt_lang"] == "en" and ds[0]["id"] == "fr-test-00001"


@pytest.mark.slow
def test_default_demo_corpus_builds(tmp_path):
    """The README's corpus: 1500/100/100 utterances (about 1.2 h of speech)."""
    out = build_demo_corpus(tmp_path, progress=False)
    info = json.loads((out / "build_info.json").read_text())
    assert info["split_sizes"] == {"train": 1500, "dev": 100, "test": 100}
    assert info["words_without_event"] == 0
    for split in ("dev", "test"):
        _check_timings(out, split)


# --------------------------------------------------------------------------------------------- timing converters


def test_ctm_to_timings(tmp_path):
    ctm_dir = tmp_path / "ctm" / "words"
    ctm_dir.mkdir(parents=True)
    (ctm_dir / "utt1.ctm").write_text("utt1 1 0.00 0.40 das NA lex NA\nutt1 1 0.40 0.08 <b> NA lex NA\n")
    (ctm_dir / "utt2.ctm").write_text("utt2 1 0.10 0.30 hallo\nutt2 1 0.45 0.25 welt\n")
    recs = ctm_to_timings(ctm_dir, id_map={"utt2": "demo-dev-00002"})
    assert recs == [
        {"id": "utt1", "words": [{"word": "das", "start": 0.0, "end": 0.4}]},
        {
            "id": "demo-dev-00002",
            "words": [{"word": "hallo", "start": 0.1, "end": 0.4}, {"word": "welt", "start": 0.45, "end": 0.7}],
        },
    ]
    assert ctm_to_timings(["u 1 1.0 0.5 x 0.9"])[0]["words"] == [{"word": "x", "start": 1.0, "end": 1.5}]


LONG_TEXTGRID = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 1.5
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 1.5
        intervals: size = 4
        intervals [1]:
            xmin = 0
            xmax = 0.1
            text = ""
        intervals [2]:
            xmin = 0.1
            xmax = 0.55
            text = "fährst"
        intervals [3]:
            xmin = 0.55
            xmax = 0.8
            text = "du"
        intervals [4]:
            xmin = 0.8
            xmax = 1.5
            text = "spn"
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 1.5
        intervals: size = 1
        intervals [1]:
            xmin = 0
            xmax = 1.5
            text = "f"
"""

SHORT_TEXTGRID = 'File type = "ooTextFile"\nObject class = "TextGrid"\n\n0\n1.5\n<exists>\n1\n"IntervalTier"\n"words"\n0\n1.5\n2\n0\n0.7\n"say ""hi"""\n0.7\n1.5\n""'


def test_textgrid_to_timings(tmp_path):
    (tmp_path / "utt7.TextGrid").write_text(LONG_TEXTGRID, encoding="utf-8")
    rec = textgrid_to_timings(tmp_path / "utt7.TextGrid")
    assert rec == {
        "id": "utt7",
        "words": [{"word": "fährst", "start": 0.1, "end": 0.55}, {"word": "du", "start": 0.55, "end": 0.8}],
    }
    (tmp_path / "s.TextGrid").write_text(SHORT_TEXTGRID, encoding="utf-8")
    assert textgrid_to_timings(tmp_path / "s.TextGrid", "x")["words"] == [
        {"word": 'say "hi"', "start": 0.0, "end": 0.7}
    ]
    with pytest.raises(KeyError, match="tiers"):
        textgrid_to_timings(tmp_path / "s.TextGrid", tier="phones")


def test_match_timings_to_transcript():
    aligner = [
        {"word": "fährst", "start": 0.1, "end": 0.5},
        {"word": "du", "start": 0.5, "end": 0.7},
        {"word": "nach", "start": 1.0, "end": 1.2},
        {"word": "hause", "start": 1.2, "end": 1.6},
    ]
    out = match_timings_to_transcript(aligner, "Fährst du über Weihnachten nach Hause?")
    assert [w["word"] for w in out] == ["Fährst", "du", "über", "Weihnachten", "nach", "Hause?"]
    assert out[0]["start"] == 0.1 and out[5]["end"] == 1.6
    assert out[2]["interpolated"] and out[2]["start"] == 0.7 and out[3]["end"] == 1.0


def test_convert_aligner_output_for_a_manifest(tmp_path):
    """NFA output named after audio files -> timings with the manifest's ids and the transcript's own words."""
    from dtw_align_hf.data.timings import main as timings_main

    manifest = tmp_path / "test.jsonl"
    rows = [
        {"id": "u1", "audio": "clips/a.wav", "transcript": "Das ist gut.", "translation": "That is good."},
        {"id": "u2", "audio": "clips/b.wav", "transcript": "Hallo Welt!", "translation": "Hello world!"},
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ctm = tmp_path / "a.ctm"
    ctm.write_text("a 1 0.1 0.2 das\na 1 0.3 0.2 ist\na 1 0.5 0.3 gut\n")
    recs = align_records_to_manifest(ctm_to_timings(ctm), manifest)
    assert recs == [
        {
            "id": "u1",
            "words": [
                {"word": "Das", "start": 0.1, "end": 0.3},
                {"word": "ist", "start": 0.3, "end": 0.5},
                {"word": "gut.", "start": 0.5, "end": 0.8},
            ],
        }
    ]
    (tmp_path / "tg").mkdir()
    (tmp_path / "tg" / "b.TextGrid").write_text(SHORT_TEXTGRID.replace('say ""hi""', "hallo welt"), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert timings_main(["--textgrid", str(tmp_path / "tg"), "--manifest", str(manifest), "--out", str(out)]) == 0
    got = read_timings(out)
    assert list(got) == ["u2"] and [w["word"] for w in got["u2"]] == ["Hallo", "Welt!"]
