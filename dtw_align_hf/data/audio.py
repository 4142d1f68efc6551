"""Audio decoding without torchcodec/FFmpeg: soundfile + ``scipy.signal.resample_poly``, explicit options.

``datasets`` 5.x decodes its ``Audio`` feature with torchcodec, which needs FFmpeg shared libraries and a
torch-matching build (https://github.com/huggingface/datasets/issues/7707). Every loader in this package therefore keeps audio
undecoded (a path, ``{"bytes", "path"}`` from ``Audio(decode=False)``, or a segment of a longer file) and calls
:func:`decode_audio`. Formats: whatever libsndfile reads (WAV, FLAC, OGG/Vorbis, OPUS, MP3 with soundfile >=
0.13). Where soundfile cannot read a file and torchcodec is importable, ``datasets``' own decoder is tried as a
fallback, so one code path serves CPU boxes and GPU machines with FFmpeg.
"""

from __future__ import annotations

import functools
import io
import math
import os
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile as sf
from scipy.signal import resample, resample_poly
from transformers.utils import logging


logger = logging.get_logger(__name__)

TARGET_SAMPLING_RATE = 16000


class AudioDecodeError(ValueError):
    """A record's audio cannot be used.

    Attributes:
        kind (`str`): ``"unreadable_audio"``, ``"bad_sampling_rate"``, ``"too_long"``, ``"too_short"`` or
            ``"bad_channels"``; the bad-record counters in :mod:`~dtw_align_hf.data.validation` use it.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class AudioOptions:
    """How raw audio becomes the model's input. Every field is explicit; the defaults suit HuBERT/mHuBERT.

    Args:
        sampling_rate (`int`, defaults to 16000): output rate in Hz (HuBERT and mHuBERT-147 expect 16 kHz).
        resample (`bool`, defaults to `True`): resample other rates with ``resample_poly``; if `False`, a record
            at another rate is a bad record (``"bad_sampling_rate"``).
        min_source_rate (`int`, defaults to 8000): source rates below this (Hz) are bad records even with
            ``resample=True``: upsampling cannot restore the missing speech band.
        max_resample_factor (`int`, defaults to 2000): ``resample_poly`` is used when the reduced up/down
            factors stay below this; odd rates beyond it use FFT resampling (``scipy.signal.resample``).
        mono (`str`, defaults to `"mean"`): down-mixing of multi-channel audio: ``"mean"`` (average the
            channels), ``"first"`` (keep channel 0) or ``"error"`` (multi-channel is a bad record).
        max_duration (`float`, *optional*, defaults to 30.0): seconds; longer records are skipped
            (``"too_long"``). HuBERT's memory grows with length; the paper's corpora stay below 30 s.
        min_duration (`float`, defaults to 0.1): seconds; shorter records are skipped (``"too_short"``), as
            the speech encoder needs at least a few frames (20 ms each).
        normalize_peak (`bool`, defaults to `False`): scale each clip to peak 1 (feature extractors usually
            normalise to zero mean / unit variance themselves).
    """

    sampling_rate: int = TARGET_SAMPLING_RATE
    resample: bool = True
    min_source_rate: int = 8000
    max_resample_factor: int = 2000
    mono: str = "mean"
    max_duration: float | None = 30.0
    min_duration: float | None = 0.1
    normalize_peak: bool = False

    def __post_init__(self) -> None:
        if self.mono not in ("mean", "first", "error"):
            raise ValueError(f"AudioOptions.mono must be 'mean', 'first' or 'error', got {self.mono!r}")
        if self.sampling_rate <= 0:
            raise ValueError(f"AudioOptions.sampling_rate must be positive, got {self.sampling_rate}")

    def check_rate(self, rate: float) -> None:
        """Raise :class:`AudioDecodeError` (``bad_sampling_rate``) if audio at ``rate`` Hz cannot be used."""
        if not rate or rate <= 0 or not math.isfinite(rate) or int(rate) != rate:
            raise AudioDecodeError("bad_sampling_rate", f"invalid sampling rate {rate!r}")
        if int(rate) == self.sampling_rate:
            return
        if not self.resample:
            raise AudioDecodeError(
                "bad_sampling_rate",
                f"audio is at {int(rate)} Hz, expected {self.sampling_rate} Hz and resampling is disabled "
                "(set AudioOptions(resample=True))",
            )
        if rate < self.min_source_rate:
            raise AudioDecodeError(
                "bad_sampling_rate",
                f"audio is at {int(rate)} Hz, below min_source_rate={self.min_source_rate} Hz; upsampling "
                "cannot restore the speech band",
            )

    def check_duration(self, seconds: float) -> None:
        """Raise :class:`AudioDecodeError` (``too_long``/``too_short``) if ``seconds`` is out of range."""
        if self.max_duration is not None and seconds > self.max_duration:
            raise AudioDecodeError("too_long", f"audio lasts {seconds:.2f} s > max_duration={self.max_duration} s")
        if self.min_duration is not None and seconds < self.min_duration:
            raise AudioDecodeError("too_short", f"audio lasts {seconds:.3f} s < min_duration={self.min_duration} s")


def resample_audio(audio: np.ndarray, orig_rate: int, target_rate: int, max_factor: int = 2000) -> np.ndarray:
    """Resample ``audio`` (shape `(T,)` or `(T, C)`) from ``orig_rate`` to ``target_rate`` Hz, float32 out.

    Polyphase filtering (``resample_poly``) for ordinary rate pairs (44.1k, 48k, 22.05k, 8k -> 16k); FFT
    resampling for odd rates whose reduced factors exceed ``max_factor`` (a 22051 Hz file would otherwise need
    a filter of millions of taps).
    """
    if orig_rate == target_rate:
        return audio.astype(np.float32, copy=False)
    g = math.gcd(int(orig_rate), int(target_rate))
    up, down = int(target_rate) // g, int(orig_rate) // g
    if max(up, down) <= max_factor:
        out = resample_poly(audio, up, down, axis=0)
    else:
        n_out = round(audio.shape[0] * target_rate / orig_rate)
        out = resample(audio, n_out, axis=0)
    return out.astype(np.float32, copy=False)


def _downmix(wav: np.ndarray, mono: str) -> np.ndarray:
    """(T, C) -> (T,) according to :attr:`AudioOptions.mono`."""
    if wav.ndim == 1:
        return wav
    if wav.shape[1] == 1:
        return wav[:, 0]
    if mono == "error":
        raise AudioDecodeError("bad_channels", f"audio has {wav.shape[1]} channels and AudioOptions.mono='error'")
    if mono == "first":
        return wav[:, 0]
    return wav.mean(axis=1)


def parse_segment_spec(spec: str) -> tuple[str, int | None, int | None]:
    """Split fairseq's ``path:offset:length`` audio field; plain paths come back as ``(path, None, None)``.

    For a ``.zip`` path offset/length are byte ranges into the (stored, uncompressed) zip; otherwise they are
    a start sample and a number of samples inside a longer audio file (MuST-C talks).
    """
    parts = spec.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return parts[0], int(parts[1]), int(parts[2])
    return spec, None, None


def _read_soundfile(source: Any, start: int | None = None, frames: int | None = None) -> tuple[np.ndarray, int]:
    """soundfile read of a path or file object -> ((T, C) float32, rate)."""
    kwargs: dict[str, Any] = {"dtype": "float32", "always_2d": True}
    if start is not None:
        kwargs["start"] = int(start)
    if frames is not None:
        kwargs["frames"] = int(frames)
    wav, rate = sf.read(source, **kwargs)
    return wav, int(rate)


def _read_with_datasets(data: bytes | str) -> tuple[np.ndarray, int]:
    """Fallback through ``datasets``' torchcodec decoder (needs torchcodec + FFmpeg)."""
    from datasets import Audio

    value = {"bytes": data, "path": None} if isinstance(data, bytes) else {"bytes": None, "path": data}
    decoded = Audio(decode=True).decode_example(value)
    arr = np.asarray(decoded["array"], dtype=np.float32)
    return arr.reshape(-1, 1) if arr.ndim == 1 else arr.T, int(decoded["sampling_rate"])


