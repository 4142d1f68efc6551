"""DTWAlignProcessor: a speech feature extractor plus one joint sentencepiece tokenizer (transcript and translation).

The tokenizer is transformers' `Speech2TextTokenizer` (a `PreTrainedTokenizer` over a raw sentencepiece model plus a
`vocab.json`; it reloads with `AutoTokenizer`). `train_sentencepiece` builds such a model with fairseq's id order
(bos=0, pad=1, eos=2, unk=3), which is also M2M100's, so the stage-1 MT model and the ST model share ids.

Conventions (CMOT's released data loader, `cmot/data/audio/speech_and_text_dataset.py`): transcripts carry no EOS (every transcript token is aligned to speech frames
and EOS has no acoustic counterpart); translations end with EOS; a target-language token `<lang:xx>` is prepended to
translations when the vocabulary has one (multilingual models) and forced as the first generated token.
"""

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import BatchFeature, ProcessorMixin, Speech2TextTokenizer, Wav2Vec2FeatureExtractor
from transformers.utils import logging


logger = logging.get_logger(__name__)

LABEL_PAD = -100


def lang_token(lang: str) -> str:
    """The vocabulary piece of a language tag: `"de"` -> `"<lang:de>"` (Speech2Text/fairseq convention)."""
    return f"<lang:{lang}>"


def train_sentencepiece(
    texts: Iterable[str],
    vocab_size: int,
    output_dir: str | os.PathLike,
    *,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    lang_codes: Sequence[str] = (),
    user_defined_symbols: Sequence[str] = (),
    hard_vocab_limit: bool = True,
    seed_sentencepiece_size: int = 1_000_000,
    num_threads: int = 1,
) -> Speech2TextTokenizer:
    """Train a joint sentencepiece model on transcripts + translations and wrap it as a tokenizer.

    Paper/CMOT: one unigram vocabulary of 10k pieces over source transcripts and target translations, character
    coverage 1.0. Ids follow fairseq's dictionary: `<s>`=0, `<pad>`=1, `</s>`=2, `<unk>`=3.

    Args:
        texts (`Iterable[str]`): training sentences (pass transcripts and translations together).
        vocab_size (`int`): number of pieces (10000 in the paper's setting).
        output_dir (`str`): where `sentencepiece.bpe.model`, `vocab.json` and the tokenizer files are written.
        model_type (`str`): `"unigram"` (paper) or `"bpe"`.
        lang_codes (`Sequence[str]`): languages that get a `<lang:xx>` piece (multilingual models).
        hard_vocab_limit (`bool`): set `False` for tiny corpora where `vocab_size` cannot be reached.

    Returns:
        The trained `Speech2TextTokenizer`, already saved in `output_dir` (reload with `AutoTokenizer`).
    """
    import sentencepiece as spm

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    corpus = output_dir / "spm_train.txt"
    with corpus.open("w", encoding="utf-8") as f:
        n = 0
        for line in texts:
            line = line.strip()
            if line:
                f.write(line + "\n")
                n += 1
    if n == 0:
        raise ValueError("`texts` is empty: pass the training transcripts and translations.")
    prefix = output_dir / "spm"
    symbols = [lang_token(code) for code in lang_codes] + list(user_defined_symbols)
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        bos_id=0,
        pad_id=1,
        eos_id=2,
        unk_id=3,
        bos_piece="<s>",
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        user_defined_symbols=symbols,
        hard_vocab_limit=hard_vocab_limit,
        seed_sentencepiece_size=seed_sentencepiece_size,
        num_threads=num_threads,
        minloglevel=2,
    )
    corpus.unlink()
    return tokenizer_from_sentencepiece(f"{prefix}.model", output_dir, lang_codes=lang_codes)


