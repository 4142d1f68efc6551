#!/usr/bin/env python
"""Stage 2 of DTW-Align: multitask speech-translation fine-tuning with DTW-aligned speech/text mixup.

    accelerate launch --config_file recipes/accelerate/multi_gpu_bf16.yaml run_finetune_st.py \
        --config recipes/must_c/en-de/finetune_st.yaml --output_dir runs/must_c_en-de

    # the bundled CPU demo (stage 1 first: run_pretrain_mt.py --config recipes/demo/pretrain_mt.yaml)
    python run_finetune_st.py --config recipes/demo/finetune_st.yaml

Every DTW-Align setting is an argument with the `DTWAlignConfig` field name (`--alignment ot`, `--mixup discrete`,
`--kl_weight 2`, `--preset cmot`, ...); unset ones keep the config's (or the preset's) default. On a complete
checkpoint (`--model_name_or_path`) they go through `update_dtw_align` (presets expand; architecture fields such as
`--adapter_num_layers` are refused). A rerun with the same `--output_dir` resumes from the newest complete
checkpoint (`--resume auto`) if its settings match. The run ends with a test-set evaluation (BLEU, chrF with
sacrebleu signatures, alignment accuracy when reference word timings exist, alignment plots always),
`results.json`, `test_hypotheses.txt` / `test_references.txt` (for tools/compare_systems.py) and a model card.

The audio-length limit has one source: the model config's `max_source_seconds` (`--max_source_seconds`, kept from
a checkpoint otherwise). The processor is set from it, and the data filter `--max_duration` never exceeds it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser, set_seed
from transformers.utils import logging

from dtw_align_hf import configuration_dtw_align as cfg
from dtw_align_hf.cli import SetupError, check_nested_config
from dtw_align_hf.data import BadSampleFilter, DataArguments, DataCollatorSpeechTranslation, load_splits
from dtw_align_hf.run_utils import (
    card_info_base,
    check_paths,
    finish_run,
    is_streamed,
    prepare_output_dir,
    run_main,
    run_settings,
    setup_logging,
    train_and_save,
)
from dtw_align_hf.trainer import DTWAlignTrainer, DTWAlignTrainingArguments, make_compute_metrics


logger = logging.get_logger("run_finetune_st")


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
            "'utter-project/mHuBERT-147' (other sources), 'openai/whisper-base' (multilingual; its encoder is used), "
            "or a local folder (python -m dtw_align_hf.pretrained builds Whisper base offline)."
        },
    )
    speech_window_seconds: float | None = field(
        default=None,
        metadata={
            "help": "Whisper encoders only: the fixed window every utterance is padded to (seconds, a multiple of "
            "0.02; default the checkpoint's own, 30 s for OpenAI's). A shorter window is much cheaper; longer audio "
            "is rejected. Used when composing from parts."
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
    cache_speech_encoder_outputs: bool = field(
        default=False,
        metadata={
            "help": "With --freeze_speech_encoder: compute the frozen encoder's output once per utterance and reuse it "
            "in later epochs (eval-mode outputs, kept in memory). Most of a frozen-encoder CPU step is the encoder."
        },
    )
    speech_encoder_cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "With --cache_speech_encoder_outputs: also keep the frozen encoder's outputs in this folder (a "
            "sub-folder per encoder, named by a hash of its weights) and reuse them in later runs on the same audio."
        },
    )
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

    def __post_init__(self):
        if self.speech_encoder_config is not None:  # a typo inside it would silently build a default-sized encoder
            self.speech_encoder_config = check_nested_config("speech_encoder_config", self.speech_encoder_config)


def _choices(names: tuple[str, ...]) -> str:
    return " | ".join(names)


# choice fields -> the allowed names, defined once in configuration_dtw_align (help texts and checks use them)
CHOICES = {
    "preset": cfg.PRESETS,
    "alignment": cfg.ALIGNMENTS,
    "alignment_backend": cfg.ALIGNMENT_BACKENDS,
    "mixup": cfg.MIXUPS,
    "mixup_level": cfg.MIXUP_LEVELS,
    "mix_position": cfg.MIX_POSITIONS,
    "mixup_ratio_schedule": cfg.MIXUP_RATIO_SCHEDULES,
    "adapter_activation": cfg.ADAPTER_ACTIVATIONS,
    "alignment_normalization": cfg.SIMILARITY_NORMALIZATIONS,
    "speech_positions": cfg.SPEECH_POSITIONS,
    "ctc_classes": cfg.CTC_CLASSES,
}
# fields that change the module structure: refused on a complete checkpoint (its weights have another shape)
ARCHITECTURE_FIELDS = ("adapter_num_layers", "adapter_kernel_size", "adapter_stride", "adapter_hidden_size",
                       "adapter_activation", "adapter_layer_norm")  # fmt: skip


@dataclass
class DTWAlignArguments:
    """DTW-Align settings: the same names as `DTWAlignConfig` (see its docstring). None keeps the config default."""

    preset: str | None = field(default=None, metadata={"help": f"{_choices(cfg.PRESETS)} (cmot: CMOT's recipe)."})
    alignment: str | None = field(
        default=None, metadata={"help": f"{_choices(cfg.ALIGNMENTS)} (ot is an alias of cmot)."}
    )
    alignment_backend: str | None = field(default=None, metadata={"help": _choices(cfg.ALIGNMENT_BACKENDS)})
    alignment_window: int | None = field(default=None, metadata={"help": "CMOT window half-width (tokens, >= 0)."})
    alignment_strict: bool | None = field(default=None, metadata={"help": "Raise on unalignable samples."})
    alignment_normalization: str | None = field(
        default=None, metadata={"help": f"{_choices(cfg.SIMILARITY_NORMALIZATIONS)}: hub-token correction before DTW."}
    )
    alignment_diagonal_prior: float | None = field(
        default=None, metadata={"help": "Weight (>= 0) of the length-proportional diagonal prior inside DTW (0)."}
    )
    alignment_timing: bool | None = field(
        default=None, metadata={"help": "Time each alignment (syncs the device; logs align/seconds)."}
    )
    speech_positions: str | None = field(
        default=None,
        metadata={
            "help": f"{_choices(cfg.SPEECH_POSITIONS)}: positions the text encoder adds to speech (cmot: none)."
        },
    )
    mask_aligned_speech: bool | None = field(
        default=None, metadata={"help": "SpecAugment on the speech that is aligned (CMOT: no)."}
    )
    mixup: str | None = field(default=None, metadata={"help": _choices(cfg.MIXUPS)})
    mixup_level: str | None = field(default=None, metadata={"help": _choices(cfg.MIXUP_LEVELS)})
    mix_position: str | None = field(default=None, metadata={"help": _choices(cfg.MIX_POSITIONS)})
    mixup_ratio: float | None = field(default=None, metadata={"help": "Text weight lam (constant schedule)."})
    mixup_ratio_schedule: str | None = field(default=None, metadata={"help": _choices(cfg.MIXUP_RATIO_SCHEDULES)})
    mixup_ratio_min: float | None = field(default=None, metadata={"help": "Lower end of lam."})
    mixup_ratio_max: float | None = field(default=None, metadata={"help": "Upper end of lam."})
    mixup_beta_alpha: float | None = field(default=None, metadata={"help": "Beta concentration (beta schedule)."})
    discrete_mixup_prob: float | None = field(default=None, metadata={"help": "Replacement probability (discrete)."})
    st_weight: float | None = field(default=None, metadata={"help": "Weight of the speech-translation CE."})
    mt_weight: float | None = field(default=None, metadata={"help": "Weight of the text-translation CE."})
    mix_weight: float | None = field(default=None, metadata={"help": "Weight of the mixup CE."})
    kl_weight: float | None = field(default=None, metadata={"help": "Weight of the KL terms."})
    ctc_weight: float | None = field(
        default=None,
        metadata={
            "help": "Weight of the auxiliary CTC loss on the adapter output, its classes the text embeddings "
            "(cosine, as DTW reads them); 0 = off."
        },
    )
    ctc_classes: str | None = field(default=None, metadata={"help": _choices(cfg.CTC_CLASSES)})
    kl_st_mix: bool | None = field(default=None, metadata={"help": "Symmetric KL between ST and mixed outputs."})
    kl_mt_mix: bool | None = field(default=None, metadata={"help": "Symmetric KL between MT and mixed outputs."})
    label_smoothing: float | None = field(default=None, metadata={"help": "Label smoothing of every CE."})
    adapter_num_layers: int | None = field(default=None, metadata={"help": "Strided 1-D convolutions (2)."})
    adapter_kernel_size: int | None = field(default=None, metadata={"help": "Kernel of each convolution (5)."})
    adapter_stride: int | None = field(default=None, metadata={"help": "Stride of each convolution (2)."})
    adapter_hidden_size: int | None = field(default=None, metadata={"help": "Convolution channels (1024)."})
    adapter_activation: str | None = field(default=None, metadata={"help": _choices(cfg.ADAPTER_ACTIVATIONS)})
    adapter_layer_norm: bool | None = field(default=None, metadata={"help": "LayerNorm on the adapter output."})
    max_source_seconds: float | None = field(
        default=None,
        metadata={
            "help": "The model's audio-length guard (30 s): longer audio is rejected by the processor, and the data "
            "filter --max_duration never exceeds it."
        },
    )

    def __post_init__(self):
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value is not None and value not in allowed:
                import difflib

                close = difflib.get_close_matches(str(value), allowed, n=1, cutoff=0.5)
                hint = f" Did you mean --{name} {close[0]}?" if close else ""
                raise SetupError(f"--{name} {value!r} is not one of {', '.join(allowed)}.{hint}")
        for name in ("alignment_window", "adapter_num_layers", "adapter_kernel_size", "adapter_stride"):
            value = getattr(self, name)
            if value is not None and value < (0 if name == "alignment_window" else 1):
                raise SetupError(f"--{name} {value} must be {'>= 0' if name == 'alignment_window' else '>= 1'}.")
        for name in ("st_weight", "mt_weight", "mix_weight", "kl_weight", "ctc_weight", "label_smoothing",
                     "max_source_seconds", "alignment_diagonal_prior"):  # fmt: skip
            value = getattr(self, name)
            if value is not None and value < 0:
                raise SetupError(f"--{name} {value} must be >= 0.")

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
        refused = [n for n in ARCHITECTURE_FIELDS if n in overrides and overrides[n] != getattr(model.config, n)]
        if refused:
            raise SetupError(_architecture_message(refused, model_args.model_name_or_path))
        overrides = {k: v for k, v in overrides.items() if k not in ARCHITECTURE_FIELDS}  # equal values: no change
        # the one way to change settings on a built model: presets expand, choices are validated
        (model if hasattr(model, "update_dtw_align") else model.config).update_dtw_align(**overrides)
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
        if model_args.speech_window_seconds is not None:
            speech_over["speech_window_seconds"] = model_args.speech_window_seconds
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
        if model_args.cache_speech_encoder_outputs:
            model.cache_speech_encoder_outputs(directory=model_args.speech_encoder_cache_dir)
    elif model_args.freeze_feature_encoder:
        model.freeze_feature_encoder()
    if model_args.lora_r > 0:
        model = _add_lora(model, model_args)
    return model


def _architecture_message(refused: list[str], path: str) -> str:
    given = " ".join(f"--{name}" for name in refused)
    return (
        f"{given} would change the architecture of the complete checkpoint {path!r} (its weights have another "
        "shape). Drop them to fine-tune that model, or build a new one from its parts (--speech_encoder_name_or_path "
        "and --mt_model_name_or_path) with the architecture you want."
    )


def _checkpoint_config(model_args: ModelArguments):
    """The config of `--model_name_or_path` (no weights are read)."""
    from dtw_align_hf import DTWAlignConfig

    hub = {"revision": model_args.model_revision} if model_args.model_revision else {}
    return DTWAlignConfig.from_pretrained(model_args.model_name_or_path, **hub)


def model_max_source_seconds(model_args: ModelArguments, align_args: DTWAlignArguments) -> float | None:
    """The model's audio-length guard before the model is built: the argument, the checkpoint's, or the default,
    capped by a Whisper window given with `--speech_window_seconds` (as `DTWAlignConfig.source_limit_seconds` is)."""
    from dtw_align_hf import DTWAlignConfig

    if model_args.model_name_or_path and align_args.max_source_seconds is None:
        return _checkpoint_config(model_args).source_limit_seconds
    limit = align_args.max_source_seconds
    if limit is None:
        limit = next(f.default for f in dataclasses.fields(DTWAlignConfig) if f.name == "max_source_seconds")
    window = None if model_args.model_name_or_path else model_args.speech_window_seconds
    return limit if window is None or limit is None else min(limit, window)


def check_setup(model_args: ModelArguments, data_args: DataArguments, align_args: DTWAlignArguments) -> None:
    """Every set-up mistake that can be found without data or weights, each a `SetupError` naming the fix."""
    if not model_args.model_name_or_path:
        if not model_args.mt_model_name_or_path:
            raise SetupError(
                "Give --mt_model_name_or_path (the stage-1 output folder of run_pretrain_mt.py) or "
                "--model_name_or_path (a complete DTW-Align checkpoint)."
            )
        if not model_args.speech_encoder_name_or_path and model_args.speech_encoder_config is None:
            raise SetupError(
                "Give --speech_encoder_name_or_path (e.g. facebook/hubert-base-ls960) or --speech_encoder_config."
            )
        check_paths(
            {"mt_model_name_or_path": "run stage 1 first (run_pretrain_mt.py writes it), or fix the path"},
            mt_model_name_or_path=model_args.mt_model_name_or_path,
            speech_encoder_name_or_path=model_args.speech_encoder_name_or_path,
        )
    else:  # the parts are not read: only the checkpoint is
        check_paths(model_name_or_path=model_args.model_name_or_path)
        stored = _checkpoint_config(model_args)
        refused = [
            name
            for name in ARCHITECTURE_FIELDS
            if getattr(align_args, name) is not None and getattr(align_args, name) != getattr(stored, name, None)
        ]
        if refused:
            raise SetupError(_architecture_message(refused, model_args.model_name_or_path))
    if model_args.cache_speech_encoder_outputs and not model_args.freeze_speech_encoder:
        raise SetupError(
            "--cache_speech_encoder_outputs reuses the speech encoder's outputs, which change while it trains: add "
            "--freeze_speech_encoder, or drop --cache_speech_encoder_outputs."
        )
    if model_args.speech_encoder_cache_dir and not model_args.cache_speech_encoder_outputs:
        raise SetupError(
            "--speech_encoder_cache_dir is where --cache_speech_encoder_outputs keeps the encoder's outputs: add "
            "--cache_speech_encoder_outputs (and --freeze_speech_encoder), or drop --speech_encoder_cache_dir."
        )
    check_paths(
        processor_name_or_path=model_args.processor_name_or_path,
        files={"train_file": data_args.train_file, "eval_file": data_args.eval_file, "test_file": data_args.test_file},
    )


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


def main(
    model_args: ModelArguments,
    data_args: DataArguments,
    align_args: DTWAlignArguments,
    training_args: DTWAlignTrainingArguments,
) -> dict[str, Any]:
    """Run stage 2 and return the test-set results (also written to `output_dir/results.json`)."""
    from dtw_align_hf import DTWAlignProcessor

    # 1. logging per rank; set-up checks before any work
    setup_logging(training_args)
    started = time.time()
    check_setup(model_args, data_args, align_args)
    limit = model_max_source_seconds(model_args, align_args)
    if limit is not None and (data_args.max_duration is None or data_args.max_duration > limit):
        logger.info(f"max_duration={data_args.max_duration} -> {limit} s, the model's max_source_seconds.")
        data_args.max_duration = limit  # longer clips would be rejected by the processor anyway

    # 2. seed + output folder (guard, run settings, resume)
    set_seed(training_args.seed)
    settings = run_settings("run_finetune_st", model=model_args, alignment=align_args, data=data_args)
    resume_from = prepare_output_dir(training_args, settings)

    # 3. data (bad samples are skipped and counted by the loaders and the collator filter)
    splits, counters = load_splits(data_args, training_args=training_args)

    # 4. processor + model; the processor's length limit is the model's (one source)
    processor_path = (
        model_args.processor_name_or_path or model_args.model_name_or_path or model_args.mt_model_name_or_path
    )
    processor = DTWAlignProcessor.from_pretrained(processor_path)
    model = build_model(model_args, align_args, training_args)
    config = _unwrap(model).config
    if model_args.speech_encoder_name_or_path and not (
        model_args.processor_name_or_path or model_args.model_name_or_path
    ):
        # composed from parts: the speech encoder's own feature extractor (Whisper log-mel, Speech2Text fbank, or
        # HuBERT's normalised samples) with the stage-1 tokenizer and its language settings
        processor = DTWAlignProcessor.from_pretrained_parts(
            model_args.speech_encoder_name_or_path,
            model_args.mt_model_name_or_path,
            speech_window_seconds=getattr(config, "speech_window_seconds", None),
            tgt_lang=processor.tgt_lang,
            transcript_eos=processor.transcript_eos,
        )
    processor.max_source_seconds = getattr(config, "source_limit_seconds", None) or config.max_source_seconds
    collator = BadSampleFilter(DataCollatorSpeechTranslation(processor), counters)

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
        max_batch_seconds=data_args.max_batch_seconds,
    )
    trainer.run_settings = settings

    # 6. train (resume), save model + processor + state
    train_and_save(trainer, processor, training_args, resume_from, splits.get("train"))

    # 7. test-set evaluation (+ alignment accuracy where reference timings exist, plots always) -> results JSON
    # 8. card / push
    def alignment_evaluation(trainer) -> dict[str, Any] | None:
        from dtw_align_hf.evaluation import evaluate_alignment, plot_alignments, reference_timings_for

        if "test" not in splits or not trainer.is_world_process_zero():
            return None
        if getattr(trainer, "is_fsdp_enabled", False):  # sharded parameters: run tools/eval_alignment.py afterwards
            return None
        model = _unwrap(trainer.accelerator.unwrap_model(trainer.model))
        plot_dir = Path(training_args.output_dir) / "alignment_plots"
        timings = reference_timings_for(data_args)
        if not timings or is_streamed(splits["test"]):  # no word timings (manifests, MuST-C, CoVoST 2): plots only
            return plot_alignments(model, processor, splits["test"], plot_dir)
        return evaluate_alignment(model, processor, splits["test"], timings, plot_dir=plot_dir)

    return finish_run(
        trainer, splits, data_args, training_args, tokenizer, counters, started, "finetune_st", alignment_evaluation
    )


def _unwrap(model):
    """The DTW-Align model under a PEFT wrapper."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def card_info(model_args: ModelArguments, data_args: DataArguments, training_args, stage: str) -> dict[str, Any]:
    return {
        **card_info_base(data_args, training_args, stage),
        "base_models": [
            model_args.model_name_or_path,
            model_args.speech_encoder_name_or_path
            or (None if model_args.model_name_or_path else "a randomly initialised speech encoder"),
            model_args.mt_model_name_or_path,
        ],
        "train_hours": data_args.train_hours,
    }


if __name__ == "__main__":
    run_main(main, make_parser())
