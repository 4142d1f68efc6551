"""Local manifests (TSV, CSV, JSONL) of (audio path, transcript, translation) as a map-style ``datasets.Dataset``.

Every loader in this package yields the example schema of docs/CONTRACTS.md::

    {"id": str, "audio": np.ndarray (float32, mono, 16 kHz), "sampling_rate": 16000,
     "transcript": str, "translation": str, "src_lang": str, "tgt_lang": str, "duration": float (seconds)}

plus ``"length"`` (number of samples at 16 kHz), precomputed so that the Trainer's length grouping
(``train_sampling_strategy="group_by_length"``, ``length_column_name="length"``) never decodes audio.

Map-style datasets keep the audio as a path in Arrow and decode it on access with a ``datasets`` format transform
(:func:`decode_transform`): nothing is decoded at load time, and DataLoader workers decode in parallel. Records
are validated at load time from the audio *header* (readable, rate, channels, duration) and the text; bad ones
are skipped and counted (:class:`~dtw_align_hf.data.validation.BadRecordCounter`). Note for the Trainer: the
collator consumes the raw columns, so set ``remove_unused_columns=False``.

Manifest format (header row required for TSV/CSV; JSONL: one object per line)::

    id    audio                 transcript              translation           [src_lang tgt_lang duration]
    u1    clips/u1.flac         Das ist gut.            That is good.

Column names are detected from common aliases (``audio``/``path``/``audio_filepath``, ``transcript``/
``src_text``/``sentence``, ``translation``/``tgt_text``, ...) or given explicitly. Relative audio paths are
resolved against ``audio_root`` (default: the manifest's directory). ``audio`` may be a fairseq-style segment
``talk.wav:offset:n_frames``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from transformers.utils import logging

from .audio import AudioDecodeError, AudioOptions, audio_info, decode_audio
from .validation import BadRecordCounter, MissingColumnError, check_columns, check_text_fields


logger = logging.get_logger(__name__)

#: The example schema's fields, in order (see docs/CONTRACTS.md).
EXAMPLE_FIELDS: tuple[str, ...] = (
    "id",
    "audio",
    "sampling_rate",
    "transcript",
    "translation",
    "src_lang",
    "tgt_lang",
    "duration",
)

#: Aliases tried (in order) when a column name is not given.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "utt_id", "utterance_id", "key", "uid"),
    "audio": ("audio", "audio_path", "audio_filepath", "path", "wav", "file", "filename"),
    "transcript": ("transcript", "src_text", "sentence", "transcription", "source", "src", "text"),
    "translation": ("translation", "tgt_text", "target", "tgt", "translation_text"),
    "src_lang": ("src_lang", "source_lang", "src_language"),
    "tgt_lang": ("tgt_lang", "target_lang", "tgt_language"),
    "duration": ("duration", "seconds"),
}


#: Row key holding the row's ``file:line`` (for messages); not a column.
LINE_KEY = "__line__"

#: Command-line flag and recipe key that name each schema field's column (the run scripts' `DataArguments`).
COLUMN_FLAGS: dict[str, str] = {
    "id": "id_column",
    "audio": "audio_column",
    "transcript": "transcript_column",
    "translation": "translation_column",
}


def _decoded_lines(path: Path, counter: BadRecordCounter | None) -> list[tuple[int, str]]:
    """``(line number, text)`` of every line that is valid UTF-8 (a leading BOM is dropped); bad lines are
    skipped, counted as ``bad_line`` and reported as ``file:line``."""
    out = []
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):  # Excel's UTF-8 export starts with a BOM
        raw = raw[3:]
    for number, line in enumerate(raw.split(b"\n"), start=1):
        try:
            out.append((number, line.decode("utf-8")))
        except UnicodeDecodeError as err:
            _bad_line(
                counter, path, number, f"not UTF-8 ({err.reason} at byte {err.start}); re-save the file as UTF-8"
            )
    return out


def _bad_line(counter: BadRecordCounter | None, path: Path, number: int, detail: str) -> None:
    where = f"{path}:{number}"
    if counter is None:
        logger.warning(f"skipping line {where}: {detail}")
    else:
        counter.skip(where, "bad_line", detail)


def read_table(
    path: str | os.PathLike, format: str | None = None, *, counter: BadRecordCounter | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Read a TSV/CSV (header row) or JSONL/JSON manifest into ``(rows, column_names)``.

    A UTF-8 byte-order mark (Excel exports) is ignored. A line that is not valid UTF-8, or a JSONL line that is not
    a JSON object, is skipped and counted (kind ``bad_line``, named ``file:line`` in the warning); the rest of the
    file is kept. Each row carries its ``file:line`` under :data:`LINE_KEY`.

    Args:
        path: the manifest file (``.gz`` is not supported; decompress first).
        format (`str`, *optional*): ``"tsv"``, ``"csv"`` or ``"jsonl"``; default from the suffix
            (``.tsv``/``.txt`` -> tsv, ``.csv`` -> csv, ``.jsonl``/``.json`` -> jsonl).
        counter ([`BadRecordCounter`], *optional*): receives the bad lines.
    """
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt not in ("tsv", "txt", "csv", "jsonl", "json"):
        raise ValueError(f"Unknown manifest format {fmt!r} for {path}; use .tsv, .csv or .jsonl (or pass format=...)")
    if not path.is_file():
        raise FileNotFoundError(f"Manifest {str(path)!r} does not exist.")
    lines = _decoded_lines(path, counter)
    rows: list[dict[str, Any]] = []
    if fmt in ("tsv", "txt", "csv"):
        numbers = [n for n, _ in lines]
        text = io.StringIO("\n".join(t for _, t in lines), newline="")
        if fmt == "csv":
            reader = csv.DictReader(text)
        else:  # fairseq writes TSVs with quoting=csv.QUOTE_NONE
            reader = csv.DictReader(text, delimiter="\t", quoting=csv.QUOTE_NONE)
        for r in reader:
            row = {k.strip() if isinstance(k, str) else k: v for k, v in r.items()}
            row[LINE_KEY] = f"{path}:{numbers[min(reader.line_num, len(numbers)) - 1]}"
            rows.append(row)
        columns = [c.strip() for c in (reader.fieldnames or [])]
        return rows, columns
    body = "\n".join(t for _, t in lines)
    if fmt == "json" and body.lstrip().startswith("["):
        try:
            rows = [dict(r) for r in json.loads(body)]
        except (json.JSONDecodeError, TypeError, ValueError) as err:
            raise ValueError(f"{path} is not a JSON list of objects: {err}") from err
        for i, r in enumerate(rows):
            r[LINE_KEY] = f"{path}[{i}]"
    else:
        for number, line in lines:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                _bad_line(counter, path, number, f"not valid JSON ({err.msg} at column {err.colno})")
                continue
            if not isinstance(row, dict):
                _bad_line(counter, path, number, f"a JSON {type(row).__name__}, not an object")
                continue
            row[LINE_KEY] = f"{path}:{number}"
            rows.append(row)
    columns: list[str] = []
    for r in rows:
        columns.extend(k for k in r if k not in columns and k != LINE_KEY)
    return rows, columns


