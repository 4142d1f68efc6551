"""The bundled offline demo corpus: real German -> English sentence pairs, synthetic German speech, exact word timings.

- **Text**: human-translated sentence pairs from the Ding German-English dictionary (TU Chemnitz, GPL-2+;
  Debian package ``trans-de-en``), filtered to clean sentences and committed as
  ``dtw_align_hf/data/resources/ding_de_en.tsv.gz`` (see ``resources/LICENSE.ding.md``). :func:`extract_ding_pairs`
  regenerates it from the Debian package.
- **Speech**: synthesised at build time with espeak-ng (``espeakng-loader``), voice ``de`` with several voice
  variants, speaking rates and pitches drawn deterministically from the seed; 16 kHz mono 16-bit FLAC.
- **Word timings**: from the synthesiser's own WORD/PHONEME events (:mod:`~dtw_align_hf.data.synth`), written
  in the CONTRACTS.md format (:mod:`~dtw_align_hf.data.timings`).

Layout of a built corpus (``<cache>/demo_corpus/de-en-<key>/``, ``<cache>`` = ``$DTW_ALIGN_HF_CACHE`` or
``<repo>/.cache``; ``<key>`` hashes every build parameter, the text file and the espeak version, so rebuilding
with the same seed is a no-op)::

    build_info.json              parameters, versions, counts, hours, build seconds
    train.jsonl dev.jsonl test.jsonl            manifests (read by load_manifest)
    train.timings.jsonl dev.timings.jsonl ...   word timings
    audio/<split>/<id>.flac

Manifest lines: ``{"id": "demo-train-00001", "audio": "audio/train/demo-train-00001.flac", "transcript": ...,
"translation": ..., "src_lang": "de", "tgt_lang": "en", "duration": 2.31, "voice": "de+m3", "rate": 162,
"pitch": 48}`` (audio paths relative to the manifest).

Default sizes (1500 train / 100 dev / 100 test, sentences of 3-14 German words, about 1.2 h of speech) keep the
CPU demo to a few minutes; the committed file has 6000 pairs, so up to ~5800 training utterances are possible.

Command line::

    python -m dtw_align_hf.data.demo --build [--seed 0] [--train-size 1500] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from filelock import FileLock
from tqdm.auto import tqdm
from transformers.utils import logging

from .audio import AudioOptions
from .ding import DING_PAIRS_FILE, demo_pairs, extract_ding_pairs, read_parallel_tsv, write_ding_resource
from .synth import DEFAULT_VARIANTS, espeak_version, split_words
from .timings import read_timings, write_timings


logger = logging.get_logger(__name__)

#: Bump when the builder's output changes for the same parameters (part of the cache key).
BUILDER_VERSION = 2  # 2: one RNG and its own synthesis streams per split (dev/test independent of the train size)
DEFAULT_SPLIT_SIZES: dict[str, int] = {"train": 1500, "dev": 100, "test": 100}
DEFAULT_RATE_RANGE = (140, 190)  # words per minute, inclusive
DEFAULT_PITCH_RANGE = (35, 65)  # espeak pitch 0-100, inclusive
TEXT_SOURCES = ("ding", "grammar")
SPEECH_STYLES = ("steady", "varied")
# demo_speech="varied": phrases of 1-4 words, each at its own rate, joined by pauses, over a noise floor
VARIED_RATE_RANGE = (110, 230)  # words per minute per phrase, inclusive
VARIED_PAUSE_RANGE = (0.05, 0.7)  # seconds between phrases; with probability 0.15 a long one of 0.8-1.2 s
VARIED_EDGE_RANGE = (0.0, 0.4)  # leading and trailing silence, seconds
VARIED_NOISE_DBFS = (-55.0, -45.0)  # white noise RMS over the whole signal


# ---------------------------------------------------------------------------------------------------------------
# building


def default_cache_root() -> Path:
    """``$DTW_ALIGN_HF_CACHE``, else ``<repo>/.cache`` for a source checkout, else ``~/.cache/dtw_align_hf``."""
    env = os.environ.get("DTW_ALIGN_HF_CACHE")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").exists() and (repo / "dtw_align_hf").is_dir():
        return repo / ".cache"
    return Path.home() / ".cache" / "dtw_align_hf"


_STREAM_SIZE = 32  # utterances per fresh process; changing it changes the audio bytes (bump BUILDER_VERSION)
_SERVER = Path(__file__).resolve().with_name("_synth_server.py")


def _run_synth_server(streams: list[list[dict[str, Any]]], workers: int, bar: tqdm, work_dir: Path) -> list[dict]:
    """Synthesise ``streams`` in a pristine helper process (see ``_synth_server.py`` for why); returns results."""
    jobs_path, results_path = work_dir / "_jobs.json", work_dir / "_results.json"
    jobs_path.write_text(json.dumps({"streams": streams, "workers": workers}, ensure_ascii=False), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(_SERVER), str(jobs_path), str(results_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=os.name == "posix",  # its own process group, so an interrupt can stop its workers too
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        for line in proc.stdout:
            if line.strip().isdigit():
                bar.update(int(line))
    except BaseException:  # interrupted (Ctrl-C): stop the helper and its workers
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait()
        raise
    err = proc.stderr.read()
    if proc.wait() != 0:
        raise RuntimeError(f"speech synthesis failed (exit code {proc.returncode}):\n{err[-4000:]}")
    results = json.loads(results_path.read_text(encoding="utf-8"))
    jobs_path.unlink()
    results_path.unlink()
    return results


def _split_rng(seed: int, split: str) -> np.random.Generator:
    """The voice/rate/pitch/pause generator of one split: a split's draws do not depend on the other splits."""
    return np.random.default_rng([seed, 1, zlib.crc32(split.encode())])