def _torchcodec_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torchcodec") is not None


def load_audio_any(
    source: Any, *, sampling_rate: int | None = None, audio_root: str | os.PathLike | None = None
) -> tuple[np.ndarray, int]:
    """Read audio from any of the forms the loaders meet, without resampling or checks.

    Args:
        source: one of
            - a path (`str`/`PathLike`), optionally fairseq-style ``path:offset:n_frames`` (samples) or
              ``archive.zip:byte_offset:byte_length``;
            - raw encoded `bytes`;
            - a dict ``{"bytes": ..., "path": ...}`` (``datasets.Audio(decode=False)``), or
              ``{"array": ..., "sampling_rate": ...}`` (already decoded, e.g. by ``datasets``/torchcodec);
            - a torchcodec ``AudioDecoder`` as returned by ``datasets`` 5 (anything with ``["array"]``);
            - a numpy array (then ``sampling_rate`` is required).
        sampling_rate (`int`, *optional*): rate of a bare numpy array.
        audio_root (`str`, *optional*): directory that relative paths are resolved against.

    Returns:
        `tuple`: ``(audio, rate)`` with audio of shape `(T, C)` float32 and the rate in Hz.

    Raises:
        AudioDecodeError: ``kind="unreadable_audio"`` when nothing can decode it.
    """
    try:
        if isinstance(source, np.ndarray):
            if sampling_rate is None:
                raise AudioDecodeError("bad_sampling_rate", "a numpy audio array needs its sampling_rate")
            arr = source.astype(np.float32, copy=False)
            return (arr.reshape(-1, 1) if arr.ndim == 1 else arr), int(sampling_rate)
        if isinstance(source, dict) or hasattr(source, "__getitem__") and not isinstance(source, (str, bytes)):
            if isinstance(source, dict) and source.get("array") is None and ("bytes" in source or "path" in source):
                data = source.get("bytes")
                if data:
                    return load_audio_any(bytes(data))
                if source.get("path"):
                    return load_audio_any(source["path"], audio_root=audio_root)
                raise AudioDecodeError("unreadable_audio", "audio dict has neither bytes nor path")
            arr = np.asarray(source["array"], dtype=np.float32)
            rate = source["sampling_rate"]
            return (arr.reshape(-1, 1) if arr.ndim == 1 else arr), int(rate)
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
            if not data:
                raise AudioDecodeError("unreadable_audio", "audio bytes are empty")
            try:
                return _read_soundfile(io.BytesIO(data))
            except (sf.LibsndfileError, RuntimeError, TypeError) as err:
                if _torchcodec_available():
                    try:
                        return _read_with_datasets(data)
                    except (ImportError, RuntimeError, OSError, ValueError, TypeError, KeyError) as fallback_err:
                        logger.debug(f"datasets/torchcodec fallback failed too: {fallback_err}")
                raise AudioDecodeError("unreadable_audio", f"cannot decode audio bytes: {err}") from err
        path, offset, length = parse_segment_spec(os.fspath(source))
        if audio_root is not None and not os.path.isabs(path):
            path = os.path.join(os.fspath(audio_root), path)
        if not os.path.exists(path):
            raise AudioDecodeError("unreadable_audio", f"audio file not found: {path}")
        if offset is not None and path.endswith(".zip"):
            with open(path, "rb") as f:  # fairseq stores uncompressed zip members: a plain byte range
                f.seek(offset)
                data = f.read(length)
            if data[:6] == b"\x93NUMPY":
                raise AudioDecodeError(
                    "unreadable_audio",
                    f"{source} holds precomputed features (.npy), not audio; re-run fairseq's prep script with "
                    "raw audio (--use-audio-input) or use the MuST-C yaml layout",
                )
            return load_audio_any(data)
        try:
            return _read_soundfile(path, offset, length)
        except (sf.LibsndfileError, RuntimeError, TypeError) as err:
            if offset is None and _torchcodec_available() and not zipfile.is_zipfile(path):
                try:
                    return _read_with_datasets(path)
                except (ImportError, RuntimeError, OSError, ValueError, TypeError, KeyError) as fallback_err:
                    logger.debug(f"datasets/torchcodec fallback failed too: {fallback_err}")
            raise AudioDecodeError("unreadable_audio", f"cannot decode {path}: {err}") from err
    except AudioDecodeError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise AudioDecodeError("unreadable_audio", f"cannot read audio: {err}") from err