def tokenizer_from_sentencepiece(
    spm_file: str | os.PathLike, output_dir: str | os.PathLike, *, lang_codes: Sequence[str] = ()
) -> Speech2TextTokenizer:
    """Wrap an existing sentencepiece model as a `Speech2TextTokenizer` (vocab.json = the model's pieces in id order)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_file))
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    vocab_file = output_dir / "vocab.json"
    vocab_file.write_text(json.dumps({sp.id_to_piece(i): i for i in range(sp.get_piece_size())}, ensure_ascii=False))
    missing = [code for code in lang_codes if sp.piece_to_id(lang_token(code)) == sp.unk_id()]
    if missing:
        raise ValueError(f"The sentencepiece model has no piece for languages {missing}; retrain with `lang_codes`.")
    tokenizer = Speech2TextTokenizer(
        vocab_file=str(vocab_file),
        spm_file=str(spm_file),
        extra_special_tokens=[lang_token(code) for code in lang_codes] or None,
    )
    tokenizer.save_pretrained(output_dir)
    return tokenizer


class DTWAlignProcessor(ProcessorMixin):
    r"""
    The speech encoder's own feature extractor and a joint sentencepiece tokenizer for transcripts and translations.

    Args:
        feature_extractor: `Wav2Vec2FeatureExtractor` (waveform encoders: 16 kHz samples -> `input_values`),
            `WhisperFeatureExtractor` (log-mel -> `input_features`, padded to exactly its `chunk_length` window) or
            `Speech2TextFeatureExtractor` (fbank -> `input_features`). Always used with an attention mask.
        tokenizer (`Speech2TextTokenizer` or any `PreTrainedTokenizer`): the joint vocabulary.
        tgt_lang (`str`, *optional*): default target language; when the vocabulary has `<lang:tgt_lang>` it starts
            every translation and is forced as the first generated token.
        max_source_seconds (`float`, *optional*, defaults to 30.0): longer audio is rejected; set it from the model
            (`processor.max_source_seconds = model.config.source_limit_seconds`). `None` disables the check. With a
            Whisper feature extractor the limit never exceeds its window.
        transcript_eos (`bool`, *optional*, defaults to `False`): append EOS to transcripts (CMOT does not).

    Call `processor(audio=..., sampling_rate=16000, text=transcripts, text_target=translations)`; it returns the
    audio under the model's input name (`input_values` or `input_features`, see `audio_input_name`),
    `attention_mask`, `input_ids`, `text_attention_mask` and `labels` (-100 on padding): the batch keys of
    `DTWAlignForSpeechTranslation.forward`.
    """

    def __init__(
        self,
        feature_extractor,
        tokenizer,
        tgt_lang: str | None = None,
        max_source_seconds: float | None = 30.0,
        transcript_eos: bool = False,
    ):
        super().__init__(feature_extractor, tokenizer)
        self.tgt_lang = tgt_lang
        self._max_source_seconds = max_source_seconds
        self.transcript_eos = transcript_eos

    @classmethod
    def from_pretrained_parts(
        cls,
        speech_encoder_name_or_path: str,
        tokenizer_name_or_path: str,
        *,
        speech_window_seconds: float | None = None,
        **processor_kwargs,
    ) -> "DTWAlignProcessor":
        """The speech encoder's own feature extractor (its mel bins, sampling rate, normalisation) + the tokenizer.

        Args:
            speech_encoder_name_or_path (`str`): Hub id or folder of the speech encoder (e.g.
                `"facebook/hubert-base-ls960"`, `"openai/whisper-base"`). Its `preprocessor_config.json` is used
                when it has one (with `return_attention_mask=True` forced: DTW needs per-utterance lengths), else a
                16 kHz `Wav2Vec2FeatureExtractor` with `do_normalize=True`.
            tokenizer_name_or_path (`str`): folder of the stage-1 MT model or tokenizer (loaded with `AutoTokenizer`).
            speech_window_seconds (`float`, *optional*): Whisper only: the window to pad to (the model's
                `config.speech_window_seconds`); default the feature extractor's `chunk_length` (30 s).
            **processor_kwargs: `tgt_lang`, `max_source_seconds`, `transcript_eos`.
        """
        from transformers import AutoFeatureExtractor, AutoTokenizer

        try:
            feature_extractor = AutoFeatureExtractor.from_pretrained(speech_encoder_name_or_path)
        except (OSError, ValueError):
            logger.warning(
                f"No feature-extractor config in {speech_encoder_name_or_path}; using a 16 kHz "
                "Wav2Vec2FeatureExtractor with do_normalize=True."
            )
            feature_extractor = make_feature_extractor()
        feature_extractor.return_attention_mask = True
        if speech_window_seconds is not None:
            if not hasattr(feature_extractor, "chunk_length"):
                raise ValueError(
                    f"`speech_window_seconds` is for Whisper feature extractors; {type(feature_extractor).__name__} "
                    "pads to the longest utterance of each batch."
                )
            set_feature_window(feature_extractor, speech_window_seconds)
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_name_or_path)
        return cls(feature_extractor, tokenizer, **processor_kwargs)

    @property
    def sampling_rate(self) -> int:
        return self.feature_extractor.sampling_rate

    @property
    def audio_input_name(self) -> str:
        """The model's audio key: `"input_values"` (waveform) or `"input_features"` (Whisper, Speech2Text)."""
        return self.feature_extractor.model_input_names[0]

    @property
    def window_seconds(self) -> float | None:
        """Whisper's fixed window (every utterance is padded to it), else `None`."""
        chunk = getattr(self.feature_extractor, "chunk_length", None)
        return None if chunk is None else float(chunk)

    @property
    def max_source_seconds(self) -> float | None:
        """The audio-length limit: the one set (from the model config), capped by Whisper's window."""
        limits = [x for x in (self._max_source_seconds, self.window_seconds) if x is not None]
        return min(limits) if limits else None

    @max_source_seconds.setter
    def max_source_seconds(self, value: float | None) -> None:
        if value is not None and value <= 0:
            raise ValueError(f"`max_source_seconds={value}` must be > 0 or None.")
        self._max_source_seconds = value

    def to_dict(self) -> dict:
        output = super().to_dict()
        output.pop("_max_source_seconds", None)
        output["max_source_seconds"] = self._max_source_seconds
        return output

    @property
    def model_input_names(self) -> list[str]:
        return [self.audio_input_name, "attention_mask", "input_ids", "text_attention_mask", "labels"]

    # ------------------------------------------------------------------ audio

    def check_audio(self, audio, sampling_rate: int | None) -> list[np.ndarray]:
        """Validate raw audio before any feature extraction; return a list of float32 mono arrays.

        Accepted: one 1-D waveform (array, tensor, or a list of numbers), or a list/tuple of them. Integer PCM
        (int16, int32, uint8 as in 8-bit WAV) is scaled to [-1, 1]; other integer types are rejected. A 2-D array is
        one clip with a channel axis, never a batch: `(1, T)` and `(T, 1)` are read as mono, anything else is
        rejected (average the channels; pass a batch as a list of 1-D arrays).

        Raises a `ValueError` naming the sample and the fix for: a wrong sampling rate, multi-channel audio, empty
        audio, NaN/inf samples, audio longer than `max_source_seconds`.
        """
        expected = self.sampling_rate
        if sampling_rate is None:
            logger.warning_once(
                f"No `sampling_rate` passed to the processor; assuming {expected} Hz. Pass `sampling_rate=` so that "
                "wrongly sampled audio is caught."
            )
        elif int(sampling_rate) != expected:
            raise ValueError(
                f"Audio is sampled at {sampling_rate} Hz but the model expects {expected} Hz; resample first "
                f"(e.g. `scipy.signal.resample_poly(wav, {expected}, {sampling_rate})`)."
            )
        if isinstance(audio, (np.ndarray, torch.Tensor)):
            audio = [audio]
        elif isinstance(audio, (list, tuple)) and audio and all(_is_number(x) for x in audio):
            audio = [np.asarray(audio, dtype=np.float32)]  # a list of numbers is one waveform, never a batch
        elif not isinstance(audio, (list, tuple)):
            raise TypeError(f"`audio` must be a 1-D array or a list of 1-D arrays, got {type(audio).__name__}.")
        if not audio:
            raise ValueError("`audio` is an empty list; pass at least one waveform.")
        limit = self.max_source_seconds
        arrays = []
        for i, wav in enumerate(audio):
            wav = wav.detach().cpu().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav)
            if wav.ndim == 2 and 1 in wav.shape:
                wav = wav.reshape(-1)  # (1, T) as torchaudio.load gives for mono, or (T, 1) as soundfile.read
            if wav.ndim == 2:
                raise ValueError(
                    f"Audio {i} has shape {wav.shape}: multi-channel (stereo) audio? A 2-D array is read as one clip "
                    "with a channel axis, never as a batch. Average the channels to mono (`wav.mean(axis=channel_axis)`); for a batch pass a list "
                    "of 1-D arrays."
                )
            if wav.ndim != 1:
                raise ValueError(f"Audio {i} has shape {wav.shape}; expected a 1-D mono waveform.")
            if wav.size == 0:
                raise ValueError(f"Audio {i} is empty (0 samples); drop empty utterances.")
            wav = _to_float(wav, i)
            if not np.isfinite(wav).all():
                raise ValueError(f"Audio {i} contains NaN or inf samples; fix or drop the file.")
            if limit is not None and wav.size > limit * expected:
                what = "the Whisper window" if limit == self.window_seconds else "the limit"
                raise ValueError(
                    f"Audio {i} lasts {wav.size / expected:.2f} s, above {what} `max_source_seconds={limit}`; cut long "
                    "utterances, or raise the limit (the model's `max_source_seconds` / `speech_window_seconds`, "
                    "then `processor.max_source_seconds`)."
                )
            arrays.append(wav)
        return arrays

    def pad_audio(self, arrays: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """Feature extraction and padding of clips already validated by `check_audio`, with the encoder's own
        feature extractor and its settings.

        Returns:
            `{audio_input_name: float32 tensor, "attention_mask": long tensor}`: `input_values` (B, T) and a sample
            mask for waveform encoders; `input_features` and a 10 ms feature-frame mask for mel encoders (Whisper:
            (B, n_mels, window frames), every clip padded to the window; Speech2Text: (B, T, n_mels)).
        """
        kwargs = {"sampling_rate": self.sampling_rate, "return_attention_mask": True, "return_tensors": "pt"}
        if self.window_seconds is not None:
            kwargs.update(padding="max_length", max_length=round(self.window_seconds * self.sampling_rate))
        else:
            kwargs["padding"] = True
        features = self.feature_extractor(arrays, **kwargs)
        name = self.audio_input_name
        return {name: features[name].float(), "attention_mask": features["attention_mask"].long()}

    # ------------------------------------------------------------------ text

    def lang_token_id(self, lang: str | None) -> int | None:
        """Id of `<lang:xx>` if the vocabulary has it, else `None`."""
        if lang is None:
            return None
        token_id = self.tokenizer.convert_tokens_to_ids(lang_token(lang))
        return None if token_id is None or token_id == self.tokenizer.unk_token_id else token_id

    def generation_kwargs(self, tgt_lang: str | None = None) -> dict:
        """Keyword arguments for `model.generate` that force the target-language token, when the vocabulary has one."""
        token_id = self.lang_token_id(tgt_lang or self.tgt_lang)
        return {} if token_id is None else {"forced_bos_token_id": token_id}

    def encode_transcripts(self, text: str | list[str]) -> list[list[int]]:
        texts = [text] if isinstance(text, str) else list(text)
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        eos = [self.tokenizer.eos_token_id] if self.transcript_eos else []
        out = [list(x) + eos for x in ids]
        empty = [i for i, x in enumerate(out) if not x]
        if empty:
            raise ValueError(f"Transcripts {empty} are empty after tokenization; drop them.")
        return out

    def encode_translations(self, text: str | list[str], tgt_lang: str | None = None) -> list[list[int]]:
        texts = [text] if isinstance(text, str) else list(text)
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        lang_id = self.lang_token_id(tgt_lang or self.tgt_lang)
        prefix = [lang_id] if lang_id is not None else []
        return [prefix + list(x) + [self.tokenizer.eos_token_id] for x in ids]

    @staticmethod
    def _pad(seqs: list[list[int]], value: int) -> torch.Tensor:
        out = torch.full((len(seqs), max(len(s) for s in seqs)), value, dtype=torch.long)
        for i, s in enumerate(seqs):
            out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        return out

    # ------------------------------------------------------------------ call

    def __call__(
        self,
        audio=None,
        text: str | list[str] | None = None,
        text_target: str | list[str] | None = None,
        *,
        sampling_rate: int | None = None,
        tgt_lang: str | None = None,
        return_tensors: str = "pt",
        **kwargs,
    ) -> BatchFeature:
        """Prepare a batch for `DTWAlignForSpeechTranslation`.

        Args:
            audio (`np.ndarray`, `torch.Tensor` or a list of them): 16 kHz mono waveforms (1-D each; see
                `check_audio` for integer PCM and 2-D arrays).
            text (`str` or `list[str]`, *optional*): transcripts -> `input_ids`, `text_attention_mask`.
            text_target (`str` or `list[str]`, *optional*): translations -> `labels` (-100 on padding).
            sampling_rate (`int`): the audio's sampling rate; anything but 16000 raises.
            tgt_lang (`str`, *optional*): overrides the processor's `tgt_lang` for the language token.

        Returns:
            [`BatchFeature`] with the audio under `audio_input_name` (`pad_audio`), `attention_mask`, and the text
            keys.
        """
        if audio is None and text is None and text_target is None:
            raise ValueError("Pass `audio`, `text` (transcripts) and/or `text_target` (translations).")
        if return_tensors != "pt":
            raise ValueError("Only `return_tensors='pt'` is supported.")
        data = {}
        if kwargs:
            raise TypeError(f"Unexpected arguments {sorted(kwargs)}; the feature extractor's settings are its own.")
        if audio is not None:
            data.update(self.pad_audio(self.check_audio(audio, sampling_rate)))
        if text is not None:
            ids = self.encode_transcripts(text)
            data["input_ids"] = self._pad(ids, self.tokenizer.pad_token_id)
            data["text_attention_mask"] = self._pad([[1] * len(x) for x in ids], 0)
        if text_target is not None:
            data["labels"] = self._pad(self.encode_translations(text_target, tgt_lang), LABEL_PAD)
        return BatchFeature(data=data)

    def batch_decode(self, sequences, skip_special_tokens: bool = True, **kwargs) -> list[str]:
        """Decode generated ids (or labels: -100 is mapped to padding first)."""
        if isinstance(sequences, torch.Tensor):
            sequences = sequences.masked_fill(sequences == LABEL_PAD, self.tokenizer.pad_token_id).tolist()
        else:
            sequences = [[self.tokenizer.pad_token_id if t == LABEL_PAD else t for t in s] for s in sequences]
        return self.tokenizer.batch_decode(sequences, skip_special_tokens=skip_special_tokens, **kwargs)

    def decode(self, token_ids, skip_special_tokens: bool = True, **kwargs) -> str:
        return self.batch_decode([token_ids], skip_special_tokens=skip_special_tokens, **kwargs)[0]


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.number)) and not isinstance(x, bool)


