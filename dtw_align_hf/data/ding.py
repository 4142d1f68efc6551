"""The demo corpus's text: German -> English sentence pairs from the Ding dictionary, and parallel-TSV reading.

The pairs are committed as ``resources/ding_de_en.tsv.gz`` (GPL-2.0-or-later, see ``resources/LICENSE.ding.md``);
:func:`extract_ding_pairs` regenerates them from Debian's ``trans-de-en`` package.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from pathlib import Path


RESOURCES = Path(__file__).resolve().parent / "resources"
DING_PAIRS_FILE = RESOURCES / "ding_de_en.tsv.gz"


def read_parallel_tsv(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Read ``source<TAB>target`` lines (``.gz`` allowed); ``#`` comment lines and a ``source/target`` header are
    skipped, whitespace is normalised, lines without two non-empty fields are ignored."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    pairs: list[tuple[str, str]] = []
    first = True
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2:
                continue
            src, tgt = " ".join(parts[0].split()), " ".join(parts[1].split())
            is_header = first and (src.lower(), tgt.lower()) in {("source", "target"), ("src", "tgt")}
            first = False
            if is_header:
                continue
            if src and tgt:
                pairs.append((src, tgt))
    return pairs


def demo_pairs() -> list[tuple[str, str]]:
    """The committed Ding German-English sentence pairs (6000, sorted by German sentence)."""
    return read_parallel_tsv(DING_PAIRS_FILE)


_DE_OK = re.compile(r"^[A-Za-zÄÖÜäöüß ,.?!'-]+$")
_EN_OK = re.compile(r"^[A-Za-z ,.?!'-]+$")


def extract_ding_pairs(
    ding_file: str | os.PathLike,
    *,
    min_words: int = 3,
    max_words: int = 14,
    limit: int | None = 6000,
) -> list[tuple[str, str]]:
    """Filter clean sentence pairs out of the Ding dictionary (maintainer tool; regenerates the resource file).

    Get the dictionary with ``apt-get download trans-de-en && dpkg -x trans-de-en_*.deb root``; the file is
    ``root/usr/share/trans/de-en``. Each line reads ``DE variants | sub-entries :: EN variants | sub-entries``;
    sub-entries aligned by position are often full example sentences translated by humans. Kept: both sides
    start upper-case and end in ``.?!`` with no other sentence punctuation, plain letters only (no digits,
    brackets, quotes, slashes, abbreviations), ``min_words..max_words`` German words, unique German and unique
    English sides; typographic apostrophes become ``'``. ``limit`` pairs are then chosen by the SHA-1 of the
    German sentence (a fixed pseudo-random sample) and returned sorted.
    """
    best: dict[str, str] = {}
    with open(ding_file, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or " :: " not in line:
                continue
            de, en = line.rstrip("\n").split(" :: ", 1)
            ds, es = de.split(" | "), en.split(" | ")
            if len(ds) != len(es):
                continue
            for d, e in zip(ds, es, strict=True):
                d = " ".join(d.replace("\u2019", "'").split())
                e = " ".join(e.replace("\u2019", "'").split())
                if not (_DE_OK.match(d) and _EN_OK.match(e)):
                    continue
                if not (d[:1].isupper() and e[:1].isupper() and d[-1] in ".?!" and e[-1] in ".?!"):
                    continue
                if any(c in s[:-1] for s in (d, e) for c in ".?!"):  # abbreviations, several sentences
                    continue
                words = d.split() + e.split()
                if any(w.startswith(("-", "'")) or w.endswith("-") for w in words) or d.isupper() or e.isupper():
                    continue
                if min_words <= len(d.split()) <= max_words and 2 <= len(e.split()) <= max_words + 6:
                    best.setdefault(d, e)
    seen_en: set[str] = set()
    pairs = []
    for d, e in sorted(best.items()):
        if e not in seen_en:
            seen_en.add(e)
            pairs.append((d, e))
    if limit is not None and len(pairs) > limit:
        pairs = sorted(pairs, key=lambda p: hashlib.sha1(p[0].encode()).hexdigest())[:limit]
    return sorted(pairs)


def write_ding_resource(ding_file: str | os.PathLike, out: str | os.PathLike = DING_PAIRS_FILE, **kwargs) -> Path:
    """Write :func:`extract_ding_pairs` output as the gzipped TSV resource (deterministic bytes: mtime 0)."""
    pairs = extract_ding_pairs(ding_file, **kwargs)
    header = (
        "# German-English sentence pairs from the Ding dictionary (https://dict.tu-chemnitz.de/), "
        "Copyright (c) Frank Richter <frank.richter@hrz.tu-chemnitz.de>, GPL-2.0-or-later; see LICENSE.ding.md.\n"
        "# Filtered by dtw_align_hf.data.demo.extract_ding_pairs from Debian trans-de-en 1.9-6 (devel 2023-01-30).\n"
        "source\ttarget\n"
    )
    body = header + "".join(f"{d}\t{e}\n" for d, e in pairs)
    out = Path(out)
    with open(out, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
        f.write(body.encode("utf-8"))
    return out


__all__ = [
    "DING_PAIRS_FILE",
    "RESOURCES",
    "demo_pairs",
    "extract_ding_pairs",
    "read_parallel_tsv",
    "write_ding_resource",
]
