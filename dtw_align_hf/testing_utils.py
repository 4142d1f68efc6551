"""Tiny random parts for tests and the offline demo: a HuBERT, a Whisper and a Speech2Text encoder, an M2M100, a sentencepiece tokenizer, a processor.

Nothing here downloads anything. Sizes are chosen so that a training step takes well under a second on one CPU core:
hidden 32, 2 layers, 2 heads, a joint vocabulary of about 99 pieces. The tiny HuBERT uses a stride-80 CNN (200
frames/s) so that, after the stride-4 adapter, 1 s of audio gives about 50 frames: enough frames per transcript token
for DTW on short synthetic utterances. It uses layer-norm feature extraction (`feat_extract_norm="layer"`), which
makes outputs independent of padding (a padded batch equals batch size 1).

    from dtw_align_hf.testing_utils import make_tiny_model, synthetic_audio
    model, processor = make_tiny_model("/tmp/tiny")           # DTWAlignForSpeechTranslation + DTWAlignProcessor
    batch = processor(audio=[synthetic_audio(1.0)], sampling_rate=16000, text=["hallo welt"], text_target=["hello world"])
"""

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import HubertConfig, HubertModel, M2M100Config, M2M100ForConditionalGeneration

from .configuration_dtw_align import DTWAlignConfig
from .modeling_dtw_align import DTWAlignForSpeechTranslation
from .processing_dtw_align import DTWAlignProcessor, make_feature_extractor, train_sentencepiece


_WORDS = [
    "the",
    "a",
    "small",
    "red",
    "green",
    "blue",
    "house",
    "tree",
    "cat",
    "dog",
    "runs",
    "sees",
    "eats",
    "big",
    "old",
    "new",
    "one",
    "two",
    "three",
    "river",
    "city",
    "day",
    "night",
    "das",
    "ein",
    "kleines",
    "rotes",
    "gruenes",
    "blaues",
    "haus",
    "baum",
    "katze",
    "hund",
    "laeuft",
    "sieht",
    "isst",
    "grosses",
    "altes",
    "neues",
    "eins",
    "zwei",
    "drei",
    "fluss",
    "stadt",
    "tag",
    "nacht",
]