def resolve_columns(
    columns: Iterable[str],
    explicit: Mapping[str, str | None],
    required: Iterable[str] = ("audio", "transcript", "translation"),
    *,
    dataset_name: str = "manifest",
) -> dict[str, str | None]:
    """Map schema fields to manifest columns: explicit names first, then :data:`COLUMN_ALIASES`.

    Raises:
        MissingColumnError: a required field has no column (lists the existing columns).
    """
    have = list(columns)
    out: dict[str, str | None] = {}
    for field, aliases in COLUMN_ALIASES.items():
        name = explicit.get(field)
        if name is None:
            name = next((a for a in aliases if a in have), None)
        out[field] = name
    for field, name in explicit.items():
        if name is not None and name not in have:
            raise MissingColumnError(
                f"{dataset_name} has no column {name!r} (given as --{COLUMN_FLAGS.get(field, field + '_column')} / "
                f"recipe key `{COLUMN_FLAGS.get(field, field + '_column')}`). Existing columns: {sorted(have)}."
            )
    for field in required:
        if out.get(field) is None:
            raise MissingColumnError(
                f"{dataset_name} has no column for {field!r} (tried {list(COLUMN_ALIASES[field])}). "
                f"Existing columns: {sorted(have)}. Name it with --{COLUMN_FLAGS[field]} <column> on the command "
                f"line or `{COLUMN_FLAGS[field]}: <column>` in the recipe (load_manifest({COLUMN_FLAGS[field]}=...) "
                "from Python)."
            )
    check_columns(have, {f: c for f, c in out.items() if c is not None and f in required}, dataset_name=dataset_name)
    return out


