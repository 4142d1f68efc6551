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

import threading
from collections import Counter
from collections.abc import Iterable, Mapping
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
    """Counts skipped records by kind and warns once per record, naming it.

    Counting is thread-safe; with DataLoader worker processes each worker counts its own records (the warnings
    still name every record).

    Args:
        name (`str`): the dataset name used in messages.
        max_warnings (`int`, defaults to 50): per-record warnings after this many are summarised instead, so a
            broken dataset cannot flood the log.
    """

    def __init__(self, name: str = "dataset", max_warnings: int = 50) -> None:
        self.name = name
        self.max_warnings = max_warnings
        self.counts: Counter[str] = Counter()
        self.seen = 0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # picklable (datasets fingerprints map() arguments)
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def ok(self) -> None:
        """Count a record that passed."""
        with self._lock:
            self.seen += 1

    def skip(self, record_id: Any, kind: str, detail: str = "") -> None:
        """Count a skipped record and warn with its id and the reason."""
        with self._lock:
            self.seen += 1
            self.counts[kind] += 1
            n = sum(self.counts.values())
        if n <= self.max_warnings:
            logger.warning(f"{self.name}: skipping record {record_id!r} ({kind}){': ' + detail if detail else ''}")
        elif n == self.max_warnings + 1:
            logger.warning(f"{self.name}: more bad records; further per-record warnings are suppressed")

    @property
    def skipped(self) -> int:
        """Total number of skipped records."""
        return sum(self.counts.values())

    def summary(self) -> dict[str, int]:
        """``{"seen": n, "skipped": k, <kind>: count, ...}``."""
        return {"seen": self.seen, "skipped": self.skipped, **dict(self.counts)}

    def log_summary(self) -> None:
        """One info line (or a warning if anything was skipped) with the counts."""
        if self.skipped:
            logger.warning(f"{self.name}: skipped {self.skipped} of {self.seen} records: {dict(self.counts)}")
        else:
            logger.info(f"{self.name}: all {self.seen} records valid")

    def __repr__(self) -> str:
        return f"BadRecordCounter({self.name!r}, {self.summary()})"


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
]
