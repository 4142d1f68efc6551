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
    from .demo import load_demo_corpus

    sizes = {"train": data_args.demo_train_size, "dev": data_args.demo_eval_size, "test": data_args.demo_test_size}
    return load_demo_corpus(
        split,
        cache_dir=data_args.cache_dir,
        seed=data_args.demo_seed,
        split_sizes=sizes,
        options=audio_options(data_args),
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
    )


def _load_covost2(data_args: DataArguments, split: str, role: str, counter, text_only: bool):
    from .covost2 import load_covost2

    config = data_args.dataset_config or f"{data_args.src_lang}_{data_args.tgt_lang}"
    data_files = None
    if data_args.data_dir:  # a local copy of the parquet mirror: <data_dir>/<config>/<split>-*.parquet
        data_files = str(Path(data_args.data_dir) / config / f"{split}-*.parquet")
    kwargs = {"cache_dir": data_args.cache_dir} if data_args.cache_dir else {}
    return load_covost2(
        config,
        split,
        data_files=data_files,
        streaming=data_args.streaming,
        options=audio_options(data_args),
        counter=counter,
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
        text_only (`bool`, defaults to `False`): stage 1: keep only the text columns (`id`, `transcript`,
            `translation`); audio is never decoded.
        training_args (`TrainingArguments`, *optional*): for a streamed training split, the Trainer is told not
            to dispatch batches.
        decode_audio (`bool`, *optional*): the old spelling of `not text_only` (accepted until the run scripts
            switch).

    With audio, map-style audio is decoded on access by `SafeAudioDecoder`: an utterance that fails to decode
    becomes `audio=None`, is counted, and `BadSampleFilter` drops it from its batch, so one bad file never ends a
    long run (streamed loaders skip and count bad records themselves). `train_hours` takes a seeded subset of that
    many hours (`data.subset.subset_by_hours`).
    """
    from .subset import subset_by_hours
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
    loader = DATASET_LOADERS[data_args.dataset]
    splits, counters = {}, {}
    for role, split in names.items():
        if split is None:
            continue
        counters[role] = BadRecordCounter(f"{data_args.dataset}/{split}")
        ds = loader(data_args, split, role, counters[role], text_only)
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
    if training_args is not None and "train" in splits and is_streamed(splits["train"]):
        if training_args.world_size > 1:
            from datasets.distributed import split_dataset_by_node

            splits["train"] = split_dataset_by_node(
                splits["train"], rank=training_args.process_index, world_size=training_args.world_size
            )
        training_args.accelerator_config.dispatch_batches = False
    return splits, counters


__all__ = ["DATASET_LOADERS", "TEXT_COLUMNS", "audio_options", "is_streamed", "load_splits"]
