"""Text-only parallel data for stage 1 (MT pretraining) and test-set references read without audio.

Stage 1 trains the translation model on transcript -> translation pairs. Besides the speech corpus's own text
(read without opening any audio: `load_splits(..., text_only=True)`), it can take more parallel text than there is
speech (`--text_train_files a.tsv b.jsonl`): TSV/CSV/JSONL files with a transcript and a translation column and no
audio, combined in the order given. The DTW-Align paper (Section 6) leaves external MT data as an open question;
this only makes it possible.

    id    transcript                 translation
    t1    Das Haus ist klein.        The house is small.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers.utils import logging

from .manifest import LINE_KEY, build_dataset, read_table, resolve_columns
from .validation import BadRecordCounter


logger = logging.get_logger(__name__)


def load_text_pairs(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    src_lang: str | None = None,
    tgt_lang: str | None = None,
    transcript_column: str | None = None,
    translation_column: str | None = None,
    id_column: str | None = None,
    format: str | None = None,
    counter: BadRecordCounter | None = None,
):
    """Read one or more text-only parallel files into one map-style ``datasets.Dataset``.

    Args:
        paths: TSV/CSV/JSONL files (format from the suffix, or ``format``), combined in order.
        src_lang, tgt_lang (`str`, *optional*): language codes when a file has no ``src_lang``/``tgt_lang``
            column (default ``"unk"``).
        transcript_column, translation_column, id_column (`str`, *optional*): column names, used for every file
            that has that column; otherwise the aliases of `dtw_align_hf.data.manifest.COLUMN_ALIASES`
            (``transcript``/``src_text``/``source``/``src``..., ``translation``/``tgt_text``/``target``/``tgt``...).
        format (`str`, *optional*): ``"tsv"``, ``"csv"`` or ``"jsonl"`` for every file.
        counter ([`BadRecordCounter`], *optional*): receives bad lines, empty texts and duplicate ids.

    Returns:
        `datasets.Dataset` with columns ``id, transcript, translation, src_lang, tgt_lang``. Ids are the file's
        (or ``<file stem>-<row>``), prefixed with ``<file stem>/`` when several files are combined, so they stay
        unique.
    """
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not paths:
        raise ValueError("load_text_pairs needs at least one file (--text_train_files a.tsv [b.jsonl ...]).")
    counter = counter if counter is not None else BadRecordCounter("text pairs")
    explicit_names = {"transcript": transcript_column, "translation": translation_column, "id": id_column}

    def records():
        for path in map(Path, paths):
            rows, columns = read_table(path, format, counter=counter)
            explicit = {field: name for field, name in explicit_names.items() if name in columns}
            cmap = resolve_columns(
                columns, explicit, ("transcript", "translation"), dataset_name=f"Text file {path} (--text_train_files)"
            )
            prefix = f"{path.stem}/" if len(paths) > 1 else ""
            for i, row in enumerate(rows):
                rid = row.get(cmap["id"]) if cmap["id"] else None
                yield {
                    "id": prefix + (str(rid) if rid not in (None, "") else f"{path.stem}-{i:06d}"),
                    "transcript": row.get(cmap["transcript"]),
                    "translation": row.get(cmap["translation"]),
                    "src_lang": row.get(cmap["src_lang"]) if cmap["src_lang"] else (src_lang or "unk"),
                    "tgt_lang": row.get(cmap["tgt_lang"]) if cmap["tgt_lang"] else (tgt_lang or "unk"),
                    LINE_KEY: row.get(LINE_KEY),
                }

    return build_dataset(records(), text_only=True, decode=False, counter=counter)


def reference_translations(
    dataset: Any, counter: BadRecordCounter | None = None, *, return_ids: bool = False
) -> list[str] | list[tuple[str, str]]:
    """The reference translations of a test split, read from its text columns only (no audio is decoded).

    Records the counter lists as skipped (bad audio found while decoding, rejected by the processor) are left out,
    so after the prediction pass the references line up, in order, with the hypotheses of the records that were
    translated.

    Args:
        dataset: the map-style test split of `load_splits` (`datasets.Dataset`, with or without the audio
            transform), or a text-only split (`load_splits(..., text_only=True)["test"]`, which may be a stream:
            the audio column is then never read). An audio stream is refused: iterating it would decode the audio.
        counter ([`BadRecordCounter`], *optional*): the split's counter, after prediction (merged across processes
            with `gather_bad_record_counters` first under DDP).
        return_ids (`bool`): return ``(id, translation)`` pairs.
    """
    import datasets

    skipped = set(counter.skipped_records()) if counter is not None else set()
    if isinstance(dataset, datasets.IterableDataset):

        def stream_rows():
            for ex in dataset:
                if "audio" in ex:  # (a stream's columns are unknown after a map: the first example tells)
                    raise ValueError(
                        "reference_translations got a streamed split with audio; load the split text-only "
                        "(load_splits(data_args, text_only=True)) so that the references are read without decoding "
                        "audio."
                    )
                yield {"id": ex.get("id"), "translation": ex["translation"]}

        rows: Any = stream_rows()
    else:
        plain = dataset.with_format(None)  # drops the decoding transform
        columns = [c for c in ("id", "translation") if c in plain.column_names]
        table = plain.select_columns(columns).to_dict()
        ids = table.get("id") or [None] * len(table["translation"])
        rows = ({"id": rid, "translation": t} for rid, t in zip(ids, table["translation"], strict=True))
    out = [
        (str(r["id"]), str(r["translation"]).strip()) for r in rows if r["id"] is None or str(r["id"]) not in skipped
    ]
    return out if return_ids else [t for _, t in out]


def combine_text_datasets(parts: Sequence[Any], columns: Sequence[str] = ("id", "transcript", "translation")):
    """Concatenate text datasets (map-style or streamed) on their common text columns, in order."""
    import datasets

    parts = [p for p in parts if p is not None]
    if len(parts) == 1:
        return parts[0]
    parts = [p.select_columns([c for c in columns if c in (p.column_names or columns)]) for p in parts]
    if any(isinstance(p, datasets.IterableDataset) for p in parts):
        parts = [p if isinstance(p, datasets.IterableDataset) else p.to_iterable_dataset() for p in parts]
    return datasets.concatenate_datasets(list(parts))


__all__ = ["combine_text_datasets", "load_text_pairs", "reference_translations"]
