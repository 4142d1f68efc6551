"""Speech synthesis with exact word timings, from pip only: espeak-ng through ``espeakng-loader`` and ctypes.

``espeakng-loader`` ships ``libespeak-ng.so`` (1.52) and its data for about 110 languages. We drive the C API
with ctypes in synchronous mode; the synthesis callback receives the audio together with WORD and PHONEME
events whose ``sample`` field is the exact sample index of the event in the output. That gives reference word
timings with no forced aligner involved.

Definition of the timings (seconds from the start of the audio):

- a word **starts** at its WORD event (this includes a stop's closure and, for the first word, about 12 ms of
  leading silence);
- a word **ends** at the first phoneme or pause boundary after its last phoneme, so pauses (commas) fall
  between words.

Words are the whitespace tokens of the text, except that punctuation-only tokens ("-", "...") are not spoken
and are glued to the previous word, so ``" ".join(words) == " ".join(text.split())``.

Two pitfalls handled here:

1. multi-word dictionary entries ("on the", "of the" in English) produce ONE word event for two words: a
   zero-width space after every space breaks the match without changing the speech;
2. never initialise with a NULL data path: the wheel's compiled-in default does not exist and espeak calls
   ``exit()``. We always pass the wheel's data directory and the "don't exit" option.

The library is global state: one :class:`EspeakSynthesizer` per process (:func:`get_synthesizer` caches it);
use processes, not threads, for parallel synthesis.
"""

from __future__ import annotations

import ctypes
import math
import os
import threading
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import resample_poly
from transformers.utils import logging


logger = logging.get_logger(__name__)

_WORD, _END, _PHONEME = 1, 5, 7
_ZWSP = "\u200b"
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_PHONEME_EVENTS, _PHONEME_IPA, _DONT_EXIT = 0x1, 0x2, 0x8000
_ESPEAK_RATE, _ESPEAK_PITCH = 1, 3
_ESPEAK_CHARS_UTF8, _ESPEAK_SSML_OFF = 1, 0

#: Voice variants (``espeak-ng-data/voices/!v``) that sound like distinct plain speakers; "+klatt", "+croak",
#: "+whisper" and the named novelty voices are left out on purpose.
DEFAULT_VARIANTS: tuple[str, ...] = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):  # espeak_EVENT from speak_lib.h
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class WordTiming:
    """One word of a synthesised utterance; ``start``/``end`` in seconds from the start of the audio."""

    word: str
    start: float
    end: float

    def to_dict(self) -> dict[str, float | str]:
        return {"word": self.word, "start": self.start, "end": self.end}


