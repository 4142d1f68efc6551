"""Bad samples at batch time: decode-on-access that never raises, and a collator wrapper that drops what fails.

A training batch passes, in order: `SafeAudioDecoder` (map-style datasets: `Dataset.with_transform`; an
unreadable file becomes `audio=None` and is counted) -> `BadSampleFilter` (drops `audio=None` examples and the
ones the collator rejects, counts them) -> the collator (`dtw_align_hf.data.collator`).
"""

from __future__ import annotations

from typing import Any

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


class BadSampleFilter:
    """Wrap a collator: drop examples without audio or that the processor rejects (empty, NaN, too long), count them.

    The whole batch is tried first; only when it fails are examples tried one by one, so the common case costs
    nothing. A batch with no usable example raises (it cannot be skipped without desynchronising processes).
    """

    def __init__(self, collator, counters: dict[str, Any] | None = None, role: str = "train"):
        self.collator, self.counters, self.role = collator, counters or {}, role
        self.skipped = 0

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
                raise ValueError(f"No usable example in this batch: {batch_err}") from batch_err
            return self.collator(kept)


__all__ = ["BadSampleFilter", "SafeAudioDecoder"]
