"""Shared pytest fixtures: tiny random model parts saved to temporary directories, synthetic audio, seeds.

Session fixtures (built once per run, read-only; copy before mutating):
- `tiny_tokenizer_dir` / `tiny_tokenizer`: a joint sentencepiece tokenizer (`Speech2TextTokenizer`, ~74-99 pieces,
  fairseq ids bos=0 pad=1 eos=2 unk=3) trained on `dtw_align_hf.testing_utils.tiny_corpus()`.
- `tiny_lang_tokenizer_dir`: the same with `<lang:de>` and `<lang:en>` pieces (multilingual / forced-BOS tests).
- `tiny_speech_encoder_dir`: a tiny random `HubertModel` (hidden 32, 2 layers, 200 frames/s, layer-norm CNN) and its
  `Wav2Vec2FeatureExtractor`, saved with `save_pretrained` (what `from_pretrained_parts` reads as a "Hub id").
- `tiny_mt_dir`: a tiny random `M2M100ForConditionalGeneration` (d_model 32, 2+2 layers) over the tiny vocabulary,
  plus the tokenizer, saved with `save_pretrained` (a stage-1 MT checkpoint).
- `tiny_processor_dir` / `tiny_processor`: a saved `DTWAlignProcessor` (feature extractor + tiny tokenizer).
- `tiny_whisper_dir`, `tiny_speech2text_dir`: tiny random mel encoders with their feature extractors.

Function fixtures:
- `make_model(**config_overrides)`: a fresh `DTWAlignForSpeechTranslation` built with `from_pretrained_parts` from the
  saved parts (eval mode, `adapter_hidden_size=32`, the torch alignment backend unless overridden).
- `make_batch(n=2, seconds=(1.0, 0.7), ...)`: a processor batch of synthetic audio + transcripts + translations.
- `family` (parametrised: hubert, whisper, speech_to_text): model and batch builders for each encoder family.
- `seed` (autouse): seeds torch, numpy and random with 0 before every test.
"""

import random

import numpy as np
import pytest
import torch

from dtw_align_hf import DTWAlignForSpeechTranslation
from dtw_align_hf.testing_utils import (
    make_tiny_mt_model,
    make_tiny_processor,
    make_tiny_speech2text_encoder,
    make_tiny_speech_encoder,
    make_tiny_tokenizer,
    make_tiny_whisper_encoder,
    synthetic_audio,
)


TRANSCRIPTS = ["das kleine rote haus", "ein hund", "die katze sieht den baum"]
TRANSLATIONS = ["the small red house", "a dog runs", "the cat sees the tree"]


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    return 0


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_tokenizer")
    make_tiny_tokenizer(path)
    return path


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_tokenizer_dir)


@pytest.fixture(scope="session")
def tiny_lang_tokenizer_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_lang_tokenizer")
    make_tiny_tokenizer(path, lang_codes=("de", "en"))
    return path


@pytest.fixture(scope="session")
def tiny_speech_encoder_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_hubert")
    make_tiny_speech_encoder(path)
    return path


@pytest.fixture(scope="session")
def tiny_mt_dir(tmp_path_factory, tiny_tokenizer):
    path = tmp_path_factory.mktemp("tiny_m2m100")
    make_tiny_mt_model(path, tokenizer=tiny_tokenizer, seed=1)
    return path


@pytest.fixture(scope="session")
def tiny_processor_dir(tmp_path_factory, tiny_tokenizer):
    path = tmp_path_factory.mktemp("tiny_processor")
    make_tiny_processor(path, tokenizer=tiny_tokenizer)
    return path


@pytest.fixture(scope="session")
def tiny_processor(tiny_processor_dir):
    from dtw_align_hf import DTWAlignProcessor

    return DTWAlignProcessor.from_pretrained(tiny_processor_dir)


@pytest.fixture
def make_model(tiny_speech_encoder_dir, tiny_mt_dir):
    def _make(**config_overrides) -> DTWAlignForSpeechTranslation:
        config_overrides.setdefault("adapter_hidden_size", 32)
        config_overrides.setdefault("alignment_backend", "torch")
        torch.manual_seed(0)
        model = DTWAlignForSpeechTranslation.from_pretrained_parts(
            str(tiny_speech_encoder_dir), str(tiny_mt_dir), **config_overrides
        )
        return model.eval()

    return _make


@pytest.fixture
def make_batch(tiny_processor):
    def _make(n: int = 2, seconds=(1.0, 0.7, 0.9), transcripts=TRANSCRIPTS, translations=TRANSLATIONS, **kwargs):
        audio = [synthetic_audio(seconds[i], seed=i + 1) for i in range(n)]
        return tiny_processor(
            audio=audio,
            sampling_rate=16000,
            text=list(transcripts[:n]),
            text_target=list(translations[:n]),
            **kwargs,
        )

    return _make


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory):
    """A tiny random `WhisperEncoder` (16 mel bins, 2 s window = 100 positions) + its `WhisperFeatureExtractor`."""
    path = tmp_path_factory.mktemp("tiny_whisper")
    make_tiny_whisper_encoder(path)
    return path


@pytest.fixture(scope="session")
def tiny_speech2text_dir(tmp_path_factory):
    """A tiny random `Speech2TextEncoder` (16 fbank bins, one conv: 20 ms frames) + its feature extractor."""
    path = tmp_path_factory.mktemp("tiny_speech2text")
    make_tiny_speech2text_encoder(path)
    return path


@pytest.fixture(params=["hubert", "whisper", "speech_to_text"])
def family(request, tiny_speech_encoder_dir, tiny_whisper_dir, tiny_speech2text_dir, tiny_mt_dir):
    """One speech-encoder family: `(name, encoder_dir, make_model(**overrides), make_batch(n, ...))`.

    Mel families use a one-layer adapter (Whisper/Speech2Text give 50 frames/s, the tiny HuBERT 200), so that DTW
    has enough frames for the tiny transcripts.
    """
    from dtw_align_hf import DTWAlignProcessor

    name = request.param
    path = {"hubert": tiny_speech_encoder_dir, "whisper": tiny_whisper_dir, "speech_to_text": tiny_speech2text_dir}[
        name
    ]
    processor = DTWAlignProcessor.from_pretrained_parts(str(path), str(tiny_mt_dir))

    def _model(**overrides):
        overrides.setdefault("adapter_hidden_size", 32)
        overrides.setdefault("alignment_backend", "torch")
        if name != "hubert":
            overrides.setdefault("adapter_num_layers", 1)
        torch.manual_seed(0)
        return DTWAlignForSpeechTranslation.from_pretrained_parts(str(path), str(tiny_mt_dir), **overrides).eval()

    def _batch(n: int = 2, seconds=(1.0, 0.7, 0.9)):
        audio = [synthetic_audio(seconds[i], seed=i + 1) for i in range(n)]
        return processor(audio=audio, sampling_rate=16000, text=TRANSCRIPTS[:n], text_target=TRANSLATIONS[:n])

    return name, path, processor, _model, _batch
