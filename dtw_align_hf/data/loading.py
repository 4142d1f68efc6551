"""Load the train/eval/test splits a run script asks for: one loader per dataset name, looked up in a table.

    splits, counters = load_splits(data_args, training_args=training_args)                  # stage 2: audio
    splits, counters = load_splits(data_args, text_only=True, training_args=training_args)  # stage 1: text only

`DATASET_LOADERS` maps each `--dataset` name to a function `(data_args, split, role, counter, text_only) ->
dataset | None` that returns one split in the example schema of docs/CONTRACTS.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers.utils import logging

from .arguments import DataArguments
from .filtering import SafeAudioDecoder


logger = logging.get_logger(__name__)

#: Columns kept by the text-only path (stage 1).
TEXT_COLUMNS: tuple[str, ...] = ("id", "transcript", "translation")


def audio_options(data_args: DataArguments):
    """The `AudioOptions` (16 kHz mono, duration limits) that `data_args` asks for."""
    from .audio import AudioOptions

    return AudioOptions(max_duration=data_args.max_duration, min_duration=data_args.min_duration)


def _load_demo(data_args: DataArguments, split: str, role: str, counter, text_only: bool):
    from .demo import demo_corpus_dir, demo_text_records, load_demo_corpus
    from .manifest import build_dataset, load_manifest

    sizes = {"train": data_args.demo_train_size, "dev": data_args.demo_eval_size, "test": data_args.demo_test_size}
    options = {"text": data_args.demo_text, "speech": data_args.demo_speech}
    if text_only:  # the built corpus's manifest, or the builder's split plan: nothing is synthesised or decoded
        path = demo_corpus_dir(data_args.cache_dir, seed=data_args.demo_seed, split_sizes=sizes, **options)
        if (path / "build_info.json").exists():
            return load_manifest(path / f"{split}.jsonl", text_only=True, counter=counter)
        records = demo_text_records(split, seed=data_args.demo_seed, split_sizes=sizes, text=data_args.demo_text)
        return build_dataset(records, text_only=True, decode=False, counter=counter)
    return load_demo_corpus(
        split,
        cache_dir=data_args.cache_dir,
        seed=data_args.demo_seed,
        split_sizes=sizes,
        options=audio_options(data_args),
        **options,
        decode=False,
    )


def _load_manifest(data_args: DataArguments, split: str, role: str, counter, text_only: bool):
    from .manifest import load_manifest

    path = {"train": data_args.train_file, "eval": data_args.eval_file, "test": data_args.test_file}[role]
    if path is None:
        return None
    return load_manifest(
        path,
        src_lang=data_args.src_lang,
        tgt_lang=data_args.tgt_lang,
        options=audio_options(data_args),
        decode=False,
        counter=counter,
        text_only=text_only,
        **data_args.column_names(),
    )


def _load_must_c(data_args: DataArguments, split: str, role: str, counter, text_only: bool):
    from .must_c import load_must_c

    if not data_args.data_dir:
        raise ValueError("dataset='must_c' needs --data_dir (the MuST-C release root, holding en-de/data/...).")
    return load_must_c(
        data_args.data_dir,
        split,
        data_args.src_lang or "en",
        data_args.tgt_lang or "de",
        options=audio_options(data_args),
        decode=False,
        counter=counter,
        text_only=text_only,
    )


def _load_covost2(data_args: DataArguments, split: str, role: str, counter, text_only: bool):
    from .covost2 import load_covost2

    config = data_args.dataset_config or f"{data_args.src_lang}_{data_args.tgt_lang}"
    data_files = None
    if data_args.data_dir:  # a local copy of the parquet mirror: <data_dir>/<config>/<split>-*.parquet
        data_files = str(Path(data_args.data_dir) / config / f"{split}-*.parquet")
    kwargs = {"cache_dir": data_args.cache_dir} if data_args.cache_dir else {}
    mapping = {field[: -len("_column")]: name for field, name in data_args.column_names().items() if name}
    if mapping:
        kwargs["column_mapping"] = mapping
    return load_covost2(
        config,
        split,
        data_files=data_files,
        streaming=data_args.streaming,
        options=audio_options(data_args),
        counter=counter,
        text_only=text_only,
        **kwargs,
    )


#: `--dataset` name -> loader `(data_args, split, role, counter, text_only) -> dataset | None`.
DATASET_LOADERS: dict[str, Callable[..., Any]] = {
    "demo": _load_demo,
    "covost2": _load_covost2,
    "must_c": _load_must_c,
    "manifest": _load_manifest,
}


def is_streamed(dataset) -> bool:
    """`True` for a `datasets.IterableDataset` (no length, no random access)."""
    import datasets

    return isinstance(dataset, datasets.IterableDataset)


def load_splits(
    data_args: DataArguments,
    *,
    text_only: bool = False,
    training_args=None,
    decode_audio: bool | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load train/eval/test; return `({"train"|"eval"|"test": dataset}, {role: BadRecordCounter})`.

    Args:
        data_args ([`DataArguments`]): the corpus and its splits.
        text_only (`bool`, defaults to `False`): stage 1: the text columns only (`id`, `transcript`,
            `translation`), and no audio is decoded: CoVoST 2 reads only the text columns of its parquet files, the
            manifest, MuST-C and demo loaders never open an audio file. The one exception is `--train_hours`,
            which needs every training utterance's duration: map-style corpora then read the audio headers, and a
            CoVoST 2 stream decodes its audio (a warning says so), so that stage 1 trains on exactly the subset
            stage 2 uses. `text_train_files` are added to the training split.
        training_args (`TrainingArguments`, *optional*): the run's arguments: the skip counters spool to
            `<output_dir>/_bad_records` (so DataLoader workers' counts reach the main process), and for a streamed
            training split the Trainer is told not to dispatch batches.
        decode_audio (`bool`, *optional*): the old spelling of `not text_only` (accepted until the run scripts
            switch).

    With audio, map-style audio is decoded on access by `SafeAudioDecoder`: an utterance that fails to decode
    becomes `audio=None`, is counted, and `BadSampleFilter` drops it from its batch, so one bad file never ends a
    long run (streamed loaders skip and count bad records themselves). `train_hours` takes a seeded subset of that
    many hours (`data.subset.subset_by_hours`).

    Streamed training data under DDP is sharded once, by accelerate when the Trainer prepares its DataLoader (whole
    parquet files per process when the stream has at least one file per process, else each process keeps its
    slice of every global batch); it is not split here as well, which would leave each process a 1/W^2 share.
    """
    from .subset import subset_by_hours
    from .text import combine_text_datasets, load_text_pairs
    from .validation import BadRecordCounter

    if decode_audio is not None:
        text_only = not decode_audio
    if data_args.dataset == "demo":
        data_args.src_lang = data_args.src_lang or "de"
        data_args.tgt_lang = data_args.tgt_lang or "en"
    names = {"train": data_args.train_split, "eval": data_args.eval_split, "test": data_args.test_split}
    limits = {
        "train": data_args.max_train_samples,
        "eval": data_args.max_eval_samples,
        "test": data_args.max_test_samples,
    }
    spool = Path(training_args.output_dir) / "_bad_records" if training_args is not None else None
    loader = DATASET_LOADERS[data_args.dataset]
    splits, counters = {}, {}
    for role, split in names.items():
        if split is None:
            continue
        counters[role] = BadRecordCounter(f"{data_args.dataset}/{split}", spool_dir=spool)
        needs_durations = text_only and role == "train" and data_args.train_hours is not None
        if needs_durations and data_args.dataset == "covost2":
            logger.warning(
                "--train_hours on a CoVoST 2 stream needs each clip's duration, so stage 1 decodes the training audio "
                "to take the same subset as stage 2; set train_hours to null to read the text alone."
            )
        ds = loader(data_args, split, role, counters[role], text_only and not needs_durations)
        if ds is None:
            del counters[role]
            continue
        streamed = is_streamed(ds)
        if role == "train" and data_args.train_hours is not None:
            ds = subset_by_hours(ds, data_args.train_hours, seed=data_args.subset_seed, language_key=None)
        if limits[role] is not None:
            ds = ds.take(limits[role]) if streamed else ds.select(range(min(limits[role], len(ds))))
        if text_only:
            columns = [c for c in TEXT_COLUMNS if c in (ds.column_names or [])]
            ds = ds.select_columns(columns) if columns else ds
        elif not streamed and data_args.dataset != "covost2":  # covost2 decodes (and skips bad audio) itself
            ds = ds.with_transform(SafeAudioDecoder(audio_options(data_args), counters[role]))
        splits[role] = ds
    if data_args.text_train_files and text_only:
        counter = counters.setdefault("train", BadRecordCounter(f"{data_args.dataset}/train", spool_dir=spool))
        extra = load_text_pairs(
            data_args.text_train_files,
            src_lang=data_args.src_lang,
            tgt_lang=data_args.tgt_lang,
            transcript_column=data_args.transcript_column,
            translation_column=data_args.translation_column,
            id_column=data_args.id_column,
            counter=counter,
        )
        splits["train"] = combine_text_datasets([splits.get("train"), extra], TEXT_COLUMNS)
    elif data_args.text_train_files:
        logger.warning("--text_train_files is text-only data for stage 1 (run_pretrain_mt.py); stage 2 ignores it.")
    if training_args is not None and "train" in splits and is_streamed(splits["train"]):
        training_args.accelerator_config.dispatch_batches = False
    return splits, counters


__all__ = ["DATASET_LOADERS", "TEXT_COLUMNS", "audio_options", "is_streamed", "load_splits"]
