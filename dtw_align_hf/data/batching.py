"""Batching: by total audio length (``max_batch_seconds``) for map-style datasets and streams, and length bucketing.

Speech batches are usually formed by audio length rather than by a number of examples (fairseq's ``--max-tokens``),
so that a batch of long clips and one of short clips cost about the same memory. Here a batch's size is its
*padded* length: ``len(batch) * longest clip`` in seconds, which is what the speech encoder computes on; it never
exceeds ``max_batch_seconds`` (so the plain sum of durations does not either). A single clip longer than the
limit cannot be split: it forms a batch of its own (the duration limits, ``--max_duration``, normally drop it at
load time; a warning says so). Every example is in exactly one batch per epoch.

- map-style datasets: :class:`SecondsBatchSampler` (a batch sampler over the ``duration`` column: no audio is
  decoded). Under DDP give it ``num_replicas``: the batch count is then made a multiple of the number of
  processes (by halving the largest batches), so accelerate's batch-sampler sharding hands every process the same
  number of batches without repeating any.
- streams: :class:`SecondsBatchedStream` (an ``IterableDataset`` yielding lists of examples: use it with
  ``DataLoader(batch_size=None, collate_fn=collator)``). It splits the stream between processes itself
  (``rank``/``world_size``), so its DataLoader must not be sharded again.

Both sort examples by duration inside a shuffled window before cutting batches (little padding), then shuffle the
batch order; both are deterministic for a seed and an epoch (`set_epoch`).

Length bucketing by example count (the Trainer's ``batch_size``): :func:`length_grouped_sampler`,
:func:`sort_by_length_buffered`, :func:`bucket_by_length`.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from transformers.utils import logging


logger = logging.get_logger(__name__)


def _padded_seconds(count: int, longest: float) -> float:
    return count * longest


def batches_by_seconds(durations: Sequence[float], order: Iterable[int], max_batch_seconds: float) -> list[list[int]]:
    """Cut ``order`` (indices into ``durations``) greedily into batches of at most ``max_batch_seconds`` padded
    seconds (``len(batch) * max duration``); an index whose clip alone exceeds the limit gets a batch of its own."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0.0
    for i in order:
        d = float(durations[i])
        if current and _padded_seconds(len(current) + 1, max(longest, d)) > max_batch_seconds:
            batches.append(current)
            current, longest = [], 0.0
        if not current and d > max_batch_seconds:
            logger.warning_once(
                f"A clip of {d:.1f} s is longer than max_batch_seconds={max_batch_seconds}; it forms a batch of its "
                "own (lower --max_duration to drop such clips at load time)."
            )
        current.append(i)
        longest = max(longest, d)
    if current:
        batches.append(current)
    return batches


def _sorted_windows(order: np.ndarray, durations: Sequence[float], window: int | None) -> list[int]:
    """Sort by duration inside consecutive windows of ``window`` indices (all at once for `None`)."""
    if window is None or window >= len(order):
        return sorted(order.tolist(), key=lambda i: float(durations[i]))
    out: list[int] = []
    for start in range(0, len(order), window):
        out.extend(sorted(order[start : start + window].tolist(), key=lambda i: float(durations[i])))
    return out


def _split_to_multiple(batches: list[list[int]], multiple: int) -> list[list[int]]:
    """Halve the largest multi-example batches until the batch count is a multiple of ``multiple``."""
    batches = list(batches)
    while len(batches) % multiple:
        k = max(range(len(batches)), key=lambda j: len(batches[j]))
        if len(batches[k]) < 2:
            logger.warning(
                f"{len(batches)} single-example batches cannot be split into a multiple of {multiple}; accelerate "
                "will repeat a few batches to give every process the same number."
            )
            break
        half = len(batches[k]) // 2
        batches[k : k + 1] = [batches[k][:half], batches[k][half:]]
    return batches


class _Epoch:
    """Holds the epoch; accelerate's `DataLoaderShard.set_epoch` reaches it as `batch_sampler.sampler.set_epoch`."""

    def __init__(self) -> None:
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)


