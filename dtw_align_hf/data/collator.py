"""Batching for speech translation: padded raw audio, transcript ids, labels with -100, and length bucketing.

Batch keys (docs/CONTRACTS.md): ``input_values`` (B, T) float32, ``attention_mask`` (B, T) long,
``input_ids`` (B, M) transcript ids, ``text_attention_mask`` (B, M) long, ``labels`` (B, L) translation ids
with -100 on padding.

Length bucketing:

- map-style datasets: every loader here writes a ``length`` column (samples at 16 kHz), so the Trainer's own
  ``train_sampling_strategy="group_by_length"`` with ``length_column_name="length"`` works without decoding
  audio; :func:`length_grouped_sampler` builds the same sampler for a plain DataLoader.
- streamed datasets: the Trainer ignores length grouping for an ``IterableDataset``; wrap it with
  :func:`bucket_by_length` (a buffer of ``buffer_size`` examples is sorted by length, cut into batches of
  ``batch_size``, and the batches are shuffled), then batch it with the same ``batch_size``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers.utils import logging


logger = logging.get_logger(__name__)


def _audio_array(example: Mapping[str, Any], key: str) -> tuple[np.ndarray, int | None]:
    """Float32 mono array and its rate from ``example[key]`` (array, or a ``{"array", "sampling_rate"}`` dict)."""
    value = example[key]
    rate = example.get("sampling_rate")
    is_container = isinstance(value, Mapping) or (
        hasattr(value, "__getitem__") and not isinstance(value, (np.ndarray, list, torch.Tensor))
    )
    if is_container:  # {"array", "sampling_rate"} or a torchcodec AudioDecoder from datasets
        rate = value["sampling_rate"]
        value = value["array"]
    arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    arr = arr.astype(np.float32, copy=False)
    if arr.ndim != 1:
        raise ValueError(
            f"Example {example.get('id')!r}: audio must be 1-D mono, got shape {arr.shape}; decode it with "
            "dtw_align_hf.data.audio.decode_audio (down-mixes and resamples)"
        )
    return arr, (int(rate) if rate is not None else None)


@dataclass
class DataCollatorSpeechTranslation:
    """Pads raw audio and tokenises transcripts and translations.

    Args:
        tokenizer (`PreTrainedTokenizerBase`): any HF tokenizer. Transcripts are tokenised with
            ``tokenizer(texts)``; translations with ``tokenizer(text_target=texts)`` (so M2M100/mBART language
            codes are handled), or with ``target_tokenizer`` if given.
        feature_extractor (`Wav2Vec2FeatureExtractor`-like, *optional*): called as ``feature_extractor(audios,
            sampling_rate=..., padding=..., return_attention_mask=True, return_tensors="pt")`` (it may normalise
            each clip, as HuBERT-large's does). `None`: plain zero padding.
        target_tokenizer (`PreTrainedTokenizerBase`, *optional*): separate tokenizer for the translations.
        sampling_rate (`int`, defaults to 16000): expected rate of every example (Hz); a mismatch is an error
            (the loaders resample; the collator never does silently).
        padding (`bool` or `str`, defaults to `True`): passed to the tokenizer/feature extractor ("longest").
        pad_to_multiple_of (`int`, *optional*): pad audio lengths to a multiple of this many samples.
        max_source_length, max_target_length (`int`, *optional*): truncate transcript/translation ids.
        label_pad_token_id (`int`, defaults to -100): label value on padding (ignored by the loss).
        return_transcript (`bool`, defaults to `True`): add ``input_ids``/``text_attention_mask``.
        audio_key, transcript_key, translation_key (`str`): example fields.

    Returns (from ``__call__``):
        `dict[str, torch.Tensor]` with ``input_values`` (B, T) float32, ``attention_mask`` (B, T) long (1 on
        real samples), ``input_ids`` (B, M) long, ``text_attention_mask`` (B, M) long, ``labels`` (B, L) long.
        If every example already has ``input_ids``/``labels`` (pre-tokenised), those are padded instead.
    """

    tokenizer: Any
    feature_extractor: Any | None = None
    target_tokenizer: Any | None = None
    sampling_rate: int = 16000
    padding: bool | str = True
    pad_to_multiple_of: int | None = None
    max_source_length: int | None = None
    max_target_length: int | None = None
    label_pad_token_id: int = -100
    return_transcript: bool = True
    audio_key: str = "audio"
    transcript_key: str = "transcript"
    translation_key: str = "translation"

    def _pad_audio(self, audios: list[np.ndarray]) -> dict[str, torch.Tensor]:
        if self.feature_extractor is not None:
            out = self.feature_extractor(
                audios,
                sampling_rate=self.sampling_rate,
                padding=self.padding,
                pad_to_multiple_of=self.pad_to_multiple_of,
                return_attention_mask=True,
                return_tensors="pt",
            )
            values = out["input_values"] if "input_values" in out else out["input_features"]
            return {"input_values": values.float(), "attention_mask": out["attention_mask"].long()}
        longest = max(len(a) for a in audios)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            longest = (longest + m - 1) // m * m
        values = torch.zeros(len(audios), longest, dtype=torch.float32)
        mask = torch.zeros(len(audios), longest, dtype=torch.long)
        for i, a in enumerate(audios):
            values[i, : len(a)] = torch.from_numpy(np.ascontiguousarray(a))
            mask[i, : len(a)] = 1
        return {"input_values": values, "attention_mask": mask}

    @staticmethod
    def _pad_ids(seqs: Sequence[Sequence[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
        longest = max((len(s) for s in seqs), default=0)
        ids = torch.full((len(seqs), longest), value, dtype=torch.long)
        mask = torch.zeros(len(seqs), longest, dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
            mask[i, : len(s)] = 1
        return ids, mask

    def _tokenize(
        self, texts: list[str], *, target: bool, max_length: int | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        kwargs = {
            "padding": self.padding,
            "truncation": max_length is not None,
            "max_length": max_length,
            "return_tensors": "pt",
        }
        if target and self.target_tokenizer is not None:
            enc = self.target_tokenizer(texts, **kwargs)
        elif target:
            enc = self.tokenizer(text_target=texts, **kwargs)
        else:
            enc = self.tokenizer(texts, **kwargs)
        return enc["input_ids"].long(), enc["attention_mask"].long()

    def __call__(self, features: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("DataCollatorSpeechTranslation got an empty list of examples")
        audios = []
        for f in features:
            arr, rate = _audio_array(f, self.audio_key)
            if rate is not None and rate != self.sampling_rate:
                raise ValueError(
                    f"Example {f.get('id')!r} is at {rate} Hz but the collator expects {self.sampling_rate} Hz; "
                    "load it with AudioOptions(sampling_rate=...) so it is resampled"
                )
            audios.append(arr)
        batch = self._pad_audio(audios)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        if self.return_transcript:
            if all("input_ids" in f for f in features):
                ids, mask = self._pad_ids([f["input_ids"] for f in features], pad_id)
            else:
                texts = [str(f[self.transcript_key]) for f in features]
                ids, mask = self._tokenize(texts, target=False, max_length=self.max_source_length)
            batch["input_ids"], batch["text_attention_mask"] = ids, mask
        if all("labels" in f for f in features):
            labels, lmask = self._pad_ids([f["labels"] for f in features], self.label_pad_token_id)
        else:
            texts = [str(f[self.translation_key]) for f in features]
            labels, lmask = self._tokenize(texts, target=True, max_length=self.max_target_length)
        batch["labels"] = labels.masked_fill(lmask == 0, self.label_pad_token_id)
        return batch


def length_grouped_sampler(
    dataset: Any = None,
    batch_size: int = 8,
    *,
    lengths: Sequence[int] | None = None,
    seed: int = 0,
):
    """A ``transformers`` ``LengthGroupedSampler`` over a map-style dataset's ``length`` column.

    Args:
        dataset: a dataset with a ``length`` column (every loader here has one), or `None` with ``lengths``.
        batch_size (`int`): the per-device batch size (examples of similar length end up in the same batch).
        lengths (`Sequence[int]`, *optional*): lengths in samples, instead of reading ``dataset["length"]``.
        seed (`int`): shuffling seed.
    """
    from transformers.trainer_pt_utils import LengthGroupedSampler

    if lengths is None:
        if dataset is None:
            raise ValueError("length_grouped_sampler needs a dataset with a 'length' column or lengths=...")
        lengths = [int(x) for x in dataset["length"]]
    generator = torch.Generator().manual_seed(seed)
    return LengthGroupedSampler(batch_size, lengths=list(lengths), generator=generator)


def _example_length(example: Mapping[str, Any], key: str) -> int:
    if key in example and example[key] is not None:
        return int(example[key])
    audio = example.get("audio")
    return len(audio) if audio is not None and not isinstance(audio, str) else 0


def sort_by_length_buffered(
    examples: Iterable[Mapping[str, Any]],
    *,
    buffer_size: int = 1000,
    batch_size: int = 8,
    key: str = "length",
    seed: int = 0,
    shuffle_batches: bool = True,
) -> Iterator[Mapping[str, Any]]:
    """Yield ``examples`` so that consecutive runs of ``batch_size`` have similar lengths (for streams).

    Fills a buffer of ``buffer_size`` examples, sorts it by ``example[key]`` (default: ``length`` in samples;
    falls back to ``len(example["audio"])``), cuts it into batches of ``batch_size``, shuffles the batch order
    (seeded) and yields the batches' examples in turn. Deterministic for a seed and an input order. Batch the
    output with the same ``batch_size`` (and ``drop_last`` or not, as you like) to get the buckets.
    """
    if buffer_size < batch_size:
        raise ValueError(f"buffer_size ({buffer_size}) must be >= batch_size ({batch_size})")
    rng = random.Random(seed)
    buffer: list[Mapping[str, Any]] = []

    def flush(buf: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        buf.sort(key=lambda ex: _example_length(ex, key))
        batches = [buf[i : i + batch_size] for i in range(0, len(buf), batch_size)]
        if shuffle_batches:
            rng.shuffle(batches)
        for b in batches:
            yield from b

    for ex in examples:
        buffer.append(ex)
        if len(buffer) >= buffer_size:
            yield from flush(buffer)
            buffer = []
    if buffer:
        yield from flush(buffer)


def bucket_by_length(
    dataset: Any,
    *,
    buffer_size: int = 1000,
    batch_size: int = 8,
    key: str = "length",
    seed: int = 0,
):
    """Wrap a streamed ``datasets.IterableDataset`` (or any iterable of examples) with
    :func:`sort_by_length_buffered`; returns a ``datasets.IterableDataset``.

    Note: the result is a single shard; split it across processes with ``datasets.distributed
    .split_dataset_by_node`` *before* bucketing if you train with DDP.
    """
    import datasets

    def gen(source: Any) -> Iterator[Mapping[str, Any]]:
        yield from sort_by_length_buffered(source, buffer_size=buffer_size, batch_size=batch_size, key=key, seed=seed)

    return datasets.IterableDataset.from_generator(gen, gen_kwargs={"source": dataset})


__all__ = [
    "DataCollatorSpeechTranslation",
    "bucket_by_length",
    "length_grouped_sampler",
    "sort_by_length_buffered",
]
