"""Reference word timings: the JSONL format the alignment-accuracy metric reads, and converters into it.

Format (docs/CONTRACTS.md), one utterance a line, times in seconds from the start of the audio::

    {"id": "demo-train-00001", "words": [{"word": "Das", "start": 0.05, "end": 0.21}, ...]}

``words`` are the whitespace tokens of the utterance's transcript, in order (punctuation stays attached to its
word: ``"Hause?"``), so ``words[i]`` is the transcript's ``i``-th word. The demo corpus writes this file
beside each split's manifest (``<split>.timings.jsonl``).

Converting forced-aligner output:

- **NeMo Forced Aligner (NFA)** writes one CTM per utterance in ``<output_dir>/ctm/words/<utt_id>.ctm``, lines
  ``<utt_id> <channel> <start> <duration> <word> [...]``: :func:`ctm_to_timings` reads one or many CTM files
  (or lines). NFA's utterance id is the audio file's stem; pass ``id_map`` to map it to manifest ids.
- **Montreal Forced Aligner (MFA)** writes one Praat TextGrid per utterance (``<speaker>/<utt>.TextGrid``) with
  tiers ``words`` and ``phones``; empty intervals are silence: :func:`textgrid_to_timings` reads the ``words``
  tier (long or short TextGrid format).

Command line (with ``--manifest``, utterances are matched by id or audio file stem and the words are put onto
the transcript's own words)::

    python -m dtw_align_hf.data.timings --ctm nfa_out/ctm/words --manifest test.jsonl --out test.timings.jsonl
    python -m dtw_align_hf.data.timings --textgrid mfa_out/ --manifest test.jsonl --out test.timings.jsonl

Aligners normalise text (lower case, punctuation removed, numbers spelled out) and may drop words; run
:func:`match_timings_to_transcript` to put the timings back onto the transcript's own words (unmatched words get
the gap between their neighbours and ``"interpolated": true``).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from transformers.utils import logging


logger = logging.get_logger(__name__)

#: Aligner tokens that are not words (blanks, silences, unknown markers).
NON_WORDS: frozenset[str] = frozenset({"", "<b>", "<blank>", "<eps>", "<sil>", "sil", "sp", "spn", "<s>", "</s>"})


def write_timings(records: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write ``[{"id", "words": [{"word", "start", "end"}, ...]}, ...]`` as JSONL (UTF-8, one record a line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(
            json.dumps({"id": rec["id"], "words": list(rec["words"])}, ensure_ascii=False) + "\n" for rec in records
        )
    return path


def read_timings(path: str | os.PathLike) -> dict[str, list[dict[str, Any]]]:
    """Read a timings JSONL into ``{id: [{"word", "start", "end"}, ...]}`` (file order preserved)."""
    out: dict[str, list[dict[str, Any]]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                out[str(rec["id"])] = rec["words"]
    return out


def _map_id(utt: str, id_map: Mapping[str, str] | Callable[[str], str] | None) -> str:
    if id_map is None:
        return utt
    if callable(id_map):
        return id_map(utt)
    return id_map.get(utt, utt)


def ctm_to_timings(
    source: str | os.PathLike | Iterable[str],
    *,
    id_map: Mapping[str, str] | Callable[[str], str] | None = None,
    skip: Iterable[str] = NON_WORDS,
) -> list[dict[str, Any]]:
    """Convert CTM word alignments (NeMo Forced Aligner, Kaldi, ...) to timing records.

    Args:
        source: a CTM file, a directory of ``*.ctm`` files (e.g. NFA's ``ctm/words``), or an iterable of CTM
            lines ``<utt_id> <channel> <start> <duration> <word> [<confidence> ...]``.
        id_map: maps CTM utterance ids (NFA: the audio file stem) to manifest ids (dict or function).
        skip: tokens to drop (blanks and silences).

    Returns:
        `list[dict]`: ``[{"id", "words": [{"word", "start", "end"}, ...]}]`` in first-seen utterance order, words
        sorted by start time, times rounded to 0.1 ms.
    """
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        files = sorted(p.glob("*.ctm")) if p.is_dir() else [p]
        lines: list[str] = []
        for fp in files:
            lines.extend(fp.read_text(encoding="utf-8").splitlines())
    else:
        lines = list(source)
    skip = {s.lower() for s in skip}
    utts: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        parts = line.split()
        if not parts or parts[0].startswith(";;") or parts[0].startswith("#"):
            continue
        if len(parts) < 5:
            raise ValueError(f"CTM line needs >= 5 fields (utt channel start duration word): {line!r}")
        utt, start, dur, word = parts[0], float(parts[2]), float(parts[3]), parts[4]
        rid = _map_id(utt, id_map)
        words = utts.setdefault(rid, [])
        if word.lower() in skip:
            continue
        words.append({"word": word, "start": round(start, 4), "end": round(start + dur, 4)})
    return [{"id": rid, "words": sorted(ws, key=lambda w: (w["start"], w["end"]))} for rid, ws in utts.items()]


_TG_TOKEN = re.compile(r'"((?:[^"]|"")*)"|\[\s*\d*\s*\]|(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|\S+')


def _textgrid_tokens(text: str) -> list[str | float]:
    """Strings and numbers of a Praat TextGrid in order (keys, ``=``, ``[i]`` and flags dropped)."""
    out: list[str | float] = []
    for m in _TG_TOKEN.finditer(text):
        if m.group(1) is not None:
            out.append(m.group(1).replace('""', '"'))
        elif m.group(2) is not None:
            out.append(float(m.group(2)))
    return out


def read_textgrid(path: str | os.PathLike) -> dict[str, list[tuple[float, float, str]]]:
    """Parse a Praat TextGrid (long or short text format) into ``{tier_name: [(xmin, xmax, text), ...]}``.

    Point tiers (``TextTier``) come back as ``(time, time, mark)``.
    """
    raw = Path(path).read_bytes()
    for enc in ("utf-8-sig", "utf-16"):
        try:
            text = raw.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ValueError(f"{path}: cannot decode TextGrid (expected UTF-8 or UTF-16)")
    toks = _textgrid_tokens(text)
    if len(toks) < 2 or toks[0] != "ooTextFile" or toks[1] != "TextGrid":
        raise ValueError(f"{path} is not a Praat TextGrid (no 'ooTextFile'/'TextGrid' header)")
    i = 4  # skip header, xmin, xmax
    n_tiers = int(toks[i])
    i += 1
    tiers: dict[str, list[tuple[float, float, str]]] = {}
    for _ in range(n_tiers):
        kind, name = toks[i], str(toks[i + 1])
        n = int(toks[i + 4])
        i += 5
        items: list[tuple[float, float, str]] = []
        for _ in range(n):
            if kind == "IntervalTier":
                items.append((float(toks[i]), float(toks[i + 1]), str(toks[i + 2])))
                i += 3
            else:
                items.append((float(toks[i]), float(toks[i]), str(toks[i + 1])))
                i += 2
        tiers[name] = items
    return tiers


def textgrid_to_timings(
    path: str | os.PathLike,
    utt_id: str | None = None,
    *,
    tier: str = "words",
    skip: Iterable[str] = NON_WORDS,
) -> dict[str, Any]:
    """Convert one MFA TextGrid to a timing record.

    Args:
        path: the TextGrid file.
        utt_id (`str`, *optional*): the record id (default: the file stem, which MFA takes from the audio file).
        tier (`str`, defaults to `"words"`): tier name (MFA: ``"words"``; multi-speaker runs: ``"<speaker> -
            words"``, matched by suffix).
        skip: interval texts to drop (MFA leaves silences empty and writes ``spn`` for unknown speech).
    """
    tiers = read_textgrid(path)
    name = tier if tier in tiers else next((t for t in tiers if t.endswith(tier)), None)
    if name is None:
        raise KeyError(f"{path} has no tier {tier!r}; tiers: {list(tiers)}")
    skip = {s.lower() for s in skip}
    words = [
        {"word": text.strip(), "start": round(a, 4), "end": round(b, 4)}
        for a, b, text in tiers[name]
        if text.strip().lower() not in skip
    ]
    return {"id": utt_id if utt_id is not None else Path(path).stem, "words": words}


def _norm(word: str) -> str:
    return re.sub(r"[^\w]", "", word.lower())


def match_timings_to_transcript(words: list[Mapping[str, Any]], transcript: str) -> list[dict[str, Any]]:
    """Put aligner word timings onto the transcript's own whitespace tokens.

    Matches normalised forms (lower case, punctuation removed) with ``difflib``; each transcript word takes the
    timing of its matched aligner word; unmatched words get the gap between their neighbours' timings and
    ``"interpolated": True``. The result has exactly one entry per transcript word.
    """
    tokens = transcript.split()
    a = [_norm(t) for t in tokens]
    b = [_norm(str(w["word"])) for w in words]
    mapping: dict[int, int] = {}
    for block in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            mapping[block.a + k] = block.b + k
    out: list[dict[str, Any]] = []
    for i, tok in enumerate(tokens):
        if i in mapping:
            w = words[mapping[i]]
            out.append({"word": tok, "start": float(w["start"]), "end": float(w["end"])})
        else:
            out.append({"word": tok, "start": None, "end": None, "interpolated": True})
    end_all = max((float(w["end"]) for w in words), default=0.0)
    for i, rec in enumerate(out):
        if rec["start"] is None:
            prev = next((out[j]["end"] for j in range(i - 1, -1, -1) if out[j]["end"] is not None), 0.0)
            nxt = next((out[j]["start"] for j in range(i + 1, len(out)) if out[j]["start"] is not None), end_all)
            rec["start"], rec["end"] = prev, max(prev, nxt)
    return out


def align_records_to_manifest(
    records: Iterable[Mapping[str, Any]], manifest: str | os.PathLike
) -> list[dict[str, Any]]:
    """Map aligner records onto a manifest's ids and transcripts.

    Aligners name utterances after the audio file (NFA, MFA), so records are matched to manifest rows by id or
    by the audio file's stem; each record's words are then put onto the transcript's own words with
    :func:`match_timings_to_transcript`. Rows without a record are left out (and logged).
    """
    from .manifest import read_table, resolve_columns

    rows, columns = read_table(manifest)
    cmap = resolve_columns(columns, {}, required=("audio", "transcript"), dataset_name=f"Manifest {manifest}")
    by_key = {str(r["id"]): r for r in records}
    out = []
    for i, row in enumerate(rows):
        rid = str(row.get(cmap["id"])) if cmap["id"] else f"{Path(manifest).stem}-{i:06d}"
        stem = Path(str(row[cmap["audio"]]).rsplit(":", 2)[0]).stem
        rec = by_key.get(rid) or by_key.get(stem)
        if rec is None:
            logger.warning(f"no aligner output for {rid!r} (audio {stem!r})")
            continue
        out.append({"id": rid, "words": match_timings_to_transcript(rec["words"], str(row[cmap["transcript"]]))})
    return out


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m dtw_align_hf.data.timings --ctm NFA_OUT/ctm/words --manifest test.jsonl --out test.timings.jsonl``

    Converts NFA CTM files (``--ctm``) or MFA TextGrids (``--textgrid DIR``) into the timings JSONL; with
    ``--manifest`` the records take the manifest's ids and the transcript's own words.
    """
    import argparse

    parser = argparse.ArgumentParser(description="Convert forced-aligner output to DTW-Align word-timings JSONL.")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--ctm", help="a CTM file or a directory of *.ctm (NeMo Forced Aligner: <out>/ctm/words)")
    src.add_argument("--textgrid", help="a directory of *.TextGrid files (Montreal Forced Aligner output)")
    parser.add_argument("--tier", default="words", help="TextGrid tier (default: words)")
    parser.add_argument("--manifest", default=None, help="map to this manifest's ids and transcripts")
    parser.add_argument("--out", required=True, help="output JSONL")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.ctm:
        records = ctm_to_timings(args.ctm)
    else:
        records = [textgrid_to_timings(p, tier=args.tier) for p in sorted(Path(args.textgrid).rglob("*.TextGrid"))]
    if args.manifest:
        records = align_records_to_manifest(records, args.manifest)
    path = write_timings(records, args.out)
    print(f"Wrote {len(records)} utterances to {path}")  # noqa: T201
    return 0


__all__ = [
    "NON_WORDS",
    "align_records_to_manifest",
    "ctm_to_timings",
    "match_timings_to_transcript",
    "read_textgrid",
    "read_timings",
    "textgrid_to_timings",
    "write_timings",
]


if __name__ == "__main__":
    import sys

    sys.exit(main())