#: Full scale of the integer PCM formats WAV files store: int16 and int32 are signed, 8-bit WAV is unsigned.
_PCM_SCALE = {
    np.dtype(np.int16): (0.0, 32768.0),
    np.dtype(np.int32): (0.0, 2147483648.0),
    np.dtype(np.uint8): (128.0, 128.0),
}


def _to_float(wav: np.ndarray, index: int) -> np.ndarray:
    """float32 audio; integer PCM scaled to [-1, 1] (`(x - offset) / full_scale`)."""
    if wav.dtype.kind in "iu":
        if wav.dtype not in _PCM_SCALE:
            raise ValueError(
                f"Audio {index} is {wav.dtype} integer data, not a PCM format (int16, int32, uint8); convert it to "
                "float in [-1, 1] first (`soundfile.read(path, dtype='float32')`)."
            )
        offset, scale = _PCM_SCALE[wav.dtype]
        return ((wav.astype(np.float64) - offset) / scale).astype(np.float32)
    if wav.dtype.kind != "f":
        raise ValueError(f"Audio {index} has dtype {wav.dtype}; expected float or integer PCM samples.")
    return wav.astype(np.float32, copy=False)


def set_feature_window(feature_extractor, window_seconds: float) -> None:
    """Make a `WhisperFeatureExtractor` pad to a `window_seconds` window (its `chunk_length`)."""
    feature_extractor.chunk_length = window_seconds
    feature_extractor.n_samples = round(window_seconds * feature_extractor.sampling_rate)
    feature_extractor.nb_max_frames = feature_extractor.n_samples // feature_extractor.hop_length


def make_feature_extractor(sampling_rate: int = 16000, do_normalize: bool = True) -> Wav2Vec2FeatureExtractor:
    """The feature extractor HuBERT/wav2vec 2.0 use, returning an attention mask (DTW needs per-utterance lengths)."""
    return Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=sampling_rate,
        padding_value=0.0,
        do_normalize=do_normalize,
        return_attention_mask=True,
    )


__all__ = [
    "DTWAlignProcessor",
    "lang_token",
    "make_feature_extractor",
    "set_feature_window",
    "tokenizer_from_sentencepiece",
    "train_sentencepiece",
]