@dataclass
class SynthesizedUtterance:
    """Output of :meth:`EspeakSynthesizer.synthesize`.

    Attributes:
        audio (`np.ndarray` of shape `(T,)`, float32 in [-1, 1]): mono speech at ``sampling_rate``.
        sampling_rate (`int`): Hz.
        words (`list[WordTiming]`): one entry per word of the text, in order, times in seconds.
        missing (`list[int]`): indices of words that got no WORD event (normally empty; such words get the
            span between their neighbours).
        phrases (`list[tuple[int, int]]`): sample spans ``[start, end)`` of the separately synthesised phrases
            (:func:`synthesize_phrases`; empty for one-piece synthesis).
    """

    audio: np.ndarray
    sampling_rate: int
    words: list[WordTiming]
    missing: list[int] = field(default_factory=list)
    phrases: list[tuple[int, int]] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Length of the audio in seconds."""
        return len(self.audio) / self.sampling_rate


def split_words(text: str) -> list[str]:
    """Whitespace tokens of ``text``; punctuation-only tokens are glued to the previous word (not spoken)."""
    words: list[str] = []
    for tok in text.split():
        if words and not any(c.isalnum() for c in tok):
            words[-1] += " " + tok
        else:
            words.append(tok)
    return words


class EspeakSynthesizer:
    """espeak-ng through ctypes, returning audio and per-word timings.

    Args:
        lib_path (`str`, *optional*): path to ``libespeak-ng.so``; default: the one in ``espeakng-loader``.
            Debian's ``libespeak-ng.so.1`` works too (give ``data_dir=None`` then) but is 2-3x slower and its
            audio bytes differ slightly, so corpora are only byte-reproducible for one library version.
        data_dir (`str`, *optional*): the directory that CONTAINS ``espeak-ng-data``.
    """

    def __init__(self, lib_path: str | None = None, data_dir: str | None = None) -> None:
        if lib_path is None:
            try:
                import espeakng_loader
            except ImportError as err:
                raise ImportError(
                    "Speech synthesis needs `espeakng-loader` (pip install espeakng-loader==0.2.4); it ships "
                    "libespeak-ng and its data, no system package needed."
                ) from err
            lib_path = espeakng_loader.get_library_path()
            data_dir = os.path.dirname(espeakng_loader.get_data_path())
        self.lib = lib = ctypes.CDLL(lib_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        # espeak-ng >= 1.52 draws breathiness/noise from its own generator; seeding it per utterance makes the
        # breathy variants (f2, f3, f5, ...) reproducible. Older libraries lack the symbol (no seeding then).
        self._set_rand_seed = getattr(lib, "espeak_ng_SetRandSeed", None)
        if self._set_rand_seed is not None:
            self._set_rand_seed.argtypes = [ctypes.c_long]
        options = _PHONEME_EVENTS | _PHONEME_IPA | _DONT_EXIT
        self.native_rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_dir.encode() if data_dir else None, options
        )
        if self.native_rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed (library {lib_path}, data {data_dir})")
        self.version = (lib.espeak_Info(None) or b"unknown").decode()
        self._callback = _CALLBACK(self._on_audio)  # keep a reference alive for the C side
        lib.espeak_SetSynthCallback(self._callback)
        self._lock = threading.Lock()
        self._pcm: list[np.ndarray] = []
        self._events: list[tuple[int, int, int, str | None]] = []

    def _on_audio(self, wav, n, events) -> int:
        if wav and n > 0:
            self._pcm.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != 0:  # the list ends with LIST_TERMINATED (0)
            e = events[i]
            name = e.id.string.decode("utf-8", "replace") if e.type == _PHONEME else None
            self._events.append((e.type, e.text_position, e.sample, name))
            i += 1
        return 0

    def synthesize(
        self,
        text: str,
        voice: str = "de",
        *,
        variant: str | None = None,
        rate: int = 175,
        pitch: int = 50,
        sampling_rate: int | None = 16000,
        seed: int | None = 0,
    ) -> SynthesizedUtterance:
        """Speak ``text`` and time every word.

        Args:
            text (`str`): the sentence; words are its whitespace tokens (see :func:`split_words`).
            voice (`str`): espeak voice/language name ("de", "fr", "es", "en-us", ...).
            variant (`str`, *optional*): voice variant from ``voices/!v`` ("m3", "f2", ...).
            rate (`int`): speaking rate in words per minute (espeak accepts 80-450; 140-190 sounds natural).
            pitch (`int`): base pitch, 0-100 (50 is the voice's default).
            sampling_rate (`int`, *optional*): resample to this rate (Hz) with ``resample_poly``; ``None``
                keeps espeak's native 22050 Hz. Word times are in seconds and do not depend on it.
            seed (`int`, *optional*, defaults to 0): seed of espeak's noise generator for this utterance
                (breathy variants); `None` leaves the generator running.

        Reproducibility: besides the noise generator, espeak keeps state across calls that no API resets (the
        glottal phase and the flutter-table index), so the exact samples (not the words or timings, which move
        by well under a millisecond) depend on what the process synthesised before. The corpus builders get
        byte-identical corpora by synthesising fixed streams of utterances in fresh processes.

        Returns:
            [`SynthesizedUtterance`]: float32 audio and word timings.
        """
        words = split_words(text)
        spoken, spans = "", []
        for k, w in enumerate(words):
            spoken += (" " + _ZWSP) if k else ""
            spans.append((len(spoken), len(spoken) + len(w)))
            spoken += w
        name = f"{voice}+{variant}" if variant else voice
        with self._lock:
            if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
                raise ValueError(f"espeak-ng has no voice {name!r}; try e.g. 'de', 'fr', 'es', 'en-us', 'de+f2'.")
            self.lib.espeak_SetParameter(_ESPEAK_RATE, int(rate), 0)
            self.lib.espeak_SetParameter(_ESPEAK_PITCH, int(pitch), 0)
            if seed is not None and self._set_rand_seed is not None:
                self._set_rand_seed(int(seed) & 0x7FFFFFFF)
            self._pcm, self._events = [], []
            data = spoken.encode("utf-8") + b"\0"
            buf = ctypes.create_string_buffer(data)
            self.lib.espeak_Synth(buf, len(data), 0, 1, 0, _ESPEAK_CHARS_UTF8 | _ESPEAK_SSML_OFF, None, None)
            self.lib.espeak_Synchronize()
            pcm = np.concatenate(self._pcm) if self._pcm else np.zeros(0, np.int16)
            events = self._events
            self._pcm, self._events = [], []
        timings, missing = _word_timings(words, spans, events, len(pcm), self.native_rate)
        audio = pcm.astype(np.float32) / 32768.0
        out_rate = self.native_rate
        if sampling_rate is not None and sampling_rate != self.native_rate:
            g = math.gcd(int(sampling_rate), self.native_rate)
            audio = resample_poly(audio, sampling_rate // g, self.native_rate // g).astype(np.float32)
            audio = np.clip(audio, -1.0, 1.0)
            out_rate = int(sampling_rate)
        duration = len(audio) / out_rate
        for t in timings:  # resampling can shorten the tail by a fraction of a sample
            t.end = min(t.end, duration)
            t.start = min(t.start, t.end)
        return SynthesizedUtterance(audio=audio, sampling_rate=out_rate, words=timings, missing=missing)


def _word_timings(
    words: list[str],
    spans: list[tuple[int, int]],
    events: list[tuple[int, int, int, str | None]],
    n_samples: int,
    native_rate: int,
) -> tuple[list[WordTiming], list[int]]:
    """Turn espeak events into word spans (see the module docstring for the definition)."""
    starts: list[int | None] = [None] * len(words)
    for kind, pos, sample, _ in events:
        if kind != _WORD:
            continue
        c = pos - 1  # text_position is 1-based into the spoken string
        k = next((i for i, (a, e) in enumerate(spans) if a <= c <= e), None)
        if k is None:
            k = next((i for i, (a, _) in enumerate(spans) if a > c), None)
        if k is not None and starts[k] is None:
            starts[k] = sample
    bounds = sorted(s for kind, _, s, _ in events if kind in (_PHONEME, _END))
    real = sorted(s for kind, _, s, name in events if kind == _PHONEME and name not in ("", "_", " ", None))
    missing = [k for k, s in enumerate(starts) if s is None]
    # words without an event (should not happen after the ZWSP fix) start where the previous word starts
    for k in missing:
        starts[k] = starts[k - 1] if k > 0 and starts[k - 1] is not None else 0
    out: list[WordTiming] = []
    for k, w in enumerate(words):
        st = int(starts[k])
        nxt = next((int(starts[j]) for j in range(k + 1, len(words)) if starts[j] != starts[k]), n_samples)
        nxt = max(nxt, st)
        inside = [s for s in real if st <= s < nxt]
        end = nxt
        if inside:
            end = min([b for b in bounds if b > inside[-1]] + [nxt])
        end = min(max(end, st), n_samples)
        out.append(WordTiming(w, round(st / native_rate, 4), round(end / native_rate, 4)))
    return out, missing


_SYNTH: EspeakSynthesizer | None = None


def get_synthesizer() -> EspeakSynthesizer:
    """The process-wide :class:`EspeakSynthesizer`, created on first use (a forked child reuses its copy)."""
    global _SYNTH
    if _SYNTH is None:
        _SYNTH = EspeakSynthesizer()
    return _SYNTH


def synthesize(
    text: str,
    voice: str = "de",
    *,
    variant: str | None = None,
    rate: int = 175,
    pitch: int = 50,
    sampling_rate: int | None = 16000,
    seed: int | None = 0,
) -> SynthesizedUtterance:
    """Shortcut for ``get_synthesizer().synthesize(...)``; see :meth:`EspeakSynthesizer.synthesize`."""
    return get_synthesizer().synthesize(
        text, voice, variant=variant, rate=rate, pitch=pitch, sampling_rate=sampling_rate, seed=seed
    )


def synthesize_phrases(
    phrases: list[dict],
    voice: str = "de",
    *,
    variant: str | None = None,
    pitch: int = 50,
    pauses: list[float],
    lead: float,
    trail: float,
    noise_dbfs: float,
    noise_seed: int,
    seed: int | None = 0,
    sampling_rate: int = 16000,
    synthesizer: EspeakSynthesizer | None = None,
) -> SynthesizedUtterance:
    """Speak an utterance phrase by phrase (``demo_speech="varied"``) and keep exact word timings.

    Each phrase ``{"text": ..., "rate": wpm}`` is synthesised on its own at its own rate (same voice, variant
    and pitch); the pieces are joined with ``pauses`` (seconds, one per gap) after ``lead`` seconds of silence
    and followed by ``trail`` seconds; white noise at ``noise_dbfs`` (RMS, dBFS) seeded by ``noise_seed`` is
    added to the whole signal so that silences are not digital zero. A phrase's word timings are shifted by the
    sample offset where it starts, so they stay exact; the length is the sum of the parts.
    """
    if len(pauses) != len(phrases) - 1:
        raise ValueError(f"{len(phrases)} phrases need {len(phrases) - 1} pauses, got {len(pauses)}")
    synth = synthesizer or get_synthesizer()
    pieces: list[np.ndarray] = [np.zeros(round(lead * sampling_rate), np.float32)]
    offset = len(pieces[0])
    words: list[WordTiming] = []
    missing: list[int] = []
    spans: list[tuple[int, int]] = []
    for k, phrase in enumerate(phrases):
        utt = synth.synthesize(
            phrase["text"], voice, variant=variant, rate=phrase["rate"], pitch=pitch,
            sampling_rate=sampling_rate, seed=None if seed is None else seed + k,
        )  # fmt: skip
        start = offset / sampling_rate
        missing += [len(words) + i for i in utt.missing]
        words += [WordTiming(w.word, round(w.start + start, 4), round(w.end + start, 4)) for w in utt.words]
        pieces.append(utt.audio)
        spans.append((offset, offset + len(utt.audio)))
        offset += len(utt.audio)
        gap = pauses[k] if k < len(pauses) else trail
        pieces.append(np.zeros(round(gap * sampling_rate), np.float32))
        offset += len(pieces[-1])
    audio = np.concatenate(pieces)
    noise = np.random.default_rng(noise_seed).standard_normal(len(audio)).astype(np.float32)
    audio = np.clip(audio + noise * np.float32(10 ** (noise_dbfs / 20)), -1.0, 1.0).astype(np.float32)
    duration = len(audio) / sampling_rate
    for w in words:  # rounding to 0.1 ms must not step past the end
        w.end = min(w.end, duration)
        w.start = min(w.start, w.end)
    return SynthesizedUtterance(audio=audio, sampling_rate=sampling_rate, words=words, missing=missing, phrases=spans)


def espeak_version() -> str:
    """Version string of the loaded libespeak-ng (part of the demo corpus cache key: audio bytes depend on it)."""
    return get_synthesizer().version


__all__ = [
    "DEFAULT_VARIANTS",
    "EspeakSynthesizer",
    "SynthesizedUtterance",
    "WordTiming",
    "espeak_version",
    "get_synthesizer",
    "split_words",
    "synthesize",
    "synthesize_phrases",
]
