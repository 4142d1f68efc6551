"""MuST-C from a local copy: its own yaml/segment layout, or fairseq S2T TSV manifests.

MuST-C's audio is not on the Hub: FBK distributes it after registration (CC BY-NC-ND 4.0,
https://ict.fbk.eu/must-c/). Two local layouts are read:

1. **MuST-C's own layout** (what the release tarball unpacks to)::

       <root>/en-de/data/<split>/wav/ted_1.wav ...              talk-level 16 kHz wavs
       <root>/en-de/data/<split>/txt/<split>.yaml               one segment per line:
                 - {duration: 3.5, offset: 16.0, rW: 5, uW: 0, speaker_id: spk.1, wav: ted_1.wav}
       <root>/en-de/data/<split>/txt/<split>.en                 transcript, one line per segment
       <root>/en-de/data/<split>/txt/<split>.de                 translation, one line per segment

   ``root`` may be the directory above ``en-de``, ``en-de`` itself or ``en-de/data``. Splits: ``train``,
   ``dev``, ``tst-COMMON``, ``tst-HE``. Segment ids are ``<talk>_<k>`` (k counts segments within a talk, as in
   fairseq's ``prep_mustc_data.py``); audio is read as a slice of the talk file, never copied.

2. **fairseq S2T TSV manifests** (``prep_mustc_data.py`` with raw audio): tab-separated with a header, columns
   ``id, audio, n_frames, tgt_text, speaker`` and optionally ``src_text``. ``audio`` is a path, a segment
   ``talk.wav:offset:n_frames`` (samples) or ``flac.zip:byte_offset:byte_length``; relative paths are resolved
   against ``audio_root`` (default: the TSV's directory). In an ST manifest ``tgt_text`` is the translation;
   the transcript comes from ``src_text``, or from the matching ASR manifest (``transcript_tsv``, whose
   ``tgt_text`` is the transcript), joined on ``id``. Manifests of 80-dim fbank features (``fbank80.zip``) hold
   no audio and are rejected with an explanation.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from transformers.utils import logging

from .audio import AudioDecodeError, AudioOptions, audio_info
from .manifest import build_dataset, read_table
from .validation import BadRecordCounter, MissingColumnError, check_columns


logger = logging.get_logger(__name__)

MUST_C_SPLITS = ("train", "dev", "tst-COMMON", "tst-HE")


def find_must_c_split_dir(root: str | os.PathLike, split: str, src_lang: str = "en", tgt_lang: str = "de") -> Path:
    """Locate ``<...>/data/<split>`` (holding ``wav/`` and ``txt/``) under ``root``."""
    root = Path(root)
    pair = f"{src_lang}-{tgt_lang}"
    candidates = [root / pair / "data" / split, root / "data" / split, root / split, root]
    for c in candidates:
        if (c / "txt" / f"{split}.yaml").exists():
            return c
    raise FileNotFoundError(
        f"No MuST-C split {split!r} under {root}: expected {pair}/data/{split}/txt/{split}.yaml (also tried "
        f"{[str(c) for c in candidates]}). For fairseq TSV manifests pass tsv=..."
    )


_YAML_ITEM = re.compile(r"(\w+):\s*('(?:[^']*)'|\"(?:[^\"]*)\"|[^,}]+)")


def read_must_c_yaml(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a MuST-C segment yaml (a list of flow mappings, one per line); fast path without a YAML parser, with
    PyYAML as a fallback for anything unusual."""
    segments: list[dict[str, Any]] = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    simple = all(not ln.strip() or (ln.lstrip().startswith("- {") and ln.rstrip().endswith("}")) for ln in lines)
    if simple:
        for ln in lines:
            if not ln.strip():
                continue
            seg: dict[str, Any] = {}
            for key, raw in _YAML_ITEM.findall(ln.strip()[3:-1]):
                raw = raw.strip().strip("'\"")
                try:
                    seg[key] = float(raw) if key in ("duration", "offset") else raw
                except ValueError:
                    seg[key] = raw
            segments.append(seg)
        return segments
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=loader)
    return list(data or [])


def _yaml_records(
    split_dir: Path, split: str, src_lang: str, tgt_lang: str, counter: BadRecordCounter, text_only: bool = False
):
    txt = split_dir / "txt"
    segments = read_must_c_yaml(txt / f"{split}.yaml")
    src_file, tgt_file = txt / f"{split}.{src_lang}", txt / f"{split}.{tgt_lang}"
    for f in (src_file, tgt_file):
        if not f.exists():
            have = sorted(p.name for p in txt.iterdir())
            raise MissingColumnError(f"MuST-C {split}: missing {f.name} in {txt}; files there: {have}")
    src = src_file.read_text(encoding="utf-8").split("\n")
    tgt = tgt_file.read_text(encoding="utf-8").split("\n")
    src, tgt = src[: len(segments)], tgt[: len(segments)]
    if len(src) != len(segments) or len(tgt) != len(segments):
        raise ValueError(
            f"MuST-C {split}: {len(segments)} segments in the yaml but {len(src)} lines in {src_file.name} and "
            f"{len(tgt)} in {tgt_file.name}"
        )
    rates: dict[str, int | None] = {}
    per_talk: dict[str, int] = {}
    for seg, s, t in zip(segments, src, tgt, strict=True):
        wav = str(seg.get("wav", ""))
        talk = Path(wav).stem
        k = per_talk.get(talk, 0)
        per_talk[talk] = k + 1
        rid = f"{talk}_{k}"
        wav_path = split_dir / "wav" / wav
        if text_only:  # stage 1: the talk audio is never opened
            yield {"id": rid, "transcript": s, "translation": t, "src_lang": src_lang, "tgt_lang": tgt_lang}
            continue
        if wav not in rates:
            try:
                rates[wav] = audio_info(wav_path)[1]
            except AudioDecodeError:
                rates[wav] = None
        rate = rates[wav]
        if rate is None or "offset" not in seg or "duration" not in seg:
            counter.skip(rid, "unreadable_audio", f"cannot read talk audio {wav_path}")
            continue
        start, frames = round(float(seg["offset"]) * rate), round(float(seg["duration"]) * rate)
        yield {
            "id": rid,
            "audio": f"{wav_path}:{start}:{frames}",
            "transcript": s,
            "translation": t,
            "src_lang": src_lang,
            "tgt_lang": tgt_lang,
            "duration": float(seg["duration"]),
        }