def _varied_plan(src: str, rng: np.random.Generator) -> dict[str, Any]:
    """Phrases (1-4 words, each with its own rate), pauses, edge silences and noise level of one utterance."""
    words = split_words(src)
    phrases, i = [], 0
    while i < len(words):
        j = min(len(words), i + int(rng.integers(1, 5)))
        rate = int(rng.integers(VARIED_RATE_RANGE[0], VARIED_RATE_RANGE[1] + 1))
        phrases.append({"text": " ".join(words[i:j]), "rate": rate})
        i = j
    pauses = []
    for _ in range(len(phrases) - 1):
        long = rng.random() < 0.15
        lo, hi = (0.8, 1.2) if long else VARIED_PAUSE_RANGE
        pauses.append(round(float(rng.uniform(lo, hi)), 3))
    lead, trail = (round(float(rng.uniform(*VARIED_EDGE_RANGE)), 3) for _ in range(2))
    noise = round(float(rng.uniform(*VARIED_NOISE_DBFS)), 1)
    return {"phrases": phrases, "pauses": pauses, "lead": lead, "trail": trail, "noise_dbfs": noise}


def _plan(
    pairs: Sequence[tuple[str, str]] | dict[str, list[tuple[str, str]]],
    split_sizes: dict[str, int] | None,
    seed: int,
) -> dict[str, list[tuple[str, str]]]:
    """Seeded permutation of the pairs cut into splits, dev/test before train (``None``: everything in "train").

    ``pairs`` may already be split (a dict, e.g. from :func:`~dtw_align_hf.data.grammar.grammar_splits`)."""
    if isinstance(pairs, dict):
        return {name: list(p) for name, p in pairs.items()}
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pairs))
    if split_sizes is None:
        return {"train": [pairs[i] for i in order]}
    need = sum(split_sizes.values())
    if need > len(pairs):
        raise ValueError(f"split sizes {split_sizes} need {need} sentence pairs but only {len(pairs)} are available")
    out, pos = {}, 0
    # dev/test are cut first so that they stay the same when only the training size changes
    for name in sorted(split_sizes, key=lambda s: (s == "train", s)):
        out[name] = [pairs[i] for i in order[pos : pos + split_sizes[name]]]
        pos += split_sizes[name]
    return {name: out[name] for name in split_sizes}


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError:  # e.g. Windows without that pid
        return False
    return True


