"""Data for DTW-Align: loaders (CoVoST 2, MuST-C, local manifests, the offline demo corpus), audio decoding,
validation, hours-based subsets, word timings, the collators, batching by audio length, and `load_splits` (the
run scripts' entry point, with `DataArguments`).

Every loader yields the example schema of docs/CONTRACTS.md (``id``, ``audio`` float32 mono 16 kHz,
``sampling_rate``, ``transcript``, ``translation``, ``src_lang``, ``tgt_lang``, ``duration`` in seconds) plus
``length`` (samples) for length bucketing. The model never imports this subpackage.

Names are imported lazily (PEP 562), so ``python -m dtw_align_hf.data.demo`` runs without a double import and
``import dtw_align_hf.data`` stays cheap.
"""

import importlib
from typing import Any


_EXPORTS: dict[str, str] = {
    "DATASETS": "arguments",
    "DataArguments": "arguments",
    "AudioDecodeError": "audio",
    "AudioOptions": "audio",
    "decode_audio": "audio",
    "resample_audio": "audio",
    "DataCollatorSpeechTranslation": "collator",
    "bucket_by_length": "batching",
    "length_grouped_sampler": "batching",
    "sort_by_length_buffered": "batching",
    "load_covost2": "covost2",
    "BadSampleFilter": "filtering",
    "SafeAudioDecoder": "filtering",
    "is_skipped_batch": "filtering",
    "skipped_batch": "filtering",
    "DataCollatorTextTranslation": "collator",
    "SecondsBatchSampler": "batching",
    "SecondsBatchedStream": "batching",
    "seconds_dataloader": "batching",
    "load_text_pairs": "text",
    "reference_translations": "text",
    "gather_bad_record_counters": "validation",
    "clear_bad_record_spool": "validation",
    "DATASET_LOADERS": "loading",
    "is_streamed": "loading",
    "load_splits": "loading",
    "build_corpus_from_tsv": "demo",
    "build_demo_corpus": "demo",
    "demo_corpus_dir": "demo",
    "load_demo_corpus": "demo",
    "load_demo_timings": "demo",
    "load_manifest": "manifest",
    "load_must_c": "must_c",
    "subset_by_hours": "subset",
    "synthesize": "synth",
    "ctm_to_timings": "timings",
    "match_timings_to_transcript": "timings",
    "read_timings": "timings",
    "textgrid_to_timings": "timings",
    "write_timings": "timings",
    "BadRecordCounter": "validation",
    "MissingColumnError": "validation",
    "check_columns": "validation",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = [
    "DATASETS",
    "DATASET_LOADERS",
    "AudioDecodeError",
    "AudioOptions",
    "BadRecordCounter",
    "BadSampleFilter",
    "DataArguments",
    "DataCollatorSpeechTranslation",
    "DataCollatorTextTranslation",
    "MissingColumnError",
    "SafeAudioDecoder",
    "SecondsBatchSampler",
    "SecondsBatchedStream",
    "bucket_by_length",
    "build_corpus_from_tsv",
    "build_demo_corpus",
    "check_columns",
    "clear_bad_record_spool",
    "ctm_to_timings",
    "decode_audio",
    "demo_corpus_dir",
    "gather_bad_record_counters",
    "is_skipped_batch",
    "is_streamed",
    "length_grouped_sampler",
    "load_covost2",
    "load_demo_corpus",
    "load_demo_timings",
    "load_manifest",
    "load_must_c",
    "load_splits",
    "load_text_pairs",
    "match_timings_to_transcript",
    "read_timings",
    "reference_translations",
    "resample_audio",
    "skipped_batch",
    "sort_by_length_buffered",
    "subset_by_hours",
    "synthesize",
    "textgrid_to_timings",
    "write_timings",
]
