"""Data for DTW-Align: loaders (CoVoST 2, MuST-C, local manifests, the offline demo corpus), audio decoding,
validation, hours-based subsets, word timings and the speech-translation collator.

Every loader yields the example schema of docs/CONTRACTS.md (``id``, ``audio`` float32 mono 16 kHz,
``sampling_rate``, ``transcript``, ``translation``, ``src_lang``, ``tgt_lang``, ``duration`` in seconds) plus
``length`` (samples) for length bucketing. The model never imports this subpackage.
"""

from .audio import AudioDecodeError, AudioOptions, decode_audio, resample_audio
from .collator import DataCollatorSpeechTranslation, bucket_by_length, length_grouped_sampler, sort_by_length_buffered
from .covost2 import load_covost2
from .demo import (
    build_corpus_from_tsv,
    build_demo_corpus,
    demo_corpus_dir,
    load_demo_corpus,
    load_demo_timings,
)
from .manifest import load_manifest
from .must_c import load_must_c
from .subset import subset_by_hours
from .synth import synthesize
from .timings import (
    ctm_to_timings,
    match_timings_to_transcript,
    read_timings,
    textgrid_to_timings,
    write_timings,
)
from .validation import BadRecordCounter, MissingColumnError, check_columns


__all__ = [
    "AudioDecodeError",
    "AudioOptions",
    "BadRecordCounter",
    "DataCollatorSpeechTranslation",
    "MissingColumnError",
    "bucket_by_length",
    "build_corpus_from_tsv",
    "build_demo_corpus",
    "check_columns",
    "ctm_to_timings",
    "decode_audio",
    "demo_corpus_dir",
    "length_grouped_sampler",
    "load_covost2",
    "load_demo_corpus",
    "load_demo_timings",
    "load_manifest",
    "load_must_c",
    "match_timings_to_transcript",
    "read_timings",
    "resample_audio",
    "sort_by_length_buffered",
    "subset_by_hours",
    "synthesize",
    "textgrid_to_timings",
    "write_timings",
]
