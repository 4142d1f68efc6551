"""CoVoST 2 streamed from the Hub (the ``fixie-ai/covost2`` parquet mirror with audio), or from local parquet.

The official ``facebook/covost2`` is a loading script that needs a manual Common Voice 4 download, and
``datasets`` >= 4 refuses scripts. The community mirror ``fixie-ai/covost2`` stores the same data as parquet
with the audio embedded, one config per direction (``en_de``, ``en_ja``, ``en_zh-CN``, ``fr_en``, ``de_en``,
``es_en``, ...; splits ``train``, ``validation``, ``test``), so it streams with no manual step.

Column mapping (mirror -> example schema; override with ``column_mapping``):

=================  ==================  =================================================================
mirror column      schema field        note
=================  ==================  =================================================================
``id``             ``id``              Common Voice clip name (falls back to ``file``, then a counter)
``audio``          ``audio``           ``{"bytes", "path"}`` (Common Voice MP3, 48 kHz) -> float32 16 kHz
``sentence``       ``transcript``      source-language transcript
``translation``    ``translation``     target-language translation
(config name)      ``src_lang``/       ``"en_de"`` -> ``"en"``, ``"de"``; ``"en_zh-CN"`` -> ``"en"``,
                   ``tgt_lang``        ``"zh-CN"``
``client_id``,     (dropped)           speaker hash and file name
``file``
=================  ==================  =================================================================

Audio is decoded with soundfile (MP3 needs soundfile >= 0.12 / libsndfile >= 1.1) and resampled with
``resample_poly``; ``datasets``' own Audio decoding is never required (``Audio(decode=False)`` is cast first).
Bad records are skipped and counted; a column missing from the whole dataset raises
:class:`~dtw_align_hf.data.validation.MissingColumnError` at load time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from transformers.utils import logging

from .audio import AudioDecodeError, AudioOptions, decode_audio
from .manifest import example_from_record
from .validation import BadRecordCounter, check_columns, check_text_fields


logger = logging.get_logger(__name__)

COVOST2_MIRROR = "fixie-ai/covost2"
#: schema field -> mirror column
COVOST2_COLUMNS: dict[str, str] = {
    "id": "id",
    "audio": "audio",
    "transcript": "sentence",
    "translation": "translation",
}


_COLUMN_HINT = (
    "Name them with --audio_column / --transcript_column / --translation_column / --id_column (recipe keys of the "
    "same names), or column_mapping={field: column} from Python."
)


def parse_covost2_config(config: str) -> tuple[str, str]:
    """``"en_de"`` -> ``("en", "de")``; ``"zh-CN_en"`` -> ``("zh-CN", "en")``."""
    parts = config.split("_")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"CoVoST 2 config must look like '<src>_<tgt>' (e.g. 'en_de', 'fr_en'), got {config!r}")
    return parts[0], parts[1]


def _convert_batch(
    batch: Mapping[str, list],
    *,
    columns: Mapping[str, str],
    src_lang: str,
    tgt_lang: str,
    options: AudioOptions,
    counter: BadRecordCounter,
) -> dict[str, list]:
    """Batched ``map`` function: raw mirror rows -> examples; bad rows are dropped (and counted)."""
    n = len(next(iter(batch.values()))) if batch else 0
    out: dict[str, list] = {k: [] for k in ("id", "audio", "sampling_rate", "transcript", "translation")}
    out.update({k: [] for k in ("src_lang", "tgt_lang", "duration", "length")})
    for i in range(n):
        row = {k: v[i] for k, v in batch.items()}
        rid = row.get(columns["id"]) or row.get("file") or f"{src_lang}_{tgt_lang}-{counter.seen:08d}"
        bad = check_text_fields(row, {"transcript": columns["transcript"], "translation": columns["translation"]})
        if bad is None and row.get(columns["audio"]) is None:
            bad = ("missing_column", f"no {columns['audio']!r} value")
        if bad is not None:
            counter.skip(rid, *bad)
            continue
        try:
            audio = decode_audio(row[columns["audio"]], options)
        except AudioDecodeError as err:
            counter.skip(rid, err.kind, str(err))
            continue
        counter.ok(rid)
        record = {"id": rid, "transcript": row[columns["transcript"]], "translation": row[columns["translation"]]}
        ex = example_from_record(record, audio, options.sampling_rate, src_lang=src_lang, tgt_lang=tgt_lang)
        for k, v in ex.items():
            out[k].append(v)
    return out


def _convert_text_batch(
    batch: Mapping[str, list], *, columns: Mapping[str, str], src_lang: str, tgt_lang: str, counter: BadRecordCounter
) -> dict[str, list]:
    """Batched ``map`` function of the text-only path: raw rows (text columns only) -> text examples."""
    n = len(next(iter(batch.values()))) if batch else 0
    out: dict[str, list] = {k: [] for k in ("id", "transcript", "translation", "src_lang", "tgt_lang")}
    for i in range(n):
        row = {k: v[i] for k, v in batch.items()}
        rid = row.get(columns["id"]) or row.get("file") or f"{src_lang}_{tgt_lang}-{counter.seen:08d}"
        bad = check_text_fields(row, {"transcript": columns["transcript"], "translation": columns["translation"]})
        if bad is not None:
            counter.skip(rid, *bad)
            continue
        counter.ok(rid)
        out["id"].append(str(rid))
        out["transcript"].append(str(row[columns["transcript"]]).strip())
        out["translation"].append(str(row[columns["translation"]]).strip())
        out["src_lang"].append(src_lang)
        out["tgt_lang"].append(tgt_lang)
    return out


def load_covost2(
    config: str = "en_de",
    split: str = "train",
    *,
    dataset_name: str = COVOST2_MIRROR,
    data_files: str | Sequence[str] | Mapping[str, Any] | None = None,
    streaming: bool = True,
    column_mapping: Mapping[str, str] | None = None,
    options: AudioOptions | None = None,
    counter: BadRecordCounter | None = None,
    batch_size: int = 16,
    revision: str | None = None,
    text_only: bool = False,
    **load_kwargs: Any,
):
    """Load a CoVoST 2 direction in the example schema, streamed by default.

    Args:
        config (`str`, defaults to `"en_de"`): ``<src>_<tgt>`` (e.g. ``"fr_en"``, ``"en_zh-CN"``); gives
            ``src_lang``/``tgt_lang``.
        split (`str`): ``"train"``, ``"validation"`` or ``"test"``.
        dataset_name (`str`, defaults to `"fixie-ai/covost2"`): Hub dataset id; ignored when ``data_files``
            is given.
        data_files (`str` or list or dict, *optional*): local parquet file(s) with the mirror's schema (or a
            ``{split: files}`` dict); loaded with the ``parquet`` builder instead of the Hub.
        streaming (`bool`, defaults to `True`): return a ``datasets.IterableDataset`` (decoded lazily); `False`
            downloads the split and returns a ``datasets.Dataset`` (decoded at load time: large).
        column_mapping (`Mapping[str, str]`, *optional*): schema field -> column, overriding
            :data:`COVOST2_COLUMNS` (e.g. ``{"transcript": "transcription"}``).
        options ([`AudioOptions`], *optional*): rate, down-mixing and duration limits (default 16 kHz, <= 30 s).
        counter ([`BadRecordCounter`], *optional*): collects skip counts (in the iterating process).
        batch_size (`int`): rows per ``map`` batch.
        revision (`str`, *optional*): Hub revision to pin.
        text_only (`bool`, defaults to `False`): stage 1 and test references: read only the id and text columns
            of the parquet files (the audio column is neither downloaded nor decoded); examples have ``id``,
            ``transcript``, ``translation``, ``src_lang``, ``tgt_lang``.
        **load_kwargs: passed to ``datasets.load_dataset`` (``token``, ``cache_dir``, ...).

    Returns:
        `datasets.IterableDataset` (or `datasets.Dataset` with ``streaming=False``) of examples in the schema.

    Raises:
        MissingColumnError: a mapped column is not in the dataset (lists the existing columns).
    """
    import datasets

    src_lang, tgt_lang = parse_covost2_config(config)
    columns = {**COVOST2_COLUMNS, **(column_mapping or {})}
    options = options or AudioOptions()
    counter = counter if counter is not None else BadRecordCounter(f"covost2 {config}/{split}")
    if data_files is not None:
        files = data_files if isinstance(data_files, Mapping) else {split: data_files}
        if isinstance(files, Mapping) and split not in files:
            raise ValueError(f"data_files has no split {split!r}; splits: {list(files)}")
        args, kwargs = ("parquet",), {"data_files": {split: files[split]}, "split": split, **load_kwargs}
        name = f"CoVoST 2 parquet {files[split]}"
    else:
        args, kwargs = (dataset_name, config), {"split": split, "revision": revision, **load_kwargs}
        name = f"CoVoST 2 {dataset_name}/{config}/{split}"
    if text_only:
        return _load_text_only(args, kwargs, streaming, columns, src_lang, tgt_lang, counter, name, batch_size)
    ds = datasets.load_dataset(*args, streaming=streaming, **kwargs)
    column_names = list(ds.features) if ds.features is not None else None
    if column_names is None:  # a stream without features: peek at the first row
        column_names = list(next(iter(ds.take(1))).keys())
    required = {k: v for k, v in columns.items() if k != "id"}
    check_columns(column_names, required, dataset_name=name, hint=_COLUMN_HINT)
    if columns["id"] not in column_names:
        columns["id"] = "file" if "file" in column_names else columns["id"]
    audio_feature = ds.features.get(columns["audio"]) if ds.features is not None else None
    if audio_feature is not None and isinstance(audio_feature, datasets.Audio):
        ds = ds.cast_column(columns["audio"], datasets.Audio(decode=False))  # torchcodec never needed
    kwargs = {
        "columns": columns,
        "src_lang": src_lang,
        "tgt_lang": tgt_lang,
        "options": options,
        "counter": counter,
    }
    map_kwargs: dict[str, Any] = {"batched": True, "batch_size": batch_size, "remove_columns": column_names}
    if streaming:
        return ds.map(_convert_batch, fn_kwargs=kwargs, **map_kwargs)
    ds = ds.map(_convert_batch, fn_kwargs=kwargs, load_from_cache_file=False, **map_kwargs)
    return ds.with_format("numpy", columns=["audio"], output_all_columns=True)  # audio as float32 arrays


def _load_text_only(args, kwargs, streaming, columns, src_lang, tgt_lang, counter, name, batch_size):
    """The text-only path: the schema from a lazy stream, then a load of the id and text columns alone."""
    import datasets

    probe = datasets.load_dataset(*args, streaming=True, **kwargs)  # lazy: reads no rows
    column_names = list(probe.features) if probe.features is not None else None
    if column_names is None:  # a stream without features: the first row's keys
        column_names = list(next(iter(probe.take(1))).keys())
    required = {k: v for k, v in columns.items() if k in ("transcript", "translation")}
    check_columns(column_names, required, dataset_name=name, hint=_COLUMN_HINT)
    wanted = list(dict.fromkeys((columns["id"], "file", columns["transcript"], columns["translation"])))
    wanted = [c for c in wanted if c in column_names]
    ds = datasets.load_dataset(*args, streaming=streaming, columns=wanted, **kwargs)
    fn_kwargs = {"columns": columns, "src_lang": src_lang, "tgt_lang": tgt_lang, "counter": counter}
    map_kwargs: dict[str, Any] = {"batched": True, "batch_size": batch_size, "remove_columns": wanted}
    if not streaming:
        map_kwargs["load_from_cache_file"] = False
    return ds.map(_convert_text_batch, fn_kwargs=fn_kwargs, **map_kwargs)


def covost2_parquet_schema():
    """``datasets.Features`` of the mirror (for writing local parquet files the loader accepts)."""
    import datasets

    return datasets.Features(
        {
            "client_id": datasets.Value("string"),
            "file": datasets.Value("string"),
            "audio": datasets.Audio(sampling_rate=16000),
            "sentence": datasets.Value("string"),
            "translation": datasets.Value("string"),
            "id": datasets.Value("string"),
        }
    )


__all__ = ["COVOST2_COLUMNS", "COVOST2_MIRROR", "covost2_parquet_schema", "load_covost2", "parse_covost2_config"]
