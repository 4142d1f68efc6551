#!/usr/bin/env python
"""Stage 2 of DTW-Align: multitask speech-translation fine-tuning with DTW-aligned speech/text mixup.

    accelerate launch --config_file recipes/accelerate/multi_gpu_bf16.yaml run_finetune_st.py \
        --config recipes/must_c/en-de/finetune_st.yaml --output_dir runs/must_c_en-de

    # the bundled CPU demo (stage 1 first: run_pretrain_mt.py --config recipes/demo/pretrain_mt.yaml)
    python run_finetune_st.py --config recipes/demo/finetune_st.yaml

Every DTW-Align setting is an argument with the `DTWAlignConfig` field name (`--alignment ot`, `--mixup discrete`,
`--kl_weight 2`, `--preset cmot`, ...); unset ones keep the config's (or the preset's) default. A rerun with the
same `--output_dir` resumes from the newest checkpoint (`--resume auto`). The run ends with a test-set evaluation
(BLEU, chrF with sacrebleu signatures, alignment accuracy when reference word timings exist), `results.json`,
`test_hypotheses.txt` / `test_references.txt` (for tools/compare_systems.py) and a model card (README.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser, set_seed

from dtw_align_hf.cli import (
    BadSampleFilter,
    DataArguments,
    finish_run,
    is_streamed,
    load_splits,
    parse_args_and_config,
    print_run_summary,
    resolve_resume,
    setup_logging,
)
from dtw_align_hf.trainer import DTWAlignTrainer, DTWAlignTrainingArguments, make_compute_metrics


@dataclass
class ModelArguments:
    """Where the model's parts come from, and what to freeze."""

    mt_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Stage-1 checkpoint (run_pretrain_mt.py output_dir): translation model + tokenizer."},
    )
    speech_encoder_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Pretrained speech encoder: 'facebook/hubert-base-ls960' (English sources), "
            "'utter-project/mHuBERT-147' (other sources), or a local folder."
        },
    )
    speech_encoder_config: str | None = field(
        default=None,
        metadata={
            "help": "Without speech_encoder_name_or_path: build a randomly initialised speech encoder from this config "
            "(a dict in the recipe, or a JSON string), e.g. {model_type: hubert, hidden_size: 64, ...}. For offline "
            "demos and tests."
        },
    )
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Start from a complete DTW-Align checkpoint instead of the two parts (e.g. to evaluate)."},
    )
    processor_name_or_path: str | None = field(
        default=None, metadata={"help": "Processor/tokenizer folder (default: mt_model_name_or_path)."}
    )
    freeze_feature_encoder: bool = field(
        default=True, metadata={"help": "Freeze the speech encoder's convolutional feature extractor (CMOT does)."}
    )
    freeze_speech_encoder: bool = field(default=False, metadata={"help": "Freeze the whole speech encoder."})
    layerdrop: float = field(
        default=0.0,
        metadata={
            "help": "LayerDrop of the speech encoder and translation model. 0 keeps every parameter used each step, "
            "which DDP needs (HuBERT defaults to 0.1, M2M100 to 0.05)."
        },
    )
    mask_time_prob: float | None = field(
        default=None, metadata={"help": "SpecAugment time-mask probability of the speech encoder (None: keep)."}
    )
    lora_r: int = field(default=0, metadata={"help": "LoRA rank on the attention projections (0: full fine-tuning)."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    model_revision: str | None = field(
        default=None, metadata={"help": "Hub revision (branch, tag, commit) of the pretrained parts."}
    )


@dataclass
class DTWAlignArguments:
    """DTW-Align settings: the same names as `DTWAlignConfig` (see its docstring). None keeps the config default."""

    preset: str | None = field(default=None, metadata={"help": "'dtw_align' or 'cmot' (CMOT's released recipe)."})
    alignment: str | None = field(default=None, metadata={"help": "dtw | ot (= cmot) | cmot | nn | uniform | none"})
    alignment_backend: str | None = field(default=None, metadata={"help": "auto | torch | numba | triton"})
    alignment_window: int | None = field(default=None, metadata={"help": "CMOT window half-width (tokens)."})
    alignment_strict: bool | None = field(default=None, metadata={"help": "Raise on unalignable samples."})
    mixup: str | None = field(default=None, metadata={"help": "interpolation | discrete | none"})
    mixup_level: str | None = field(default=None, metadata={"help": "token | frame"})
    mix_position: str | None = field(default=None, metadata={"help": "encoder_input | encoder_output"})
    mixup_ratio: float | None = field(default=None, metadata={"help": "Text weight lam (constant schedule)."})
    mixup_ratio_schedule: str | None = field(default=None, metadata={"help": "constant | uniform | beta | linear"})
    mixup_ratio_min: float | None = field(default=None, metadata={"help": "Lower end of lam."})
    mixup_ratio_max: float | None = field(default=None, metadata={"help": "Upper end of lam."})
    mixup_beta_alpha: float | None = field(default=None, metadata={"help": "Beta concentration (beta schedule)."})
    discrete_mixup_prob: float | None = field(default=None, metadata={"help": "Replacement probability (discrete)."})
    st_weight: float | None = field(default=None, metadata={"help": "Weight of the speech-translation CE."})
    mt_weight: float | None = field(default=None, metadata={"help": "Weight of the text-translation CE."})
    mix_weight: float | None = field(default=None, metadata={"help": "Weight of the mixup CE."})
    kl_weight: float | None = field(default=None, metadata={"help": "Weight of the KL terms."})
    kl_st_mix: bool | None = field(default=None, metadata={"help": "Symmetric KL between ST and mixed outputs."})
    kl_mt_mix: bool | None = field(default=None, metadata={"help": "Symmetric KL between MT and mixed outputs."})
    label_smoothing: float | None = field(default=None, metadata={"help": "Label smoothing of every CE."})
    adapter_num_layers: int | None = field(default=None, metadata={"help": "Strided 1-D convolutions (2)."})
    adapter_kernel_size: int | None = field(default=None, metadata={"help": "Kernel of each convolution (5)."})
    adapter_stride: int | None = field(default=None, metadata={"help": "Stride of each convolution (2)."})
    adapter_hidden_size: int | None = field(default=None, metadata={"help": "Convolution channels (1024)."})
    adapter_activation: str | None = field(default=None, metadata={"help": "glu | gelu"})
    adapter_layer_norm: bool | None = field(default=None, metadata={"help": "LayerNorm on the adapter output."})
    max_source_seconds: float | None = field(default=None, metadata={"help": "Reject longer audio (30 s)."})

    def overrides(self) -> dict[str, Any]:
        """The fields that were set, as `DTWAlignConfig` keyword arguments."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def make_parser() -> HfArgumentParser:
    """The script's arguments; `--config recipe.yaml` (handled by `parse_args_and_config`) sets their defaults."""
    return HfArgumentParser(
        (ModelArguments, DataArguments, DTWAlignArguments, DTWAlignTrainingArguments),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_model(model_args: ModelArguments, align_args: DTWAlignArguments, training_args):
    """The DTW-Align model: from a full checkpoint, or composed from a speech encoder and the stage-1 model."""
    from dtw_align_hf import DTWAlignForSpeechTranslation

    overrides = align_args.overrides()
    if model_args.model_name_or_path:
        model = DTWAlignForSpeechTranslation.from_pretrained(model_args.model_name_or_path)
        for key, value in overrides.items():
            setattr(model.config, key, value)
        model.config.validate_dtw_align()
    else:
        if not model_args.mt_model_name_or_path:
            raise ValueError("Give --mt_model_name_or_path (the stage-1 output) or --model_name_or_path.")
        speech_path = model_args.speech_encoder_name_or_path
        if speech_path is None and model_args.speech_encoder_config is not None:
            speech_path = _random_speech_encoder(model_args.speech_encoder_config, training_args)
        elif speech_path is None:
            raise ValueError(
                "Give --speech_encoder_name_or_path (e.g. facebook/hubert-base-ls960) or --speech_encoder_config."
            )
        speech_over = {"speech_layerdrop": model_args.layerdrop}
        if model_args.mask_time_prob is not None:
            speech_over["speech_mask_time_prob"] = model_args.mask_time_prob
        hub = {"revision": model_args.model_revision} if model_args.model_revision else {}
        model = DTWAlignForSpeechTranslation.from_pretrained_parts(
            speech_path,
            model_args.mt_model_name_or_path,
            speech_kwargs=hub,
            text_encoder_layerdrop=model_args.layerdrop,
            text_decoder_layerdrop=model_args.layerdrop,
            **speech_over,
            **overrides,
        )
    if model_args.freeze_speech_encoder:
        model.freeze_speech_encoder()
    elif model_args.freeze_feature_encoder:
        model.freeze_feature_encoder()
    if model_args.lora_r > 0:
        model = _add_lora(model, model_args)
    return model


def _random_speech_encoder(config: str | dict, training_args) -> str:
    """Save a randomly initialised speech encoder built from `config` and return its folder (for from_pretrained_parts).

    The weights depend only on the seed, so every rank (and a resumed run) builds the same encoder; the main
    process writes it first.
    """
    from transformers import AutoConfig, AutoModel

    config = json.loads(config) if isinstance(config, str) else dict(config)
    model_type = config.pop("model_type", "hubert")
    path = Path(training_args.output_dir) / "_speech_encoder_init"  # "_*" is left out of Hub pushes
    with training_args.main_process_first(desc="random speech encoder"):
        if not (path / "config.json").is_file():
            set_seed(training_args.seed)
            encoder = AutoModel.from_config(AutoConfig.for_model(model_type, **config))
            encoder.save_pretrained(path)
    return str(path)


def _add_lora(model, model_args: ModelArguments):
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=r".*(speech_encoder\.encoder\.layers\.\d+\.attention|mt\.model\.(encoder|decoder)\.layers\.\d+"
        r"\.(self_attn|encoder_attn))\.(q_proj|k_proj|v_proj|out_proj)",
        modules_to_save=["adapter"],
    )
    model = get_peft_model(model, lora)
    model.print_trainable_parameters()
    return model


class SpeechTranslationCollator:
    """Checks audio with the processor, encodes text with the processor's conventions, pads with the data package.

    The processor rejects bad audio (empty, NaN, stereo, too long) with a `ValueError` that `BadSampleFilter` turns
    into a skipped, counted sample; transcripts and translations are encoded exactly as at inference
    (`encode_transcripts` / `encode_translations`: target-language token and `</s>`), and
    `DataCollatorSpeechTranslation` pads everything (labels with -100).
    """

    def __init__(self, processor):
        from dtw_align_hf.data import DataCollatorSpeechTranslation

        self.processor = processor
        self.pad = DataCollatorSpeechTranslation(
            tokenizer=processor.tokenizer,
            feature_extractor=processor.feature_extractor,
            sampling_rate=processor.sampling_rate,
        )

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        processor, ready = self.processor, []
        for f in features:
            audio = processor.check_audio(f["audio"], f.get("sampling_rate", processor.sampling_rate))[0]
            ready.append(
                {
                    "id": f.get("id"),
                    "audio": audio,
                    "input_ids": processor.encode_transcripts(f["transcript"])[0],
                    "labels": processor.encode_translations(f["translation"])[0],
                }
            )
        return self.pad(ready)


def main(
    model_args: ModelArguments,
    data_args: DataArguments,
    align_args: DTWAlignArguments,
    training_args: DTWAlignTrainingArguments,
) -> dict[str, Any]:
    """Run stage 2 and return the test-set results (also written to `output_dir/results.json`)."""
    from dtw_align_hf import DTWAlignProcessor

    # 1. logging per rank
    setup_logging(training_args)
    started = time.time()

    # 2. seed + last checkpoint
    set_seed(training_args.seed)
    resume_from = resolve_resume(training_args)

    # 3. data (bad samples are skipped and counted by the loaders and the collator filter)
    splits, counters = load_splits(data_args, decode_audio=True, training_args=training_args)

    # 4. processor + model
    processor_path = (
        model_args.processor_name_or_path or model_args.model_name_or_path or model_args.mt_model_name_or_path
    )
    processor = DTWAlignProcessor.from_pretrained(processor_path)
    model = build_model(model_args, align_args, training_args)
    collator = BadSampleFilter(SpeechTranslationCollator(processor), counters)

    # 5. trainer
    tokenizer = processor.tokenizer
    trainer = DTWAlignTrainer(
        model=model,
        args=training_args,
        train_dataset=splits.get("train"),
        eval_dataset=splits.get("eval"),
        data_collator=collator,
        processing_class=processor,
        compute_metrics=make_compute_metrics(tokenizer),
        card_info=card_info(model_args, data_args, training_args, stage="finetune_st"),
    )

    # 6. train (resume)
    if training_args.do_train and "train" in splits:
        train_result = trainer.train(resume_from_checkpoint=resume_from)
        trainer.save_model()
        if training_args.should_save:
            processor.save_pretrained(training_args.output_dir)
        trainer.log_metrics("train", train_result.metrics)
        trainer.save_metrics("train", train_result.metrics)
        trainer.save_state()

    # 7. test-set evaluation (+ alignment accuracy where reference timings exist) -> results JSON;  8. card / push
    def alignment_evaluation(trainer) -> dict[str, Any] | None:
        from dtw_align_hf.evaluation import evaluate_alignment, reference_timings_for

        if "test" not in splits or not trainer.is_world_process_zero() or is_streamed(splits["test"]):
            return None
        if getattr(trainer, "is_fsdp_enabled", False):  # sharded parameters: run tools/eval_alignment.py afterwards
            return None
        timings = reference_timings_for(data_args)
        if not timings:
            return None
        return evaluate_alignment(
            trainer.accelerator.unwrap_model(trainer.model),
            processor,
            splits["test"],
            timings,
            plot_dir=Path(training_args.output_dir) / "alignment_plots",
        )

    return finish_run(
        trainer, splits, data_args, training_args, tokenizer, counters, started, "finetune_st", alignment_evaluation
    )


def card_info(model_args: ModelArguments, data_args: DataArguments, training_args, stage: str) -> dict[str, Any]:
    return {
        "stage": stage,
        "dataset": data_args.dataset,
        "dataset_config": data_args.dataset_config,
        "languages": [data_args.src_lang, data_args.tgt_lang],
        "recipe": data_args.recipe,
        "command": " ".join(["python", Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else None,
        "base_models": [
            model_args.model_name_or_path,
            model_args.speech_encoder_name_or_path or "a randomly initialised speech encoder (speech_encoder_config)",
            model_args.mt_model_name_or_path,
        ],
        "test_split": data_args.test_split,
        "train_hours": data_args.train_hours,
    }


if __name__ == "__main__":
    results = main(*parse_args_and_config(make_parser()))
    print(print_run_summary(results, "run_finetune_st"))