def _tsv_records(
    tsv: Path,
    transcript_tsv: Path | None,
    audio_root: Path,
    src_lang: str,
    tgt_lang: str,
):
    rows, columns = read_table(tsv, "tsv")
    check_columns(columns, ["id", "audio", "tgt_text"], dataset_name=f"fairseq manifest {tsv}")
    transcripts: dict[str, str] | None = None
    if "src_text" not in columns:
        if transcript_tsv is None:
            raise MissingColumnError(
                f"fairseq manifest {tsv} has no 'src_text' column (the transcript DTW-Align aligns to). Existing "
                f"columns: {sorted(columns)}. Pass transcript_tsv=<the matching *_asr.tsv> (its tgt_text is the "
                "transcript) or add a src_text column."
            )
        asr_rows, asr_columns = read_table(transcript_tsv, "tsv")
        check_columns(asr_columns, ["id", "tgt_text"], dataset_name=f"fairseq ASR manifest {transcript_tsv}")
        transcripts = {r["id"]: r["tgt_text"] for r in asr_rows}
    for row in rows:
        audio = row["audio"]
        path = audio.rsplit(":", 2)[0] if audio.count(":") >= 2 else audio
        if not os.path.isabs(path):
            audio = os.path.join(audio_root, audio)
        yield {
            "id": row["id"],
            "audio": audio,
            "transcript": row["src_text"] if transcripts is None else transcripts.get(row["id"], ""),
            "translation": row["tgt_text"],
            "src_lang": row.get("src_lang") or src_lang,
            "tgt_lang": row.get("tgt_lang") or tgt_lang,
        }


def load_must_c(
    root: str | os.PathLike | None = None,
    split: str = "train",
    src_lang: str = "en",
    tgt_lang: str = "de",
    *,
    tsv: str | os.PathLike | None = None,
    transcript_tsv: str | os.PathLike | None = None,
    audio_root: str | os.PathLike | None = None,
    options: AudioOptions | None = None,
    decode: bool = True,
    validate: str = "header",
    counter: BadRecordCounter | None = None,
    text_only: bool = False,
):
    """Load one MuST-C split from a local copy as a map-style ``datasets.Dataset`` in the example schema.

    Args:
        root (`str`, *optional*): MuST-C directory (see the module docstring); not needed with ``tsv``.
        split (`str`): ``"train"``, ``"dev"``, ``"tst-COMMON"``, ``"tst-HE"``.
        src_lang, tgt_lang (`str`): ``"en"`` and one of de, es, fr, it, nl, pt, ro, ru (v1), ...
        tsv (`str`, *optional*): a fairseq S2T manifest (``train_st.tsv``) instead of the yaml layout.
        transcript_tsv (`str`, *optional*): the matching ASR manifest when ``tsv`` has no ``src_text``.
        audio_root (`str`, *optional*): base of relative audio paths in ``tsv`` (default: its directory).
        options ([`AudioOptions`], *optional*): rate, down-mixing and duration limits (default <= 30 s).
        decode, validate, counter: as in :func:`~dtw_align_hf.data.manifest.build_dataset`.
        text_only (`bool`, defaults to `False`): stage 1: transcripts and translations only; no audio is opened.

    Returns:
        `datasets.Dataset` (audio decoded on access, ``length`` column for bucketing).
    """
    counter = counter if counter is not None else BadRecordCounter(f"MuST-C {src_lang}-{tgt_lang}/{split}")
    if tsv is not None:
        tsv = Path(tsv)
        root_dir = Path(audio_root) if audio_root is not None else tsv.parent
        records = _tsv_records(tsv, Path(transcript_tsv) if transcript_tsv else None, root_dir, src_lang, tgt_lang)
    else:
        if root is None:
            raise ValueError("load_must_c needs root=<MuST-C directory> or tsv=<fairseq manifest>")
        split_dir = find_must_c_split_dir(root, split, src_lang, tgt_lang)
        records = _yaml_records(split_dir, split, src_lang, tgt_lang, counter, text_only)
    return build_dataset(
        records, options=options, decode=decode, validate=validate, counter=counter, text_only=text_only
    )


__all__ = ["MUST_C_SPLITS", "find_must_c_split_dir", "load_must_c", "read_must_c_yaml"]