def decode_transform(
    options: AudioOptions | None = None, *, audio_root: str | os.PathLike | None = None
) -> Callable[[dict[str, list]], dict[str, list]]:
    """A ``Dataset.with_transform`` function turning the ``audio`` path column into float32 arrays.

    Batches without an ``audio`` column (e.g. ``ds["length"]``) pass through unchanged. A record whose audio
    passed the header check but fails to decode raises :class:`~dtw_align_hf.data.audio.AudioDecodeError`
    naming the record (use ``validate="full"`` at load time to find those before training).
    """
    options = options or AudioOptions()

    def transform(batch: dict[str, list]) -> dict[str, list]:
        if "audio" not in batch:
            return batch
        out = dict(batch)
        arrays = []
        ids = batch.get("id") or [None] * len(batch["audio"])
        for rid, src in zip(ids, batch["audio"], strict=True):
            try:
                arrays.append(decode_audio(src, options, audio_root=audio_root))
            except AudioDecodeError as err:
                raise AudioDecodeError(err.kind, f"record {rid!r}: {err}") from err
        out["audio"] = arrays
        out["sampling_rate"] = [options.sampling_rate] * len(arrays)
        return out

    return transform


def build_dataset(
    records: Iterable[Mapping[str, Any]],
    *,
    options: AudioOptions | None = None,
    decode: bool = True,
    validate: str = "header",
    counter: BadRecordCounter | None = None,
    audio_root: str | os.PathLike | None = None,
    text_only: bool = False,
):
    """Validate normalised records and wrap them in a lazily decoding ``datasets.Dataset``.

    Args:
        records: dicts with ``id``, ``audio`` (path or ``path:offset:n_frames``), ``transcript``,
            ``translation``, ``src_lang``, ``tgt_lang`` and optionally ``duration`` (seconds).
        options ([`AudioOptions`], *optional*): rate, down-mixing and duration limits.
        decode (`bool`): attach :func:`decode_transform` (else ``audio`` stays a path string).
        validate (`str`): ``"header"`` (read each audio header: fast), ``"full"`` (decode everything once:
            catches corrupt payloads) or ``"none"`` (trust the manifest's ``duration``; text is still checked).
        counter ([`BadRecordCounter`], *optional*): receives the skip counts (one is created otherwise); pass
            your own to read the numbers afterwards.
        audio_root (`str`, *optional*): base for relative audio paths.
        text_only (`bool`, defaults to `False`): stage 1: check the text only, never open the audio (records need
            no ``audio``); the result has the columns ``id, transcript, translation, src_lang, tgt_lang``.

    A record whose id was already used is skipped (kind ``duplicate_id``, the warning names both places): ids key
    the reference timings, hypotheses and skip counts, so two records with one id cannot both be used.

    Returns:
        `datasets.Dataset` with columns ``id, audio, transcript, translation, src_lang, tgt_lang, duration,
        length`` (``sampling_rate`` is added by the transform).
    """
    import datasets

    if validate not in ("header", "full", "none"):
        raise ValueError(f"validate must be 'header', 'full' or 'none', got {validate!r}")
    options = options or AudioOptions()
    counter = counter if counter is not None else BadRecordCounter()
    text_keys = ("id", "transcript", "translation", "src_lang", "tgt_lang")
    cols: dict[str, list] = {k: [] for k in text_keys}
    if not text_only:
        cols["audio"], cols["duration"], cols["length"] = [], [], []
    first_seen: dict[str, str] = {}  # id -> where it first appeared
    for rec in records:
        rid = rec.get("id")
        where = rec.get(LINE_KEY) or f"record {len(first_seen) + 1}"
        if rid is not None and str(rid) in first_seen:
            # ids key the reference timings, the hypotheses and the skip counts: a second record with the same id
            # would silently take the first one's place there, so it is skipped (and named) instead
            counter.skip(
                f"{rid} ({where})",
                "duplicate_id",
                f"id {rid!r} already used at {first_seen[str(rid)]}; ids must be unique",
            )
            continue
        bad = check_text_fields(rec, {"transcript": "transcript", "translation": "translation"})
        if bad is None and not text_only and not rec.get("audio"):
            bad = ("missing_column", "no audio path")
        if bad is not None:
            counter.skip(rid, *bad)
            continue
        seconds = 0.0
        try:
            if text_only:
                pass  # stage 1: the audio is never opened
            elif validate == "full":
                wav = decode_audio(rec["audio"], options, audio_root=audio_root)
                seconds = len(wav) / options.sampling_rate
            elif validate == "header":
                seconds, rate, channels = audio_info(rec["audio"], audio_root=audio_root)
                options.check_rate(rate)
                if channels > 1 and options.mono == "error":
                    raise AudioDecodeError("bad_channels", f"{channels} channels and AudioOptions.mono='error'")
                options.check_duration(seconds)
            else:
                seconds = float(rec.get("duration") or 0.0)
                if seconds:
                    options.check_duration(seconds)
        except AudioDecodeError as err:
            counter.skip(rid, err.kind, str(err))
            continue
        except (TypeError, ValueError) as err:  # a non-numeric duration column
            counter.skip(rid, "missing_column", f"bad duration {rec.get('duration')!r}: {err}")
            continue
        counter.ok(rid)
        if rid is not None:
            first_seen[str(rid)] = where
        for k in text_keys:
            cols[k].append(
                str(rec.get(k) or "").strip() if k in ("transcript", "translation") else str(rec.get(k) or "")
            )
        if not text_only:
            cols["audio"].append(os.fspath(rec["audio"]))
            cols["duration"].append(round(float(seconds), 4))
            cols["length"].append(round(seconds * options.sampling_rate))
    counter.log_summary()
    features = {k: datasets.Value("string") for k in text_keys}
    if not text_only:
        features.update(
            {
                "audio": datasets.Value("string"),
                "duration": datasets.Value("float64"),
                "length": datasets.Value("int64"),
            }
        )
        order = ("id", "audio", "transcript", "translation", "src_lang", "tgt_lang", "duration", "length")
        features = {k: features[k] for k in order}
        cols = {k: cols[k] for k in order}
    ds = datasets.Dataset.from_dict(cols, features=datasets.Features(features))
    if decode and not text_only:
        ds = ds.with_transform(decode_transform(options, audio_root=audio_root))
    return ds


