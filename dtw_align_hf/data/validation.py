"""Record validation: skip-and-count bad records, fail early on a dataset-wide missing column.

Two kinds of problems, two behaviours:

- **a bad record** (unreadable audio, empty transcript or translation, a column missing in that record, a
  sampling rate that cannot be resampled, audio longer than the maximum) is skipped; a warning names the
  record and the reason, and :class:`BadRecordCounter` counts it by kind. Training goes on.
- **a column missing from the whole dataset** is a configuration error: :func:`check_columns` raises
  :class:`MissingColumnError` at load time, before any training, listing the columns that exist and how to map
  them.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from transformers.utils import logging


logger = logging.get_logger(__name__)

#: Every bad-record kind the loaders count.
BAD_RECORD_KINDS: tuple[str, ...] = (
    "unreadable_audio",
    "bad_sampling_rate",
    "bad_channels",
    "too_long",
    "too_short",
    "empty_transcript",
    "empty_translation",
    "missing_column",
    "bad_line",
    "duplicate_id",
    "rejected_by_processor",
)


class MissingColumnError(KeyError):
    """A column the loader needs is missing from the whole dataset (raised before training starts)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def check_columns(
    columns: Iterable[str] | None,
    required: Mapping[str, str] | Iterable[str],
    *,
    dataset_name: str = "dataset",
    hint: str | None = None,
) -> None:
    """Raise :class:`MissingColumnError` if any required column is absent.

    Args:
        columns (`Iterable[str]`, *optional*): the dataset's column names; `None` (unknown, e.g. a stream without
            features) skips the check.
        required (`Mapping[str, str]` or `Iterable[str]`): needed columns; a mapping goes from the schema field
            ("transcript") to the dataset column ("sentence"), so the message can say which role is missing.
        dataset_name (`str`): named in the message.
        hint (`str`, *optional*): appended to the message (e.g. the name of the ``column_mapping`` argument).
    """
    if columns is None:
        return
    have = list(columns)
    pairs = list(required.items()) if isinstance(required, Mapping) else [(c, c) for c in required]
    missing = [(role, col) for role, col in pairs if col not in have]
    if not missing:
        return
    what = ", ".join(f"{col!r}" + (f" (for {role})" if role != col else "") for role, col in missing)
    msg = f"{dataset_name} has no column {what}. Existing columns: {sorted(have)}."
    if hint:
        msg += " " + hint
    raise MissingColumnError(msg)