class SecondsBatchSampler(torch.utils.data.Sampler):
    """A batch sampler for map-style datasets: batches of at most ``max_batch_seconds`` padded seconds.

    Args:
        durations (`Sequence[float]`): seconds per example (a dataset's ``duration`` column; see
            :meth:`from_dataset`).
        max_batch_seconds (`float`): the limit per batch (per process), padded: ``len(batch) * longest clip``.
        shuffle (`bool`, defaults to `True`): shuffle (seeded, per epoch); `False` keeps the dataset order (no
            sorting either).
        seed (`int`): the shuffling seed; epoch ``e`` uses ``(seed, e)`` (call `set_epoch`).
        num_replicas (`int`, defaults to 1): the number of DDP processes; the batch count is made a multiple of it.
        sort_window (`int`, *optional*, defaults to 1000): examples sorted by duration together (after the
            shuffle); `None` sorts the whole epoch (least padding, least randomness).

    Every index appears in exactly one batch per epoch. Iterating yields lists of indices; ``len()`` is the number of
    batches of the current epoch.
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_batch_seconds: float,
        *,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        sort_window: int | None = 1000,
    ) -> None:
        if max_batch_seconds is None or max_batch_seconds <= 0:
            raise ValueError(f"max_batch_seconds must be a positive number of seconds, got {max_batch_seconds}")
        self.durations = [float(d) for d in durations]
        self.max_batch_seconds = float(max_batch_seconds)
        self.shuffle, self.seed, self.num_replicas, self.sort_window = shuffle, seed, max(1, num_replicas), sort_window
        self.sampler = _Epoch()
        self._cache: tuple[int, list[list[int]]] | None = None

    @classmethod
    def from_dataset(cls, dataset: Any, max_batch_seconds: float, *, duration_key: str = "duration", **kwargs):
        """Read the durations from a map-style dataset's column (no audio is decoded)."""
        names = dataset.column_names
        if duration_key not in names:
            raise KeyError(
                f"max_batch_seconds needs a {duration_key!r} column (seconds); columns: {names}. The loaders in "
                "dtw_align_hf.data add it."
            )
        return cls(dataset.with_format(None)[duration_key], max_batch_seconds, **kwargs)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def batches(self) -> list[list[int]]:
        """This epoch's batches (lists of indices)."""
        epoch = self.sampler.epoch
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        n = len(self.durations)
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch])
            order = _sorted_windows(rng.permutation(n), self.durations, self.sort_window)
        else:
            order = list(range(n))
        batches = batches_by_seconds(self.durations, order, self.max_batch_seconds)
        if self.shuffle:
            perm = np.random.default_rng([self.seed, epoch, 1]).permutation(len(batches))
            batches = [batches[i] for i in perm]
        if self.num_replicas > 1:
            batches = _split_to_multiple(batches, self.num_replicas)
        self._cache = (epoch, batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()

    def __len__(self) -> int:
        return len(self.batches())


def _example_seconds(example: Mapping[str, Any], duration_key: str, sampling_rate: int) -> float:
    if example.get(duration_key) is not None:
        return float(example[duration_key])
    audio = example.get("audio")
    if isinstance(audio, Mapping):
        return len(audio["array"]) / float(audio.get("sampling_rate") or sampling_rate)
    return len(audio) / sampling_rate if audio is not None and not isinstance(audio, str) else 0.0


class SecondsBatchedStream(torch.utils.data.IterableDataset):
    """Wrap a stream (``datasets.IterableDataset`` or any iterable of examples) into one that yields batches (lists
    of examples) of at most ``max_batch_seconds`` padded seconds.

    Args:
        dataset: the stream; examples need ``duration`` (seconds) or a decoded ``audio``.
        max_batch_seconds (`float`): the limit per batch (per process).
        buffer_size (`int`, defaults to 1000): examples gathered, sorted by duration and cut into batches at a time
            (the batches of a buffer are shuffled); memory holds one buffer of decoded clips.
        seed (`int`): shuffling seed (epoch ``e`` uses ``(seed, e, rank)``; `set_epoch` also reaches a
            ``datasets.IterableDataset``'s own shuffling).
        rank, world_size (`int`): this process and the number of processes. The stream is split here (with
            ``datasets.distributed.split_dataset_by_node``: whole files per process when it has at least
            ``world_size`` shards), so its DataLoader must not be sharded again (do not pass it through
            ``accelerator.prepare``). Processes may get different numbers of batches (train with ``max_steps``).
        duration_key (`str`), sampling_rate (`int`): where the duration comes from.

    Use with ``torch.utils.data.DataLoader(stream, batch_size=None, collate_fn=collator, num_workers=...)``. With
    DataLoader workers, a ``datasets.IterableDataset`` spreads its shards over the workers itself; another iterable
    is split example by example.
    """

    def __init__(
        self,
        dataset: Any,
        max_batch_seconds: float,
        *,
        buffer_size: int = 1000,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        duration_key: str = "duration",
        sampling_rate: int = 16000,
    ) -> None:
        if max_batch_seconds is None or max_batch_seconds <= 0:
            raise ValueError(f"max_batch_seconds must be a positive number of seconds, got {max_batch_seconds}")
        self.dataset, self.max_batch_seconds, self.buffer_size, self.seed = (
            dataset,
            float(max_batch_seconds),
            buffer_size,
            seed,
        )
        self.rank, self.world_size = rank, world_size
        self.duration_key, self.sampling_rate = duration_key, sampling_rate
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _source(self) -> Iterable[Mapping[str, Any]]:
        import datasets

        source = self.dataset
        is_hf = isinstance(source, datasets.IterableDataset)
        if is_hf:
            source.set_epoch(self.epoch)
        if self.world_size > 1:
            if is_hf:
                from datasets.distributed import split_dataset_by_node

                source = split_dataset_by_node(source, rank=self.rank, world_size=self.world_size)
            else:
                source = itertools.islice(source, self.rank, None, self.world_size)
        worker = torch.utils.data.get_worker_info()
        if worker is not None and worker.num_workers > 1 and not is_hf:
            source = itertools.islice(source, worker.id, None, worker.num_workers)
        return source

    def __iter__(self) -> Iterator[list[Mapping[str, Any]]]:
        worker = torch.utils.data.get_worker_info()
        rng = random.Random(hash((self.seed, self.epoch, self.rank, worker.id if worker else 0)))
        buffer: list[Mapping[str, Any]] = []

        def flush(examples: list[Mapping[str, Any]]) -> Iterator[list[Mapping[str, Any]]]:
            seconds = [_example_seconds(ex, self.duration_key, self.sampling_rate) for ex in examples]
            order = sorted(range(len(examples)), key=lambda i: seconds[i])
            batches = batches_by_seconds(seconds, order, self.max_batch_seconds)
            rng.shuffle(batches)
            for batch in batches:
                yield [examples[i] for i in batch]

        for ex in self._source():
            buffer.append(ex)
            if len(buffer) >= self.buffer_size:
                yield from flush(buffer)
                buffer = []
        if buffer:
            yield from flush(buffer)


def seconds_dataloader(
    dataset: Any,
    collate_fn: Any,
    max_batch_seconds: float,
    *,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    pin_memory: bool = False,
    accelerator: Any = None,
) -> torch.utils.data.DataLoader:
    """A training DataLoader with batches of at most ``max_batch_seconds`` padded seconds (map-style or stream).

    For a trainer's ``get_train_dataloader``::

        return seconds_dataloader(self.train_dataset, self.data_collator, max_batch_seconds, seed=args.seed,
                                  rank=args.process_index, world_size=args.world_size,
                                  num_workers=args.dataloader_num_workers, accelerator=self.accelerator)

    Map-style: a :class:`SecondsBatchSampler` (batch count a multiple of ``world_size``), prepared by
    ``accelerator`` (which shards the batches between processes). Stream: a :class:`SecondsBatchedStream` split
    between processes here, so it is returned unprepared (preparing it would shard it again); the Trainer moves
    its batches to the device.
    """
    import datasets

    common = {"collate_fn": collate_fn, "num_workers": num_workers, "pin_memory": pin_memory}
    if isinstance(dataset, (datasets.IterableDataset, torch.utils.data.IterableDataset)):
        batches = SecondsBatchedStream(dataset, max_batch_seconds, seed=seed, rank=rank, world_size=world_size)
        return torch.utils.data.DataLoader(batches, batch_size=None, **common)
    sampler = SecondsBatchSampler.from_dataset(dataset, max_batch_seconds, seed=seed, num_replicas=world_size)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, **common)
    return accelerator.prepare(loader) if accelerator is not None else loader


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
    "SecondsBatchSampler",
    "SecondsBatchedStream",
    "batches_by_seconds",
    "bucket_by_length",
    "length_grouped_sampler",
    "seconds_dataloader",
    "sort_by_length_buffered",
]
