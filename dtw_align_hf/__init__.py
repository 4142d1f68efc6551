"""DTW-Align for end-to-end speech translation, as a Hugging Face Transformers model.

Importing the package registers the model with the Auto classes (`AutoConfig`, `AutoModelForSpeechSeq2Seq`,
`AutoProcessor`) and marks the classes for `trust_remote_code` sharing: `save_pretrained` then writes an `auto_map`
and copies the model's code files next to the weights.
"""

from transformers import AutoConfig, AutoModelForSpeechSeq2Seq, AutoProcessor

from .alignment import AlignmentOutput, align
from .configuration_dtw_align import ALIGNMENTS, DTW_ALIGN_SETTINGS, MIXUPS, PRESETS, SPEECH_POSITIONS, DTWAlignConfig
from .metrics import alignment_accuracy, translation_metrics
from .modeling_dtw_align import (
    DTWAlignConvAdapter,
    DTWAlignEncoderOutput,
    DTWAlignForSpeechTranslation,
    DTWAlignPreTrainedModel,
    DTWAlignSeq2SeqLMOutput,
)
from .plotting import plot_alignment
from .processing_dtw_align import DTWAlignProcessor, train_sentencepiece


__version__ = "0.1.0.dev0"

AutoConfig.register(DTWAlignConfig.model_type, DTWAlignConfig, exist_ok=True)
AutoModelForSpeechSeq2Seq.register(DTWAlignConfig, DTWAlignForSpeechTranslation, exist_ok=True)
AutoProcessor.register(DTWAlignConfig, DTWAlignProcessor, exist_ok=True)
DTWAlignConfig.register_for_auto_class()
DTWAlignForSpeechTranslation.register_for_auto_class("AutoModelForSpeechSeq2Seq")
DTWAlignProcessor.register_for_auto_class("AutoProcessor")

# pipeline("automatic-speech-recognition", model=...) decodes by class name; make it use generate for ours
from .pipeline_dtw_align import register_speech_seq2seq  # noqa: E402


register_speech_seq2seq()

__all__ = [
    "ALIGNMENTS",
    "DTW_ALIGN_SETTINGS",
    "MIXUPS",
    "PRESETS",
    "SPEECH_POSITIONS",
    "AlignmentOutput",
    "DTWAlignConfig",
    "DTWAlignConvAdapter",
    "DTWAlignEncoderOutput",
    "DTWAlignForSpeechTranslation",
    "DTWAlignPreTrainedModel",
    "DTWAlignProcessor",
    "DTWAlignSeq2SeqLMOutput",
    "align",
    "alignment_accuracy",
    "plot_alignment",
    "train_sentencepiece",
    "translation_metrics",
]
