"""The collators: one for speech translation (stage 2), one for text translation (stage 1), both fed by the processor.

There is one tokenisation path: the collators call the processor's own `encode_transcripts` /
`encode_translations` (and `check_audio` for audio), so a batch built here has exactly the ids of
`processor(audio=..., text=..., text_target=...)` and of inference: no EOS on transcripts unless the processor adds
one (`transcript_eos`), the target-language token first in the labels when the vocabulary has one.

Speech batch keys (docs/CONTRACTS.md): the processor's audio key -- ``input_values`` (B, T) float32 for waveform
encoders (HuBERT, wav2vec 2.0) or ``input_features`` for filterbank/mel encoders -- with ``attention_mask``,
``input_ids`` (B, M) transcript ids, ``text_attention_mask`` (B, M), ``labels`` (B, L) translation ids with -100 on
padding. Text batch keys: ``input_ids``, ``attention_mask``, ``labels``, ``decoder_input_ids``.

A collator raises `ValueError` on an example the processor rejects (empty, NaN, stereo, too long); wrap it in
`dtw_align_hf.data.filtering.BadSampleFilter` to skip and count such examples during training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers.utils import logging

from ..losses import shift_labels_right
from .batching import bucket_by_length, length_grouped_sampler, sort_by_length_buffered


logger = logging.get_logger(__name__)

LABEL_PAD_TOKEN_ID = -100


def _audio_array(example: Mapping[str, Any], key: str) -> tuple[Any, int | None]:
    """The clip and its rate from ``example[key]`` (an array/tensor, or a ``{"array", "sampling_rate"}`` dict)."""
    value = example[key]
    rate = example.get("sampling_rate")
    is_container = isinstance(value, Mapping) or (
        hasattr(value, "__getitem__") and not isinstance(value, (np.ndarray, list, torch.Tensor))
    )
    if is_container:  # {"array", "sampling_rate"} or a torchcodec AudioDecoder from datasets
        rate = value["sampling_rate"]
        value = value["array"]
    if isinstance(value, list):
        value = np.asarray(value, dtype=np.float32)
    return value, (int(rate) if rate is not None else None)


def pad_ids(seqs: Sequence[Sequence[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists into ``(ids, mask)`` long tensors of shape (B, longest)."""
    longest = max((len(s) for s in seqs), default=0)
    ids = torch.full((len(seqs), longest), value, dtype=torch.long)
    mask = torch.zeros(len(seqs), longest, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


@dataclass
class DataCollatorSpeechTranslation:
    """Speech-translation batches from examples in the CONTRACTS schema, with the processor's conventions.

    Args:
        processor ([`DTWAlignProcessor`]): checks the audio (`check_audio`), encodes transcripts
            (`encode_transcripts`) and translations (`encode_translations`), and pads the audio with the speech
            encoder's own feature extractor (`pad_audio`).
        return_transcript (`bool`, defaults to `True`): add ``input_ids``/``text_attention_mask`` (the
            transcript DTW aligns to and the MT branch translates).
        label_pad_token_id (`int`, defaults to -100): label value on padding (ignored by the loss).
        audio_key, transcript_key, translation_key (`str`): example fields.

    Returns (from ``__call__``):
        `dict[str, torch.Tensor]`: the audio key (``input_values`` (B, T) float32, or ``input_features`` for a
        mel encoder), ``attention_mask`` (B, T) long, ``input_ids`` (B, M) long, ``text_attention_mask`` (B, M)
        long, ``labels`` (B, L) long. Examples that already carry ``input_ids`` / ``labels`` (pre-tokenised with
        the processor) have those padded instead of being encoded again.

    Raises:
        `ValueError` naming the problem for an empty list or a clip the processor rejects.
    """

    processor: Any = None
    return_transcript: bool = True
    label_pad_token_id: int = LABEL_PAD_TOKEN_ID
    audio_key: str = "audio"
    transcript_key: str = "transcript"
    translation_key: str = "translation"
    # Deprecated spelling (until the run scripts pass the processor): wrapped into a `DTWAlignProcessor`, so the
    # ids still come from the processor's encode_* and there is no second tokenisation path.
    tokenizer: Any = None
    feature_extractor: Any = None
    sampling_rate: int | None = None

    def __post_init__(self) -> None:
        if self.processor is not None:
            return
        if self.tokenizer is None:
            raise TypeError(
                "DataCollatorSpeechTranslation needs the processor: DataCollatorSpeechTranslation(processor)"
            )
        from ..processing_dtw_align import DTWAlignProcessor, make_feature_extractor

        logger.warning_once(
            "DataCollatorSpeechTranslation(tokenizer=..., feature_extractor=...) is deprecated; pass the processor: "
            "DataCollatorSpeechTranslation(processor)."
        )
        extractor = self.feature_extractor
        if extractor is None:  # plain zero padding, as before
            extractor = make_feature_extractor(self.sampling_rate or 16000, do_normalize=False)
        self.processor = DTWAlignProcessor(extractor, self.tokenizer, max_source_seconds=None)

    def pad_audio(self, clips: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """Feature extraction + padding of checked clips: the processor's `pad_audio`, the one place audio is padded."""
        return dict(self.processor.pad_audio(clips))

    def __call__(self, features: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("DataCollatorSpeechTranslation got an empty list of examples")
        processor = self.processor
        clips = []
        for f in features:
            audio, rate = _audio_array(f, self.audio_key)
            try:
                clips.append(processor.check_audio(audio, rate if rate is not None else processor.sampling_rate)[0])
            except ValueError as err:
                raise ValueError(f"Example {f.get('id')!r}: {err}") from err
        batch = self.pad_audio(clips)
        tokenizer = processor.tokenizer
        if self.return_transcript:
            if all("input_ids" in f for f in features):
                transcripts = [list(f["input_ids"]) for f in features]
            else:
                transcripts = processor.encode_transcripts([str(f[self.transcript_key]) for f in features])
            pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
            batch["input_ids"], batch["text_attention_mask"] = pad_ids(transcripts, pad_id)
        if all("labels" in f for f in features):
            labels = [list(f["labels"]) for f in features]
        else:
            labels = processor.encode_translations([str(f[self.translation_key]) for f in features])
        batch["labels"], _ = pad_ids(labels, self.label_pad_token_id)
        return batch


@dataclass
class DataCollatorTextTranslation:
    """Stage-1 batches: transcripts -> ``input_ids``/``attention_mask``, translations -> ``labels`` (-100 on
    padding) and ``decoder_input_ids``, encoded by the processor exactly as in stage 2.

    ``decoder_input_ids`` are the labels shifted right behind the decoder start token (fairseq starts decoding
    with ``</s>``), built here because with ``label_smoothing_factor > 0`` the Trainer takes the labels away from
    the model before its forward. Examples with an empty transcript or translation are dropped (the loaders have
    already skipped and counted them).

    Args:
        processor ([`DTWAlignProcessor`]): its `encode_transcripts` / `encode_translations` give the ids.
        max_source_length, max_target_length (`int`, *optional*): cut transcript / label ids to this many tokens.
        decoder_start_token_id (`int`, *optional*): default: the tokenizer's EOS id (fairseq's convention).
    """

    processor: Any
    max_source_length: int | None = None
    max_target_length: int | None = None
    decoder_start_token_id: int | None = None
    label_pad_token_id: int = LABEL_PAD_TOKEN_ID

    def __call__(self, features: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        features = [
            f for f in features if str(f.get("transcript") or "").strip() and str(f.get("translation") or "").strip()
        ]
        if not features:
            raise ValueError("DataCollatorTextTranslation got no example with a transcript and a translation")
        tokenizer = self.processor.tokenizer
        sources = self.processor.encode_transcripts([str(f["transcript"]) for f in features])
        targets = self.processor.encode_translations([str(f["translation"]) for f in features])
        if self.max_source_length is not None:
            sources = [s[: self.max_source_length] for s in sources]
        if self.max_target_length is not None:
            targets = [t[: self.max_target_length] for t in targets]
        input_ids, attention_mask = pad_ids(sources, tokenizer.pad_token_id)
        labels, _ = pad_ids(targets, self.label_pad_token_id)
        start = self.decoder_start_token_id if self.decoder_start_token_id is not None else tokenizer.eos_token_id
        # the same shift as the stage-2 model's prepare_decoder_input_ids_from_labels (one implementation)
        decoder_input_ids = shift_labels_right(labels, start, tokenizer.pad_token_id)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "decoder_input_ids": decoder_input_ids,
        }


__all__ = [
    "LABEL_PAD_TOKEN_ID",
    "DataCollatorSpeechTranslation",
    "DataCollatorTextTranslation",
    "bucket_by_length",
    "length_grouped_sampler",
    "pad_ids",
    "sort_by_length_buffered",
]