def tiny_corpus(num_sentences: int = 200, seed: int = 0) -> list[str]:
    """Deterministic pseudo-sentences over a fixed 48-word list (the tiny tokenizer's training text)."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(_WORDS, size=rng.integers(3, 8))) for _ in range(num_sentences)]


def synthetic_audio(seconds: float = 1.0, sampling_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A float32 mono waveform: a few random tones plus noise, roughly in [-1, 1]."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * sampling_rate)) / sampling_rate
    wav = sum(0.2 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t + rng.uniform(0, 6.3)) for _ in range(3))
    return (wav + 0.05 * rng.standard_normal(t.shape)).astype(np.float32)


def make_tiny_tokenizer(output_dir: str | os.PathLike, vocab_size: int = 99, lang_codes=(), texts=None):
    """Train the tiny joint sentencepiece tokenizer into `output_dir` (a `Speech2TextTokenizer`)."""
    return train_sentencepiece(
        texts if texts is not None else tiny_corpus(),
        vocab_size,
        output_dir,
        lang_codes=lang_codes,
        hard_vocab_limit=False,
    )


def tiny_speech_config(**overrides) -> HubertConfig:
    kwargs = {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 37,
        "conv_dim": (16, 16, 16),
        "conv_stride": (5, 4, 4),
        "conv_kernel": (10, 4, 4),
        "conv_bias": True,
        "feat_extract_norm": "layer",
        "do_stable_layer_norm": True,
        "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 2,
        "hidden_dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "feat_proj_dropout": 0.0,
        "final_dropout": 0.0,
        "layerdrop": 0.0,
        "mask_time_prob": 0.0,
        "vocab_size": 8,
    }
    kwargs.update(overrides)
    return HubertConfig(**kwargs)


def make_tiny_speech_encoder(output_dir: str | os.PathLike | None = None, seed: int = 0, **overrides) -> HubertModel:
    """A tiny random `HubertModel`; saved to `output_dir` (safetensors) when given. Overrides go to `HubertConfig`."""
    torch.manual_seed(seed)
    model = HubertModel(tiny_speech_config(**overrides)).eval()
    if output_dir is not None:
        model.save_pretrained(output_dir)
        make_feature_extractor().save_pretrained(output_dir)
    return model


def tiny_whisper_config(window_seconds: float = 2.0, **overrides):
    """A tiny `WhisperConfig` (16 mel bins, d_model 32, 2 encoder layers) for a `window_seconds` window."""
    from transformers import WhisperConfig

    kwargs = {
        "num_mel_bins": 16,
        "d_model": 32,
        "encoder_layers": 2,
        "decoder_layers": 1,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 2,
        "encoder_ffn_dim": 37,
        "decoder_ffn_dim": 37,
        "max_source_positions": round(window_seconds * 50),
        "max_target_positions": 32,
        "vocab_size": 99,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "decoder_start_token_id": 2,
        "dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "encoder_layerdrop": 0.0,
        "decoder_layerdrop": 0.0,
    }
    kwargs.update(overrides)
    return WhisperConfig(**kwargs)


def make_tiny_whisper_encoder(
    output_dir: str | os.PathLike | None = None, seed: int = 0, window_seconds: float = 2.0, full: bool = False
):
    """A tiny random Whisper encoder (or, `full=True`, a whole `WhisperForConditionalGeneration`), 20 ms frames.

    Saved to `output_dir` with its `WhisperFeatureExtractor` (16 mel bins, `chunk_length=window_seconds`) when given.
    """
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    torch.manual_seed(seed)
    config = tiny_whisper_config(window_seconds)
    model = (WhisperForConditionalGeneration(config) if full else WhisperEncoder(config)).eval()
    if output_dir is not None:
        model.save_pretrained(output_dir)
        WhisperFeatureExtractor(feature_size=16, chunk_length=window_seconds).save_pretrained(output_dir)
    return model


def tiny_speech2text_config(**overrides):
    """A tiny `Speech2TextConfig`: 16 fbank bins, one stride-2 GLU conv (20 ms frames), d_model 32, 2 layers."""
    from transformers import Speech2TextConfig

    kwargs = {
        "input_feat_per_channel": 16,
        "num_conv_layers": 1,
        "conv_kernel_sizes": (5,),
        "conv_channels": 32,
        "d_model": 32,
        "encoder_layers": 2,
        "decoder_layers": 1,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 2,
        "encoder_ffn_dim": 37,
        "decoder_ffn_dim": 37,
        "max_source_positions": 1000,
        "max_target_positions": 32,
        "vocab_size": 99,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "decoder_start_token_id": 2,
        "dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "encoder_layerdrop": 0.0,
        "decoder_layerdrop": 0.0,
    }
    kwargs.update(overrides)
    return Speech2TextConfig(**kwargs)


def make_tiny_speech2text_encoder(output_dir: str | os.PathLike | None = None, seed: int = 0):
    """A tiny random `Speech2TextEncoder`; saved with its `Speech2TextFeatureExtractor` (16 bins) when given."""
    from transformers import Speech2TextFeatureExtractor
    from transformers.models.speech_to_text.modeling_speech_to_text import Speech2TextEncoder

    torch.manual_seed(seed)
    model = Speech2TextEncoder(tiny_speech2text_config()).eval()
    if output_dir is not None:
        model.save_pretrained(output_dir)
        Speech2TextFeatureExtractor(feature_size=16, num_mel_bins=16).save_pretrained(output_dir)
    return model


def tiny_text_config(vocab_size: int = 99, **overrides) -> M2M100Config:
    kwargs = {
        "vocab_size": vocab_size,
        "d_model": 32,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "encoder_attention_heads": 2,
        "decoder_attention_heads": 2,
        "encoder_ffn_dim": 64,
        "decoder_ffn_dim": 64,
        "dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "encoder_layerdrop": 0.0,
        "decoder_layerdrop": 0.0,
        "max_position_embeddings": 256,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "decoder_start_token_id": 2,
    }
    kwargs.update(overrides)
    return M2M100Config(**kwargs)


def make_tiny_mt_model(
    output_dir: str | os.PathLike | None = None, tokenizer=None, vocab_size: int = 99, seed: int = 0, **overrides
) -> M2M100ForConditionalGeneration:
    """A tiny random M2M100 whose vocabulary and special ids match `tokenizer` (if given); saved when `output_dir`."""
    if tokenizer is not None:
        vocab_size = len(tokenizer)
        overrides = {
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "decoder_start_token_id": tokenizer.eos_token_id,
            **overrides,
        }
    torch.manual_seed(seed)
    model = M2M100ForConditionalGeneration(tiny_text_config(vocab_size, **overrides)).eval()
    if output_dir is not None:
        model.save_pretrained(output_dir)
        if tokenizer is not None:
            tokenizer.save_pretrained(output_dir)
    return model


def make_tiny_processor(output_dir: str | os.PathLike, tokenizer=None, **processor_kwargs) -> DTWAlignProcessor:
    """Tokenizer (trained here unless given) + feature extractor, saved to `output_dir`."""
    output_dir = Path(output_dir)
    if tokenizer is None:
        tokenizer = make_tiny_tokenizer(output_dir / "tokenizer")
    processor = DTWAlignProcessor(make_feature_extractor(), tokenizer, **processor_kwargs)
    processor.save_pretrained(output_dir)
    return processor


def make_tiny_model(
    output_dir: str | os.PathLike | None = None,
    seed: int = 0,
    speech_overrides=None,
    text_overrides=None,
    **config_overrides,
) -> tuple[DTWAlignForSpeechTranslation, DTWAlignProcessor]:
    """A tiny random `DTWAlignForSpeechTranslation` and its processor, built offline.

    Args:
        output_dir (`str`, *optional*): where the tokenizer, processor and parts are written (a temp dir if omitted).
        speech_overrides, text_overrides (`dict`, *optional*): `HubertConfig` / `M2M100Config` overrides.
        **config_overrides: `DTWAlignConfig` fields (`alignment="cmot"`, `mixup="discrete"`, ...).

    Returns:
        `(model, processor)`; the model is in eval mode with `adapter_hidden_size=32`.
    """
    output_dir = Path(output_dir or tempfile.mkdtemp(prefix="dtw_align_tiny_"))
    processor = make_tiny_processor(output_dir / "processor")
    speech = make_tiny_speech_encoder(seed=seed, **(speech_overrides or {}))
    mt = make_tiny_mt_model(tokenizer=processor.tokenizer, seed=seed + 1, **(text_overrides or {}))
    config_overrides.setdefault("adapter_hidden_size", 32)
    config = DTWAlignConfig(speech_config=speech.config, text_config=mt.config, **config_overrides)
    torch.manual_seed(seed + 2)
    model = DTWAlignForSpeechTranslation(config, speech_encoder=speech, mt_model=mt).eval()
    return model, processor


__all__ = [
    "make_tiny_model",
    "make_tiny_mt_model",
    "make_tiny_processor",
    "make_tiny_speech2text_encoder",
    "make_tiny_speech_encoder",
    "make_tiny_tokenizer",
    "make_tiny_whisper_encoder",
    "synthetic_audio",
    "tiny_corpus",
    "tiny_speech2text_config",
    "tiny_speech_config",
    "tiny_text_config",
    "tiny_whisper_config",
]