def decode_audio(
    source: Any,
    options: AudioOptions | None = None,
    *,
    sampling_rate: int | None = None,
    audio_root: str | os.PathLike | None = None,
) -> np.ndarray:
    """Decode, down-mix, check and resample one record's audio.

    Args:
        source: anything :func:`load_audio_any` accepts.
        options ([`AudioOptions`], *optional*): defaults to ``AudioOptions()`` (16 kHz, mean down-mix, 30 s max).
        sampling_rate (`int`, *optional*): rate of a bare numpy array ``source``.
        audio_root (`str`, *optional*): base directory for relative paths.

    Returns:
        `np.ndarray` of shape `(T,)`, float32 mono at ``options.sampling_rate``.

    Raises:
        AudioDecodeError: with ``kind`` naming the reason (unreadable, bad rate, too long/short, channels).
    """
    options = options or AudioOptions()
    wav, rate = load_audio_any(source, sampling_rate=sampling_rate, audio_root=audio_root)
    options.check_rate(rate)
    if wav.shape[0] == 0:
        raise AudioDecodeError("unreadable_audio", "audio has no samples")
    options.check_duration(wav.shape[0] / rate)
    mono = _downmix(wav, options.mono)
    if not np.all(np.isfinite(mono)):
        raise AudioDecodeError("unreadable_audio", "audio contains NaN or inf samples")
    out = resample_audio(mono, rate, options.sampling_rate, options.max_resample_factor)
    if options.normalize_peak:
        peak = float(np.abs(out).max()) if out.size else 0.0
        if peak > 0:
            out = out / peak
    return np.ascontiguousarray(out, dtype=np.float32)


