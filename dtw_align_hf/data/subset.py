"""Low-resource subsets: N hours per language, deterministic for a seed (the paper's 10-hour CoVoST 2 setting).

Selection rule (the same for map-style and streamed data): visit the examples in a seeded random order and add
each one whose language still needs audio; a language is full once its total reaches ``hours``. The last
utterance added is kept only if that brings the total closer to the target, so every language ends within half
an utterance of ``hours`` (when the data has enough), never more than one utterance away.

- map-style ``datasets.Dataset`` (local manifests, MuST-C, the demo corpus): uses the ``duration`` column only
  (no audio is decoded) and returns ``dataset.select(indices)``, indices in the seeded order.
- streamed ``datasets.IterableDataset`` (CoVoST 2 from the Hub): shuffled with a seeded buffer
  (``buffer_size``), then taken until every language is full; returns an ``IterableDataset`` that stops there.
  Deterministic for a seed and a fixed shard order. Streams must have a ``duration`` field (the loaders here
  add it after decoding). With a single ``hours`` number the stream stops once every language seen so far is
  full (right for one CoVoST 2 direction); for a stream mixing languages pass ``{lang: hours}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
from transformers.utils import logging


logger = logging.get_logger(__name__)


class _HoursBudget:
    """Tracks seconds per language against a target; decides whether to keep each utterance."""

    def __init__(self, hours: float | Mapping[str, float], languages: Iterable[str] | None = None) -> None:
        self.targets: dict[str, float] | None = None
        self.default = None
        if isinstance(hours, Mapping):
            self.targets = {k: float(v) * 3600 for k, v in hours.items()}
        else:
            if hours <= 0:
                raise ValueError(f"hours must be positive, got {hours}")
            self.default = float(hours) * 3600
        self.totals: dict[str, float] = {}
        self.full: set[str] = set()

    def target(self, lang: str) -> float | None:
        if self.targets is not None:
            return self.targets.get(lang)
        return self.default

    def offer(self, lang: str, seconds: float) -> bool:
        """Keep this utterance? Updates the totals."""
        target = self.target(lang)
        if target is None or lang in self.full:
            return False
        total = self.totals.get(lang, 0.0)
        new = total + seconds
        if new < target:
            self.totals[lang] = new
            return True
        self.full.add(lang)
        if abs(new - target) <= abs(total - target):  # the last one only if it gets closer to the target
            self.totals[lang] = new
            return True
        return False

    def done(self) -> bool:
        """Every listed language (mapping) or every language seen so far (single number) is full."""
        if self.targets is not None:
            return all(lang in self.full for lang in self.targets)
        return bool(self.full) and all(lang in self.full for lang in self.totals)


def _lang_of(example: Mapping[str, Any], language_key: str | None) -> str:
    return str(example.get(language_key, "")) if language_key else ""


def subset_by_hours(
    dataset: Any,
    hours: float | Mapping[str, float],
    *,
    seed: int = 0,
    language_key: str | None = "src_lang",
    duration_key: str = "duration",
    buffer_size: int = 1000,
):
    """Take ``hours`` of audio per language, deterministically for ``seed``.

    Args:
        dataset: a map-style ``datasets.Dataset`` (uses its ``duration`` column, decodes nothing), a streamed
            ``datasets.IterableDataset``, or any list of example dicts.
        hours (`float` or `Mapping[str, float]`): hours per language, or ``{lang: hours}`` (languages not listed
            are dropped; a stream stops once all listed languages are full).
        seed (`int`): order of the visit (map-style: a permutation; streams: ``shuffle(seed, buffer_size)``).
        language_key (`str`, *optional*, defaults to `"src_lang"`): the field that defines a language; `None`
            treats the whole dataset as one language.
        duration_key (`str`): seconds per example.
        buffer_size (`int`, defaults to 1000): shuffle buffer for streams. The buffer holds decoded examples
            (1000 CoVoST 2 clips of ~5 s at 16 kHz: ~320 MB); shard order is shuffled with the same seed.

    Returns:
        The same kind of dataset (a ``Dataset`` via ``select``, an ``IterableDataset``, or a list).
    """
    import datasets

    if isinstance(dataset, datasets.IterableDataset):
        return _subset_stream(dataset, hours, seed, language_key, duration_key, buffer_size)
    if isinstance(dataset, datasets.Dataset):
        if duration_key not in dataset.column_names:
            raise KeyError(
                f"subset_by_hours needs a {duration_key!r} column; columns: {dataset.column_names}. The loaders "
                "in dtw_align_hf.data add it."
            )
        durations = np.asarray(dataset.with_format(None)[duration_key], dtype=np.float64)
        if language_key and language_key in dataset.column_names:
            langs = [str(x) for x in dataset.with_format(None)[language_key]]
        else:
            langs = [""] * len(durations)
        order = np.random.default_rng(seed).permutation(len(durations))
        budget = _HoursBudget(hours)
        keep = [int(i) for i in order if budget.offer(langs[i], float(durations[i]))]
        _report(budget)
        return dataset.select(keep)
    examples = list(dataset)
    order = np.random.default_rng(seed).permutation(len(examples))
    budget = _HoursBudget(hours)
    out = [examples[i] for i in order if budget.offer(_lang_of(examples[i], language_key), examples[i][duration_key])]
    _report(budget)
    return out


def _report(budget: _HoursBudget) -> None:
    for lang, total in sorted(budget.totals.items()):
        target = budget.target(lang) or 0.0
        short = "" if lang in budget.full else " (the data ran out before the target)"
        logger.info(f"subset_by_hours: {lang or 'all'}: {total / 3600:.3f} h of {target / 3600:.3f} h{short}")


def _subset_stream(
    dataset: Any,
    hours: float | Mapping[str, float],
    seed: int,
    language_key: str | None,
    duration_key: str,
    buffer_size: int,
):
    import datasets

    shuffled = dataset.shuffle(seed=seed, buffer_size=buffer_size)

    def gen(source: Any) -> Iterator[dict[str, Any]]:
        budget = _HoursBudget(hours)
        for ex in source:
            if budget.offer(_lang_of(ex, language_key), float(ex[duration_key])):
                yield ex
            if budget.done():
                break
        _report(budget)

    return datasets.IterableDataset.from_generator(gen, gen_kwargs={"source": shuffled})


__all__ = ["subset_by_hours"]
