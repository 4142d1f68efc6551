"""Bad samples at batch time: decode-on-access that never raises, and a collator wrapper that drops what fails.

A training batch passes, in order: `SafeAudioDecoder` (map-style datasets: `Dataset.with_transform`; an
unreadable file becomes `audio=None` and is counted) -> `BadSampleFilter` (drops `audio=None` examples and the
ones the collator rejects, counts them; a batch with no usable example becomes a stand-in the trainer skips) ->
the collator (`dtw_align_hf.data.collator`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from transformers.utils import logging


logger = logging.get_logger(__name__)


class SafeAudioDecoder:
    """`Dataset.with_transform` that decodes `audio` paths, turning a decode failure into `audio=None` (counted)."""

    def __init__(self, options, counter):
        self.options, self.counter = options, counter

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        if "audio" not in batch:
            return batch
        from .audio import decode_audio

        out, arrays = dict(batch), []
        for rid, src in zip(batch.get("id") or [None] * len(batch["audio"]), batch["audio"], strict=True):
            try:
                arrays.append(decode_audio(src, self.options))
            except Exception as err:  # noqa: BLE001 - any unreadable file is a bad sample, never a crash
                self.counter.skip(rid, getattr(err, "kind", "unreadable_audio"), str(err))
                arrays.append(None)
        out["audio"] = arrays
        out["sampling_rate"] = [self.options.sampling_rate] * len(arrays)
        return out


#: Key of the batch :class:`BadSampleFilter` returns when no example of a batch is usable.
SKIPPED_BATCH_KEY = "skipped_batch"


def skipped_batch(num_examples: int) -> dict[str, torch.Tensor]:
    """The stand-in for a batch in which no example is usable: ``{"skipped_batch": n, "labels": (0, 1) tensor}``.

    ``labels`` is an empty tensor so that the Trainer's token count (`num_items_in_batch`, summed over the
    accumulated micro-batches and, under DDP, over processes) still works and counts 0 for it.
    """
    return {
        SKIPPED_BATCH_KEY: torch.tensor(int(num_examples)),
        "labels": torch.empty((0, 1), dtype=torch.long),
    }


def is_skipped_batch(batch: Any) -> bool:
    """`True` for the stand-in batch of :func:`skipped_batch` (the trainer skips it; see `BadSampleFilter`)."""
    return isinstance(batch, Mapping) and SKIPPED_BATCH_KEY in batch


class BadSampleFilter:
    """Wrap a collator: drop examples without audio or that the processor rejects (empty, NaN, too long), count them.

    The whole batch is tried first; only when it fails are examples tried one by one, so the common case costs
    nothing. Each rejected example is counted once in the split's `BadRecordCounter` (kind
    ``rejected_by_processor``).

    A batch in which no example is usable does not end the run: the filter returns the stand-in
    :func:`skipped_batch` (``is_skipped_batch(batch)`` is `True`) and counts it in ``skipped_batches``. The
    trainer's ``training_step`` must recognise it and, so that DDP processes stay in step, still run a backward
    pass of a zero loss over every trainable parameter (see `DTWAlignTrainer.training_step`); ``prediction_step``
    returns ``(None, None, None)`` for it.

    Args:
        collator: the collator (`DataCollatorSpeechTranslation`); a `ValueError`/`TypeError` from it rejects.
        counters (`dict[str, BadRecordCounter]`, *optional*): per-split counters of `load_splits`.
        role (`str`, defaults to `"train"`): which counter this filter reports to (one filter per split, or pass
            the role at call time with :meth:`for_role`).
    """

    def __init__(self, collator, counters: dict[str, Any] | None = None, role: str = "train"):
        self.collator, self.counters, self.role = collator, counters or {}, role
        self.skipped = 0
        self.skipped_batches = 0

    def for_role(self, role: str) -> BadSampleFilter:
        """The same filter reporting to another split's counter (e.g. ``"eval"``, ``"test"``)."""
        return BadSampleFilter(self.collator, self.counters, role)

    def _skip(self, feature: dict, kind: str, detail: str) -> None:
        self.skipped += 1
        counter = self.counters.get(self.role)
        if counter is not None:
            counter.skip(feature.get("id"), kind, detail)

    def __call__(self, features: list[dict]) -> dict:
        good = []
        for feature in features:
            if "audio" in feature and feature["audio"] is None:
                continue  # already counted by SafeAudioDecoder
            good.append(feature)
        if not good:
            return self._skipped_batch(features, "every example failed to decode")
        try:
            return self.collator(good)
        except (ValueError, TypeError) as batch_err:
            kept = []
            for feature in good:
                try:
                    self.collator([feature])
                    kept.append(feature)
                except (ValueError, TypeError) as err:
                    self._skip(feature, "rejected_by_processor", str(err))
            if not kept:
                return self._skipped_batch(features, str(batch_err))
            return self.collator(kept)

    def _skipped_batch(self, features: list[dict], reason: str) -> dict:
        self.skipped_batches += 1
        ids = [f.get("id") for f in features]
        logger.warning(f"Skipping a batch of {len(features)} examples with no usable one ({reason}); ids {ids}")
        return skipped_batch(len(features))


__all__ = ["SKIPPED_BATCH_KEY", "BadSampleFilter", "SafeAudioDecoder", "is_skipped_batch", "skipped_batch"]