@functools.lru_cache(maxsize=4096)
def _file_info(path: str, mtime_ns: int, size: int) -> tuple[int, int, int]:
    """(frames, rate, channels) of a file; cached per (path, mtime, size): MuST-C has ~100 segments per talk."""
    info = sf.info(path)
    return int(info.frames), int(info.samplerate), int(info.channels)


def audio_info(source: Any, *, audio_root: str | os.PathLike | None = None) -> tuple[float, int, int]:
    """Cheap header read: ``(duration_seconds, sampling_rate, channels)`` of a path/segment/bytes source.

    Used by map-style loaders to validate records before training without decoding them.
    """
    try:
        if isinstance(source, dict) and source.get("bytes"):
            source = bytes(source["bytes"])
        elif isinstance(source, dict) and source.get("path"):
            source = source["path"]
        if isinstance(source, (bytes, bytearray)):
            info = sf.info(io.BytesIO(bytes(source)))
            return info.frames / info.samplerate, int(info.samplerate), int(info.channels)
        path, offset, length = parse_segment_spec(os.fspath(source))
        if audio_root is not None and not os.path.isabs(path):
            path = os.path.join(os.fspath(audio_root), path)
        if not os.path.exists(path):
            raise AudioDecodeError("unreadable_audio", f"audio file not found: {path}")
        if offset is not None and path.endswith(".zip"):
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(length)
            return audio_info(data)
        st = os.stat(path)
        total, rate, channels = _file_info(path, st.st_mtime_ns, st.st_size)
        frames = total if length is None else min(length, max(total - (offset or 0), 0))
        return frames / rate, rate, channels
    except AudioDecodeError:
        raise
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError, ValueError) as err:
        raise AudioDecodeError("unreadable_audio", f"cannot read audio header: {err}") from err


__all__ = [
    "TARGET_SAMPLING_RATE",
    "AudioDecodeError",
    "AudioOptions",
    "audio_info",
    "decode_audio",
    "load_audio_any",
    "parse_segment_spec",
    "resample_audio",
]
