"""`DataArguments`: which corpus, which splits, how much of it, which columns, how batches are formed.

The run scripts parse it with `HfArgumentParser` (every field is a command-line flag `--<field>` and a recipe
key of the same name); `dtw_align_hf.data.loading.load_splits` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


#: Dataset names accepted by `--dataset`; `dtw_align_hf.data.loading.DATASET_LOADERS` maps each to its loader.
DATASETS: tuple[str, ...] = ("demo", "covost2", "must_c", "manifest")


@dataclass
class DataArguments:
    """Which corpus, which splits, how much of it."""

    dataset: str = field(default="demo", metadata={"help": f"One of {', '.join(DATASETS)}."})
    dataset_config: str | None = field(
        default=None, metadata={"help": "Language pair: CoVoST 2 'fr_en', 'en_de'; MuST-C 'en-de', 'en-fr'."}
    )
    data_dir: str | None = field(
        default=None,
        metadata={"help": "Local corpus root (MuST-C release, CoVoST 2 / Common Voice download, parquet mirror)."},
    )
    src_lang: str | None = field(default=None, metadata={"help": "Source language code (e.g. en, fr)."})
    tgt_lang: str | None = field(default=None, metadata={"help": "Target language code (e.g. de, en)."})
    train_split: str | None = field(default="train", metadata={"help": "Training split name."})
    eval_split: str | None = field(default="dev", metadata={"help": "Validation split (None: no evaluation)."})
    test_split: str | None = field(default="test", metadata={"help": "Test split for the final evaluation."})
    train_file: str | None = field(default=None, metadata={"help": "manifest: training TSV/CSV/JSONL."})
    eval_file: str | None = field(default=None, metadata={"help": "manifest: validation manifest."})
    test_file: str | None = field(default=None, metadata={"help": "manifest: test manifest."})
    audio_column: str | None = field(
        default=None,
        metadata={"help": "manifest: column with the audio path (default: audio, path, audio_filepath, wav, ...)."},
    )
    transcript_column: str | None = field(
        default=None,
        metadata={"help": "manifest: column with the transcript (default: transcript, src_text, sentence, ...)."},
    )
    translation_column: str | None = field(
        default=None, metadata={"help": "manifest: column with the translation (default: translation, tgt_text, ...)."}
    )
    id_column: str | None = field(
        default=None,
        metadata={"help": "manifest: column with the utterance id (default: id, utt_id, key, ...; else row numbers)."},
    )
    text_train_files: list[str] | None = field(
        default=None,
        metadata={
            "help": "Stage 1: extra text-only parallel data (TSV/CSV/JSONL with transcript and translation columns, "
            "no audio), several files combined; added to the speech corpus's training text (see --train_split none "
            "to train on these files alone)."
        },
    )
    max_batch_seconds: float | None = field(
        default=None,
        metadata={
            "help": "Stage 2: form training batches by total audio length (seconds per device) instead of a fixed "
            "number of examples (fairseq's max_tokens); per_device_train_batch_size is then ignored."
        },
    )
    reference_timings: str | None = field(
        default=None,
        metadata={
            "help": "JSONL word timings of the test split (docs/CONTRACTS.md) for alignment accuracy; the demo "
            "corpus provides its own."
        },
    )
    train_hours: float | None = field(
        default=None, metadata={"help": "Keep only this many hours of training audio (the paper's 10 h setting)."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Truncate the training set."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Truncate the validation set."})
    max_test_samples: int | None = field(default=None, metadata={"help": "Truncate the test set."})
    max_duration: float | None = field(default=30.0, metadata={"help": "Skip longer utterances (seconds)."})
    min_duration: float | None = field(default=0.1, metadata={"help": "Skip shorter utterances (seconds)."})
    demo_train_size: int = field(default=1500, metadata={"help": "demo: training utterances to synthesise."})
    demo_eval_size: int = field(default=100, metadata={"help": "demo: dev utterances."})
    demo_test_size: int = field(default=100, metadata={"help": "demo: test utterances."})
    demo_seed: int = field(default=0, metadata={"help": "demo: corpus seed (voices, rates, split)."})
    demo_text: str = field(
        default="ding",
        metadata={"help": "demo: 'ding' (real dictionary sentences) or 'grammar' (generated, ~270 word types)."},
    )
    demo_speech: str = field(
        default="steady",
        metadata={"help": "demo: 'steady' (one rate per utterance) or 'varied' (phrase rates, pauses, noise)."},
    )
    subset_seed: int = field(default=0, metadata={"help": "Seed of the train_hours subset."})
    streaming: bool = field(
        default=True, metadata={"help": "covost2: stream from the parquet mirror (IterableDataset)."}
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Where corpora and downloads are cached."})
    recipe: str | None = field(default=None, metadata={"help": "Filled from --config (recorded in the card)."})

    def __post_init__(self):
        for name in ("eval_split", "test_split", "train_split"):  # "--eval_split none" on the command line
            if str(getattr(self, name)).lower() in ("none", "null", ""):
                setattr(self, name, None)
        if isinstance(self.text_train_files, str):  # a single path in a recipe
            self.text_train_files = [self.text_train_files]
        if self.demo_text not in ("ding", "grammar"):
            raise ValueError(f"demo_text={self.demo_text!r}; choose 'ding' or 'grammar'.")
        if self.demo_speech not in ("steady", "varied"):
            raise ValueError(f"demo_speech={self.demo_speech!r}; choose 'steady' or 'varied'.")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset={self.dataset!r} is not supported; choose one of {', '.join(DATASETS)}.")
        if self.dataset == "manifest" and not self.train_file and not self.test_file and not self.text_train_files:
            raise ValueError("dataset='manifest' needs --train_file and/or --test_file (TSV, CSV or JSONL).")
        if self.max_batch_seconds is not None and self.max_batch_seconds <= 0:
            raise ValueError(
                f"--max_batch_seconds must be a positive number of seconds, got {self.max_batch_seconds}; "
                "leave it unset to batch by per_device_train_batch_size."
            )
        if self.dataset_config and (self.src_lang is None or self.tgt_lang is None):
            parts = self.dataset_config.replace("_", "-").split("-")
            if len(parts) == 2:
                self.src_lang = self.src_lang or parts[0]
                self.tgt_lang = self.tgt_lang or parts[1]

    def column_names(self) -> dict[str, str | None]:
        """The explicit manifest column names, as `load_manifest` keyword arguments (`None`: auto-detect)."""
        return {
            "audio_column": self.audio_column,
            "transcript_column": self.transcript_column,
            "translation_column": self.translation_column,
            "id_column": self.id_column,
        }


__all__ = ["DATASETS", "DataArguments"]