def remove_stale_build_folders(out_dir: str | os.PathLike) -> list[Path]:
    """Delete the ``<out_dir>.tmp-<pid>`` folders that killed builds of ``out_dir`` left behind.

    Only folders named exactly ``<out_dir name>.tmp-<pid>`` whose process no longer runs on this machine are
    removed (a build in progress keeps its folder); nothing else beside ``out_dir`` is touched. Returns the
    removed folders.
    """
    out_dir = Path(out_dir)
    if not out_dir.parent.is_dir():
        return []
    pattern = re.compile(re.escape(out_dir.name) + r"\.tmp-(\d+)")
    removed = []
    for path in out_dir.parent.iterdir():
        match = pattern.fullmatch(path.name)
        if match is None or not path.is_dir() or path.is_symlink():
            continue
        pid = int(match.group(1))
        if pid == os.getpid() or _pid_alive(pid):
            continue
        logger.warning(f"Removing {path}, left by an interrupted corpus build (process {pid} is gone).")
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def build_corpus_from_pairs(
    pairs: Sequence[tuple[str, str]] | dict[str, list[tuple[str, str]]],
    out_dir: str | os.PathLike,
    *,
    src_lang: str,
    tgt_lang: str,
    voice: str | None = None,
    split_sizes: dict[str, int] | None = None,
    seed: int = 0,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    rate_range: tuple[int, int] = DEFAULT_RATE_RANGE,
    pitch_range: tuple[int, int] = DEFAULT_PITCH_RANGE,
    id_prefix: str = "utt",
    workers: int | None = None,
    progress: bool = True,
    extra_info: dict[str, Any] | None = None,
    speech: str = "steady",
) -> Path:
    """Synthesise ``pairs`` into a corpus directory (manifests, timings, FLAC audio); see the module docstring.

    Args:
        pairs: ``(source sentence, target sentence)`` tuples; the source is spoken. A dict ``{split: pairs}``
            is taken as the split plan (``split_sizes`` is then ignored).
        out_dir: the corpus directory (written atomically: built beside it, then renamed).
        src_lang, tgt_lang (`str`): language codes written to the manifests.
        voice (`str`, *optional*): espeak voice (default: ``src_lang``), e.g. "de", "fr", "es", "en-us".
        split_sizes (`dict[str, int]`, *optional*): utterances per split; `None` puts every pair in "train".
        seed (`int`): fixes the split permutation and every utterance's variant, rate and pitch.
        variants: voice variants to draw from (``voices/!v``); an empty tuple uses the plain voice.
        rate_range, pitch_range: inclusive ranges (words per minute; espeak pitch 0-100).
        id_prefix (`str`): ids are ``<id_prefix>-<split>-<00001>``.
        workers (`int`, *optional*): synthesis processes (default: CPU count, at most 8); output does not
            depend on it.
        progress (`bool`): show a tqdm bar.
        speech (`str`): "steady" (one rate per utterance, espeak's own pauses) or "varied" (phrases of 1-4
            words, each at its own rate in ``VARIED_RATE_RANGE``, joined by pauses, edge silences and a noise
            floor; word timings stay exact; the manifest then has ``speech``, ``rate_range`` and the mean
            ``rate``).

        Each split has its own generator (seeded from ``seed`` and the split name), so the dev and test
        utterances do not change when only the training size does.

    Returns:
        `Path`: ``out_dir``.
    """
    out_dir = Path(out_dir)
    voice = voice or src_lang
    t0 = time.time()
    if speech not in SPEECH_STYLES:
        raise ValueError(f"speech={speech!r}; choose one of {', '.join(SPEECH_STYLES)}")
    plan = _plan(pairs if isinstance(pairs, dict) else list(pairs), split_sizes, seed)
    version = espeak_version()
    remove_stale_build_folders(out_dir)
    tmp = out_dir.with_name(out_dir.name + f".tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    jobs: list[dict[str, Any]] = []
    rows: dict[str, list[dict[str, Any]]] = {}
    for split, split_pairs in plan.items():
        (tmp / "audio" / split).mkdir(parents=True, exist_ok=True)
        rows[split] = []
        rng = _split_rng(seed, split)
        for k, (src, tgt) in enumerate(split_pairs, start=1):
            uid = f"{id_prefix}-{split}-{k:05d}"
            variant = str(variants[int(rng.integers(len(variants)))]) if variants else None
            rate = int(rng.integers(rate_range[0], rate_range[1] + 1))
            pitch = int(rng.integers(pitch_range[0], pitch_range[1] + 1))
            noise_seed = int(rng.integers(2**31 - 1))
            rel = f"audio/{split}/{uid}.flac"
            jobs.append(
                {"id": uid, "text": src, "voice": voice, "variant": variant, "rate": rate, "pitch": pitch}
                | {"seed": noise_seed, "path": str(tmp / rel)}
            )
            extra: dict[str, Any] = {}
            if speech == "varied":
                varied = _varied_plan(src, rng)
                jobs[-1].update(varied)
                rates = [p["rate"] for p in varied["phrases"]]
                rate = round(sum(rates) / len(rates))
                extra = {"speech": "varied", "rate_range": [min(rates), max(rates)], "pauses": len(varied["pauses"])}
            rows[split].append(
                {
                    "id": uid,
                    "audio": rel,
                    "transcript": src,
                    "translation": tgt,
                    "src_lang": src_lang,
                    "tgt_lang": tgt_lang,
                    "duration": None,
                    "voice": f"{voice}+{variant}" if variant else voice,
                    "rate": rate,
                    "pitch": pitch,
                    **extra,
                }
            )
    # espeak keeps state across calls (glottal phase, flutter index; not reset by espeak_Initialize), so an
    # utterance's exact samples depend on what the process synthesised before. For bytes that depend only on the
    # seed, fixed streams of _STREAM_SIZE utterances each run in a fresh process forked from a helper that never
    # synthesised, whatever the number of workers.
    # streams are cut per split, so a split's audio does not depend on the size of the splits before it
    streams = []
    for split in rows:
        split_jobs = [job for job in jobs if job["id"].startswith(f"{id_prefix}-{split}-")]
        streams += [split_jobs[i : i + _STREAM_SIZE] for i in range(0, len(split_jobs), _STREAM_SIZE)]
    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    workers = max(1, min(workers, len(streams)))
    bar = tqdm(total=len(jobs), desc=f"Synthesising {src_lang} speech", unit="utt", disable=not progress)
    try:
        results = {res["id"]: res for res in _run_synth_server(streams, workers, bar, tmp)}
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        bar.close()
    counts, seconds, missing = {}, {}, 0
    for split, split_rows in rows.items():
        for row in split_rows:
            row["duration"] = results[row["id"]]["duration"]
            missing += results[row["id"]]["missing"]
        with open(tmp / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for row in split_rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        write_timings(
            ({"id": r["id"], "words": results[r["id"]]["words"]} for r in split_rows), tmp / f"{split}.timings.jsonl"
        )
        counts[split] = len(split_rows)
        seconds[split] = round(sum(r["duration"] for r in split_rows), 2)
    if missing:
        logger.warning(f"{missing} words got no espeak WORD event; they were given their neighbour's start time")
    info = {
        "builder_version": BUILDER_VERSION,
        "src_lang": src_lang,
        "tgt_lang": tgt_lang,
        "voice": voice,
        "seed": seed,
        "split_sizes": counts,
        "hours": {k: round(v / 3600, 4) for k, v in seconds.items()},
        "variants": list(variants),
        "rate_range": list(rate_range),
        "pitch_range": list(pitch_range),
        "speech": speech,
        **(
            {
                "phrase_rate_range": list(VARIED_RATE_RANGE),
                "pause_range": list(VARIED_PAUSE_RANGE),
                "edge_silence_range": list(VARIED_EDGE_RANGE),
                "noise_dbfs_range": list(VARIED_NOISE_DBFS),
            }
            if speech == "varied"
            else {}
        ),
        "sampling_rate": 16000,
        "audio_format": "FLAC PCM_16",
        "espeak_ng": version,
        "libsndfile": sf.__libsndfile_version__,
        "words_without_event": missing,
        "build_seconds": round(time.time() - t0, 2),
        **(extra_info or {}),
    }
    (tmp / "build_info.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    logger.info(f"Built {sum(counts.values())} utterances ({sum(seconds.values()) / 3600:.2f} h) in {out_dir}")
    return out_dir


def build_corpus_from_tsv(
    tsv: str | os.PathLike,
    lang: str,
    voice: str | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    tgt_lang: str = "en",
    split_sizes: dict[str, int] | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> Path:
    """Build a small synthetic speech-translation corpus in any espeak language from a parallel TSV.

    Args:
        tsv: ``source<TAB>target`` lines (UTF-8, ``.gz`` allowed, ``#`` comments and a ``source/target`` header
            skipped); the source side is spoken.
        lang (`str`): source language code written to the manifests ("fr", "es", ...).
        voice (`str`, *optional*): espeak voice name (default ``lang``).
        out_dir (`str`, *optional*): default ``<cache>/corpora/<lang>-<tgt_lang>-<tsv stem>-<seed>``.
        tgt_lang (`str`): target language code.
        split_sizes (`dict[str, int]`, *optional*): e.g. ``{"train": 900, "dev": 50, "test": 50}``; default:
            all pairs in "train".
        seed (`int`): split permutation and voice parameters.
        **kwargs: forwarded to :func:`build_corpus_from_pairs` (variants, rate_range, pitch_range, workers, ...).

    Returns:
        `Path`: the corpus directory (load a split with ``load_manifest(out_dir / "<split>.jsonl")``).
    """
    pairs = read_parallel_tsv(tsv)
    if out_dir is None:
        out_dir = default_cache_root() / "corpora" / f"{lang}-{tgt_lang}-{Path(tsv).name.split('.')[0]}-{seed}"
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out_dir) + ".lock"):
        return build_corpus_from_pairs(
            pairs,
            out_dir,
            src_lang=lang,
            tgt_lang=tgt_lang,
            voice=voice,
            split_sizes=split_sizes,
            seed=seed,
            id_prefix=kwargs.pop("id_prefix", lang),
            **kwargs,
        )


def _demo_params(
    seed: int,
    split_sizes: dict[str, int] | None,
    max_words: int,
    variants: Sequence[str],
    rate_range: tuple[int, int],
    pitch_range: tuple[int, int],
    text: str = "ding",
    speech: str = "steady",
) -> dict[str, Any]:
    if text not in TEXT_SOURCES:
        raise ValueError(f"demo_text={text!r}; choose one of {', '.join(TEXT_SOURCES)}")
    if speech not in SPEECH_STYLES:
        raise ValueError(f"demo_speech={speech!r}; choose one of {', '.join(SPEECH_STYLES)}")
    source = DING_PAIRS_FILE if text == "ding" else Path(__file__).with_name("grammar.py")
    return {
        "builder_version": BUILDER_VERSION,
        "text": text,
        "speech": speech,
        "pairs_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "seed": seed,
        "split_sizes": dict(split_sizes or DEFAULT_SPLIT_SIZES),
        "max_words": max_words,
        "variants": list(variants),
        "rate_range": list(rate_range),
        "pitch_range": list(pitch_range),
        "espeak_ng": espeak_version(),
        "libsndfile": sf.__libsndfile_version__,
    }


def demo_corpus_dir(
    cache_dir: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    split_sizes: dict[str, int] | None = None,
    max_words: int = 14,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    rate_range: tuple[int, int] = DEFAULT_RATE_RANGE,
    pitch_range: tuple[int, int] = DEFAULT_PITCH_RANGE,
    text: str = "ding",
    speech: str = "steady",
) -> Path:
    """Where the demo corpus with these parameters lives (built or not): ``<cache>/demo_corpus/de-en-<key>``."""
    params = _demo_params(seed, split_sizes, max_words, variants, rate_range, pitch_range, text, speech)
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    root = Path(cache_dir) if cache_dir is not None else default_cache_root() / "demo_corpus"
    return root / f"de-en-{key}"


def build_demo_corpus(
    cache_dir: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    split_sizes: dict[str, int] | None = None,
    max_words: int = 14,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    rate_range: tuple[int, int] = DEFAULT_RATE_RANGE,
    pitch_range: tuple[int, int] = DEFAULT_PITCH_RANGE,
    workers: int | None = None,
    force: bool = False,
    progress: bool = True,
    text: str = "ding",
    speech: str = "steady",
) -> Path:
    """Build the German -> English demo corpus if it is not in the cache yet; return its directory.

    Args:
        cache_dir (`str`, *optional*): parent directory of corpora (default ``<cache>/demo_corpus``, with
            ``<cache>`` = ``$DTW_ALIGN_HF_CACHE`` or ``<repo>/.cache``).
        seed (`int`, defaults to 0): split permutation, voice variant, rate and pitch of every utterance.
        split_sizes (`dict[str, int]`, *optional*): default ``{"train": 1500, "dev": 100, "test": 100}``.
        max_words (`int`, defaults to 14): keep German sentences of at most this many words (the file has 3-14).
        variants, rate_range, pitch_range: speaker variety (see :func:`build_corpus_from_pairs`).
        workers (`int`, *optional*): synthesis processes; the output does not depend on it.
        force (`bool`): rebuild even if the cache has it.
        progress (`bool`): show a tqdm bar.
        text (`str`, defaults to "ding"): "ding" (the dictionary's real sentence pairs) or "grammar" (pairs
            generated from the small grammar of :mod:`~dtw_align_hf.data.grammar`, ~270 German word types).
        speech (`str`, defaults to "steady"): "steady" or "varied" (see :func:`build_corpus_from_pairs`).

    Returns:
        `Path`: the corpus directory (``train.jsonl``, ``train.timings.jsonl``, ``audio/``, ``build_info.json``).
    """
    split_sizes = dict(split_sizes or DEFAULT_SPLIT_SIZES)
    out = demo_corpus_dir(
        cache_dir,
        seed=seed,
        split_sizes=split_sizes,
        max_words=max_words,
        variants=variants,
        rate_range=rate_range,
        pitch_range=pitch_range,
        text=text,
        speech=speech,
    )
    if (out / "build_info.json").exists() and not force:
        logger.info(f"Demo corpus already built: {out}")
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    # several processes (DDP ranks, parallel tests) may ask at once: one builds, the others wait and reuse it
    with FileLock(str(out) + ".lock"):
        if (out / "build_info.json").exists() and not force:
            return out
        pairs = _demo_text_plan(text, split_sizes, seed, max_words)
        if text == "grammar":
            source = "generated by dtw_align_hf.data.grammar (hand-written German grammar, controlled vocabulary)"
        else:
            source = "Ding de-en dictionary (GPL-2.0-or-later)"
        return build_corpus_from_pairs(
            pairs,
            out,
            src_lang="de",
            tgt_lang="en",
            voice="de",
            split_sizes=split_sizes,
            seed=seed,
            variants=variants,
            rate_range=rate_range,
            pitch_range=pitch_range,
            id_prefix="demo",
            workers=workers,
            progress=progress,
            extra_info={"text": text, "text_source": source, "max_words": max_words},
            speech=speech,
        )


def _demo_text_plan(
    text: str, split_sizes: dict[str, int], seed: int, max_words: int
) -> list[tuple[str, str]] | dict[str, list[tuple[str, str]]]:
    """The sentence pairs of the demo corpus: Ding pairs (split by ``_plan``) or grammar splits (already cut)."""
    if text == "grammar":
        from .grammar import grammar_splits

        return grammar_splits(split_sizes, seed, max_words=max_words)
    return [p for p in demo_pairs() if len(p[0].split()) <= max_words]


def load_demo_corpus(
    split: str = "train",
    *,
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    split_sizes: dict[str, int] | None = None,
    build: bool = True,
    options: AudioOptions | None = None,
    decode: bool = True,
    **build_kwargs: Any,
):
    """Load one split of the demo corpus as a map-style ``datasets.Dataset`` in the example schema.

    Builds the corpus first if needed (``build=True``; a few seconds to a minute). ``ds[i]`` gives ``{"id",
    "audio" (float32, 16 kHz), "sampling_rate", "transcript", "translation", "src_lang": "de", "tgt_lang": "en",
    "duration", "length"}``; audio is decoded on access. Word timings: :func:`load_demo_timings`.

    Args:
        split (`str`): "train", "dev" or "test" (or any key of ``split_sizes``).
        cache_dir, seed, split_sizes, **build_kwargs: as in :func:`build_demo_corpus`.
        build (`bool`): build if missing (else raise ``FileNotFoundError``).
        options ([`AudioOptions`], *optional*): decoding options (durations are checked against the manifest).
        decode (`bool`): decode audio on access (else ``audio`` is the FLAC path).
    """
    from .manifest import load_manifest

    kwargs = {k: v for k, v in build_kwargs.items() if k not in ("workers", "force", "progress")}
    path = demo_corpus_dir(cache_dir, seed=seed, split_sizes=split_sizes, **kwargs)
    if not (path / "build_info.json").exists():
        if not build:
            raise FileNotFoundError(f"Demo corpus not built at {path}; call build_demo_corpus() first")
        path = build_demo_corpus(cache_dir, seed=seed, split_sizes=split_sizes, **build_kwargs)
    manifest = path / f"{split}.jsonl"
    if not manifest.exists():
        have = sorted(p.name[: -len(".jsonl")] for p in path.glob("*.jsonl") if ".timings." not in p.name)
        raise ValueError(f"Demo corpus has no split {split!r}; splits: {have}")
    return load_manifest(manifest, options=options, decode=decode, validate="none")


def demo_text_records(
    split: str = "train",
    *,
    seed: int = 0,
    split_sizes: dict[str, int] | None = None,
    max_words: int = 14,
    text: str = "ding",
) -> list[dict[str, str]]:
    """The text of one demo split, without building (synthesising) the corpus: the same ids, transcripts and
    translations as :func:`load_demo_corpus` (the split plan is the corpus builder's), for stage 1."""
    split_sizes = dict(split_sizes or DEFAULT_SPLIT_SIZES)
    if split not in split_sizes:
        raise ValueError(f"Demo corpus has no split {split!r}; splits: {sorted(split_sizes)}")
    plan = _plan(_demo_text_plan(text, split_sizes, seed, max_words), split_sizes, seed)
    return [
        {"id": f"demo-{split}-{k:05d}", "transcript": src, "translation": tgt, "src_lang": "de", "tgt_lang": "en"}
        for k, (src, tgt) in enumerate(plan[split], start=1)
    ]


def load_demo_timings(
    split: str = "train",
    *,
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    split_sizes: dict[str, int] | None = None,
    build: bool = True,
    **build_kwargs: Any,
) -> dict[str, list[dict[str, Any]]]:
    """Reference word timings of a demo split: ``{id: [{"word", "start", "end"}, ...]}`` (seconds)."""
    kwargs = {k: v for k, v in build_kwargs.items() if k not in ("workers", "force", "progress")}
    path = demo_corpus_dir(cache_dir, seed=seed, split_sizes=split_sizes, **kwargs)
    if not (path / "build_info.json").exists():
        if not build:
            raise FileNotFoundError(f"Demo corpus not built at {path}; call build_demo_corpus() first")
        path = build_demo_corpus(cache_dir, seed=seed, split_sizes=split_sizes, **build_kwargs)
    return read_timings(path / f"{split}.timings.jsonl")


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m dtw_align_hf.data.demo --build``: build (or find) the demo corpus and print where it is."""
    parser = argparse.ArgumentParser(description="Build the offline German->English demo corpus.")
    parser.add_argument("--build", action="store_true", help="build the corpus (no-op if already cached)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-size", type=int, default=DEFAULT_SPLIT_SIZES["train"])
    parser.add_argument("--dev-size", type=int, default=DEFAULT_SPLIT_SIZES["dev"])
    parser.add_argument("--test-size", type=int, default=DEFAULT_SPLIT_SIZES["test"])
    parser.add_argument("--max-words", type=int, default=14)
    parser.add_argument("--text", choices=TEXT_SOURCES, default="ding", help="sentence pairs: Ding or the grammar")
    parser.add_argument("--speech", choices=SPEECH_STYLES, default="steady", help="steady or varied speech")
    parser.add_argument("--cache-dir", default=None, help="default: $DTW_ALIGN_HF_CACHE/demo_corpus or .cache/")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--from-tsv", default=None, help="build from this parallel TSV instead (with --lang)")
    parser.add_argument("--lang", default=None, help="source language/espeak voice for --from-tsv (fr, es, ...)")
    parser.add_argument("--out-dir", default=None, help="output directory for --from-tsv")
    args = parser.parse_args(list(argv) if argv is not None else None)
    sizes = {"train": args.train_size, "dev": args.dev_size, "test": args.test_size}
    if args.from_tsv:
        if not args.lang:
            parser.error("--from-tsv needs --lang")
        n = len(read_parallel_tsv(args.from_tsv))
        dev = test = max(1, min(args.dev_size, n // 10))
        out = build_corpus_from_tsv(
            args.from_tsv,
            args.lang,
            out_dir=args.out_dir,
            split_sizes={"train": n - dev - test, "dev": dev, "test": test},
            seed=args.seed,
            workers=args.workers,
        )
    else:
        if not args.build:
            out = demo_corpus_dir(
                args.cache_dir,
                seed=args.seed,
                split_sizes=sizes,
                max_words=args.max_words,
                text=args.text,
                speech=args.speech,
            )
            print(f"Demo corpus directory (built: {(out / 'build_info.json').exists()}): {out}")  # noqa: T201
            print("Pass --build to build it.")  # noqa: T201
            return 0
        out = build_demo_corpus(
            args.cache_dir,
            seed=args.seed,
            split_sizes=sizes,
            max_words=args.max_words,
            workers=args.workers,
            force=args.force,
            text=args.text,
            speech=args.speech,
        )
    info = json.loads((out / "build_info.json").read_text(encoding="utf-8"))
    print(f"Corpus: {out}")  # noqa: T201
    for split, n in info["split_sizes"].items():
        print(  # noqa: T201
            f"  {split:6s} {n:5d} utterances, {info['hours'][split]:.3f} h: {out / (split + '.jsonl')} "
            f"(word timings: {out / (split + '.timings.jsonl')})"
        )
    print(f"  built with espeak-ng {info['espeak_ng']} in {info['build_seconds']} s (see build_info.json)")  # noqa: T201
    return 0


__all__ = [
    "DEFAULT_SPLIT_SIZES",
    "DING_PAIRS_FILE",
    "SPEECH_STYLES",
    "TEXT_SOURCES",
    "build_corpus_from_pairs",
    "build_corpus_from_tsv",
    "build_demo_corpus",
    "default_cache_root",
    "demo_corpus_dir",
    "demo_pairs",
    "demo_text_records",
    "extract_ding_pairs",
    "load_demo_corpus",
    "load_demo_timings",
    "main",
    "read_parallel_tsv",
    "remove_stale_build_folders",
    "write_ding_resource",
]


if __name__ == "__main__":
    sys.exit(main())