def load_manifest(
    path: str | os.PathLike,
    *,
    format: str | None = None,
    audio_column: str | None = None,
    transcript_column: str | None = None,
    translation_column: str | None = None,
    id_column: str | None = None,
    src_lang: str | None = None,
    tgt_lang: str | None = None,
    audio_root: str | os.PathLike | None = None,
    options: AudioOptions | None = None,
    decode: bool = True,
    validate: str = "header",
    counter: BadRecordCounter | None = None,
    text_only: bool = False,
):
    """Load a local TSV/CSV/JSONL manifest into a map-style ``datasets.Dataset`` in the example schema.

    Args:
        path: manifest file.
        format (`str`, *optional*): ``"tsv"``, ``"csv"`` or ``"jsonl"`` (default: from the suffix).
        audio_column, transcript_column, translation_column, id_column (`str`, *optional*): column names; by
            default the first present alias from :data:`COLUMN_ALIASES`.
        src_lang, tgt_lang (`str`, *optional*): language codes when the manifest has no ``src_lang``/
            ``tgt_lang`` columns (default ``"unk"``).
        audio_root (`str`, *optional*): base for relative audio paths (default: the manifest's directory).
        options ([`AudioOptions`], *optional*): rate, down-mixing and duration limits.
        decode (`bool`, defaults to `True`): decode audio on access (else keep path strings).
        validate (`str`, defaults to `"header"`): see :func:`build_dataset`.
        counter ([`BadRecordCounter`], *optional*): pass one to read the skip counts afterwards.
        text_only (`bool`, defaults to `False`): stage 1: only the text columns; the manifest needs no audio
            column and no audio file is opened (see :func:`build_dataset`).

    The file is read as UTF-8 (a byte-order mark is ignored); an undecodable or broken line is skipped, counted
    (``bad_line``) and named as ``file:line``; a repeated id is skipped (``duplicate_id``).

    Returns:
        `datasets.Dataset`; ``ds[i]`` is an example dict (``audio`` decoded to float32 at 16 kHz).

    Raises:
        MissingColumnError: a needed column is absent from the manifest (lists the existing columns).
    """
    path = Path(path)
    counter = counter if counter is not None else BadRecordCounter(f"manifest {path.name}")
    rows, columns = read_table(path, format, counter=counter)
    if not rows:
        raise ValueError(f"Manifest {path} has no records (after {counter.skipped} unreadable lines)")
    explicit = {
        "audio": audio_column,
        "transcript": transcript_column,
        "translation": translation_column,
        "id": id_column,
    }
    required = ("transcript", "translation") if text_only else ("audio", "transcript", "translation")
    cmap = resolve_columns(columns, explicit, required, dataset_name=f"Manifest {path}")
    root = Path(audio_root) if audio_root is not None else path.parent

    def records():
        for i, row in enumerate(rows):
            rec: dict[str, Any] = {
                "id": row.get(cmap["id"]) if cmap["id"] else f"{path.stem}-{i:06d}",
                "audio": row.get(cmap["audio"]),
                "src_lang": row.get(cmap["src_lang"]) if cmap["src_lang"] else (src_lang or "unk"),
                "tgt_lang": row.get(cmap["tgt_lang"]) if cmap["tgt_lang"] else (tgt_lang or "unk"),
                "duration": row.get(cmap["duration"]) if cmap["duration"] else None,
                LINE_KEY: row.get(LINE_KEY),
            }
            if rec["id"] in (None, ""):
                rec["id"] = f"{path.stem}-{i:06d}"
            for field in ("transcript", "translation"):
                if cmap[field] in row:
                    rec[field] = row[cmap[field]]
            if rec["audio"] and not os.path.isabs(str(rec["audio"]).rsplit(":", 2)[0]):
                rec["audio"] = os.path.join(root, str(rec["audio"]))
            yield rec

    return build_dataset(
        records(), options=options, decode=decode, validate=validate, counter=counter, text_only=text_only
    )


def example_from_record(
    record: Mapping[str, Any], audio: np.ndarray, sampling_rate: int, *, src_lang: str, tgt_lang: str
) -> dict[str, Any]:
    """Assemble one example in the schema from a normalised record and its decoded audio."""
    return {
        "id": str(record["id"]),
        "audio": audio,
        "sampling_rate": int(sampling_rate),
        "transcript": str(record["transcript"]).strip(),
        "translation": str(record["translation"]).strip(),
        "src_lang": src_lang,
        "tgt_lang": tgt_lang,
        "duration": round(len(audio) / sampling_rate, 4),
        "length": len(audio),
    }


__all__ = [
    "COLUMN_ALIASES",
    "COLUMN_FLAGS",
    "EXAMPLE_FIELDS",
    "LINE_KEY",
    "build_dataset",
    "decode_transform",
    "example_from_record",
    "load_manifest",
    "read_table",
    "resolve_columns",
]
