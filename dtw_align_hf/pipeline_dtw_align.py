"""`pipeline("automatic-speech-recognition", model=...)` for DTW-Align checkpoints.

transformers' `AutomaticSpeechRecognitionPipeline` chooses how to decode from the model's class *name*
(`AutomaticSpeechRecognitionPipeline.__init__`, transformers 5.x): Whisper by `model_type`, then "seq2seq" when the
class name is one of `MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES.values()`, else "ctc". Registering a class with
`AutoModelForSpeechSeq2Seq.register` does not add it to that table, so a DTW-Align model was read as a CTC model and
its forward pass failed (`Pass labels ... or decoder_input_ids`).

`register_speech_seq2seq()` adds `"dtw_align": "DTWAlignForSpeechTranslation"` to that table; the stock pipeline then
takes its seq2seq path: feature extraction with the checkpoint's own feature extractor (whatever keys it returns,
`input_values` or `input_features`, plus `attention_mask`), `model.generate`, and long-audio chunking with
`chunk_length_s` (the pipeline translates overlapping chunks and merges the token sequences on their longest common
overlap). The entry is inert for the Auto classes: their lazy mappings only read model types that are also in
`CONFIG_MAPPING_NAMES`, which `dtw_align` is not (`_LazyAutoMapping.keys/values/items`).

`import dtw_align_hf` calls it. For checkpoints loaded with `trust_remote_code=True` without the package, this file is
a flat sibling module that ships with the model's code: the modeling module imports it and calls it at import time
(see the docstring of `register_speech_seq2seq`).

This module must stay importable on its own (no imports of package modules), since it is copied next to the weights.
"""

MODEL_TYPE = "dtw_align"
MODEL_CLASS_NAME = "DTWAlignForSpeechTranslation"


def register_speech_seq2seq() -> None:
    """Make transformers' ASR pipeline decode DTW-Align models with `generate` (its "seq2seq" path). Idempotent.

    Called by `import dtw_align_hf`; for remote code, `modeling_dtw_align.py` calls it at import time:

        from .pipeline_dtw_align import register_speech_seq2seq
        register_speech_seq2seq()

    After it, `pipeline("automatic-speech-recognition", model=checkpoint)` works for a saved or Hub checkpoint:

        asr = pipeline("automatic-speech-recognition", model="runs/demo/finetune_st_whisper")
        asr({"raw": wav, "sampling_rate": 16000}, max_new_tokens=200)          # {"text": "..."}
        asr(long_wav, chunk_length_s=20, max_new_tokens=200)                    # long audio in 20 s chunks
    """
    from transformers.models.auto import modeling_auto

    names = modeling_auto.MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES
    if names.get(MODEL_TYPE) not in (None, MODEL_CLASS_NAME):
        raise RuntimeError(
            f"transformers already maps model type {MODEL_TYPE!r} to {names[MODEL_TYPE]!r} for speech seq2seq; "
            f"cannot register {MODEL_CLASS_NAME!r} for the ASR pipeline."
        )
    names[MODEL_TYPE] = MODEL_CLASS_NAME


def is_registered() -> bool:
    """Whether the ASR pipeline will treat `DTWAlignForSpeechTranslation` as a seq2seq model."""
    from transformers.models.auto import modeling_auto

    return MODEL_CLASS_NAME in modeling_auto.MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES.values()


__all__ = ["MODEL_CLASS_NAME", "MODEL_TYPE", "is_registered", "register_speech_seq2seq"]