class BadRecordCounter:
    """Counts skipped records by kind, once per record, and warns once per record, naming it.

    A record is identified by its id (records without one by the kind and message), so a bad file read again in a
    second epoch, decoded again for the test-time alignment plots, or rejected again by the collator counts once.
    `skipped`, `counts` and `summary()` are per split: use one counter per split.

    Counts made in other processes reach this one in two ways:

    - **DataLoader workers** (and DDP ranks on one machine or a shared file system): with `spool_dir` set (the
      loaders of `load_splits` set `<output_dir>/_bad_records`), every new skip is also appended to
      `<spool_dir>/<name>.<pid>.jsonl`; reading `counts`, `skipped` or `summary()` merges those files first.
    - **DDP processes**: :func:`gather_bad_record_counters` (collective, every rank calls it) merges the counters of
      all ranks with `torch.distributed.all_gather_object`.

    Counting is thread-safe.

    Args:
        name (`str`): the dataset name used in messages (and the spool file names).
        max_warnings (`int`, defaults to 50): per-record warnings after this many are summarised instead, so a
            broken dataset cannot flood the log.
        spool_dir (`str` or `os.PathLike`, *optional*): a folder shared by the processes of one run.
    """

    def __init__(self, name: str = "dataset", max_warnings: int = 50, spool_dir: str | os.PathLike | None = None):
        self.name = name
        self.max_warnings = max_warnings
        self.spool_dir = None if spool_dir is None else str(spool_dir)
        self._skips: dict[str, tuple[str, str]] = {}  # record key -> (kind, detail)
        self._ok_ids: set[str] = set()
        self._anonymous_ok = 0
        self._warned = 0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # picklable (datasets fingerprints map() arguments; workers)
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @staticmethod
    def _key(record_id: Any, kind: str, detail: str) -> str:
        return f"id:{record_id}" if record_id not in (None, "") else f"anon:{kind}:{detail}"

    def ok(self, record_id: Any = None) -> None:
        """Count a record that passed (once per id; records without an id are counted every time)."""
        with self._lock:
            if record_id in (None, ""):
                self._anonymous_ok += 1
            else:
                self._ok_ids.add(f"id:{record_id}")

    def skip(self, record_id: Any, kind: str, detail: str = "") -> bool:
        """Count a skipped record and warn with its id and the reason; `False` if it was counted before."""
        key = self._key(record_id, kind, detail)
        with self._lock:
            if key in self._skips:
                return False
            self._skips[key] = (kind, detail)
            self._warned += 1
            n = self._warned
        if self.spool_dir is not None:
            self._spool({"key": key, "kind": kind, "detail": detail})
        if n <= self.max_warnings:
            logger.warning(f"{self.name}: skipping record {record_id!r} ({kind}){': ' + detail if detail else ''}")
        elif n == self.max_warnings + 1:
            logger.warning(f"{self.name}: more bad records; further per-record warnings are suppressed")
        return True

    # ------------------------------------------------------------------ other processes

    def _spool_file(self, pid: int | str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.name)
        return Path(self.spool_dir) / f"{slug}.{pid}.jsonl"

    def _spool(self, entry: dict[str, str]) -> None:
        path = self._spool_file(os.getpid())
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def merge_spool(self) -> None:
        """Add the skips that other processes of this run wrote to `spool_dir` (no-op without one)."""
        if self.spool_dir is None or not Path(self.spool_dir).is_dir():
            return
        pattern = self._spool_file("*").name
        for path in sorted(Path(self.spool_dir).glob(pattern)):
            if not re.fullmatch(re.escape(pattern).replace(r"\*", r"\d+"), path.name):
                continue  # another counter whose name starts like this one's
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # a line cut by a killed worker
                    continue
                with self._lock:
                    self._skips.setdefault(entry["key"], (entry["kind"], entry.get("detail", "")))

    def state_dict(self) -> dict[str, Any]:
        """What :meth:`merge` needs from another process's counter (picklable)."""
        self.merge_spool()
        with self._lock:
            return {"skips": dict(self._skips), "ok_ids": set(self._ok_ids), "anonymous_ok": self._anonymous_ok}

    def merge(self, other: BadRecordCounter | Mapping[str, Any]) -> None:
        """Add another counter's records (a `BadRecordCounter` or its `state_dict()`); shared records count once."""
        state = other.state_dict() if isinstance(other, BadRecordCounter) else other
        with self._lock:
            for key, value in state["skips"].items():
                self._skips.setdefault(key, tuple(value))
            self._ok_ids |= set(state["ok_ids"])
            self._anonymous_ok = max(self._anonymous_ok, int(state["anonymous_ok"]))

    # ------------------------------------------------------------------ results

    @property
    def counts(self) -> Counter[str]:
        """Skipped records per kind (unique records)."""
        self.merge_spool()
        with self._lock:
            return Counter(kind for kind, _ in self._skips.values())

    @property
    def seen(self) -> int:
        """Records looked at (passed or skipped), each counted once."""
        with self._lock:
            return len(self._ok_ids | set(self._skips)) + self._anonymous_ok

    @property
    def skipped(self) -> int:
        """Total number of skipped records (unique)."""
        return sum(self.counts.values())

    def skipped_records(self) -> dict[str, str]:
        """`{record: kind}` of every skipped record (record ids as given; anonymous ones by kind and message)."""
        self.merge_spool()
        with self._lock:
            return {key.split(":", 1)[1]: kind for key, (kind, _) in self._skips.items()}

    def summary(self) -> dict[str, int]:
        """``{"seen": n, "skipped": k, <kind>: count, ...}``."""
        counts = self.counts
        return {"seen": self.seen, "skipped": sum(counts.values()), **dict(counts)}

    def log_summary(self) -> None:
        """One info line (or a warning if anything was skipped) with the counts."""
        summary = self.summary()
        seen, skipped = summary.pop("seen"), summary.pop("skipped")
        if skipped:
            logger.warning(f"{self.name}: skipped {skipped} of {seen} records: {summary}")
        else:
            logger.info(f"{self.name}: all {seen} records valid")

    def __repr__(self) -> str:
        return f"BadRecordCounter({self.name!r}, {self.summary()})"


def gather_bad_record_counters(counters: Mapping[str, BadRecordCounter]) -> dict[str, BadRecordCounter]:
    """Merge each split's counter across DDP processes (collective: every rank must call it, in the same order).

    Worker-process counts are merged first (from the spool files), then every rank's counters are exchanged with
    `torch.distributed.all_gather_object`; a record counted by several ranks counts once. Without an initialised
    process group (one process) the counters are only merged with their spool files. Returns `counters` (updated in
    place), so the run script can write `{role: c.skipped}` / `c.summary()` into results.json and the card.
    """
    states = {role: counter.state_dict() for role, counter in counters.items()}
    try:
        import torch.distributed as dist

        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    except ImportError:  # pragma: no cover - torch is a dependency
        distributed = False
    if distributed:
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, states)
        for other in gathered:
            for role, state in other.items():
                if role in counters:
                    counters[role].merge(state)
    return dict(counters)


def clear_bad_record_spool(spool_dir: str | os.PathLike) -> int:
    """Delete the spool files (`*.<pid>.jsonl`) of an earlier run in `spool_dir`; returns how many were removed.

    Call it on the main process before `load_splits` when a run starts afresh in a reused output folder (not on
    resume: there the records counted before the interruption still belong to the run). Other files are kept.
    """
    removed = 0
    path = Path(spool_dir)
    if not path.is_dir():
        return 0
    for file in path.iterdir():
        if file.is_file() and re.fullmatch(r".+\.\d+\.jsonl", file.name):
            file.unlink()
            removed += 1
    return removed


def check_text_fields(record: Mapping[str, Any], fields: Mapping[str, str]) -> tuple[str, str] | None:
    """Return ``(kind, detail)`` for the first missing/empty text field of ``record``, or `None` if all are fine.

    Args:
        record: the raw record.
        fields: schema field -> record key, e.g. ``{"transcript": "sentence", "translation": "translation"}``.
    """
    for role, key in fields.items():
        if key not in record:
            return "missing_column", f"no {key!r} field (for {role})"
        value = record[key]
        if value is None or not str(value).strip():
            return f"empty_{role}", f"{key!r} is empty"
    return None


__all__ = [
    "BAD_RECORD_KINDS",
    "BadRecordCounter",
    "MissingColumnError",
    "check_columns",
    "check_text_fields",
    "clear_bad_record_spool",
    "gather_bad_record_counters",
]
