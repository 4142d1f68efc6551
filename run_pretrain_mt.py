#!/usr/bin/env python
"""Stage 1 of DTW-Align: pretrain the translation encoder-decoder on transcript -> translation pairs.

    accelerate launch --config_file recipes/accelerate/multi_gpu_bf16.yaml run_pretrain_mt.py \
        --config recipes/must_c/en-de/pretrain_mt.yaml --output_dir runs/must_c_en-de_mt

    python run_pretrain_mt.py --config recipes/demo/pretrain_mt.yaml          # the bundled CPU demo

Trains (or, with `--tokenizer_name_or_path`, loads) the joint sentencepiece vocabulary over the training
transcripts and translations, builds an `M2M100ForConditionalGeneration` sized by the recipe (CMOT's fairseq
"transformer": 6+6 layers, d=512, 8 heads, FFN 2048, shared embeddings), trains it with label-smoothed
cross-entropy, and writes to `--output_dir` a checkpoint that stage 2 reads with
`run_finetune_st.py --mt_model_name_or_path <output_dir>`: the model, the tokenizer and a `DTWAlignProcessor`
(feature extractor + tokenizer). Ends with a test-set BLEU/chrF (sacrebleu signatures), `results.json`,
`test_hypotheses.txt` and a model card.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import GenerationConfig, HfArgumentParser, M2M100Config, M2M100ForConditionalGeneration, set_seed

from dtw_align_hf.cli import SetupError
from dtw_align_hf.data import DataArguments, DataCollatorTextTranslation, is_streamed, load_splits
from dtw_align_hf.run_utils import (
    card_info_base,
    check_paths,
    finish_run,
    prepare_output_dir,
    run_main,
    run_settings,
    setup_logging,
    train_and_save,
)
from dtw_align_hf.trainer import DTWAlignTrainer, DTWAlignTrainingArguments, make_compute_metrics


SPM_MODEL_TYPES = ("unigram", "bpe")


@dataclass
class ModelArguments:
    """Vocabulary and translation-model size (defaults: CMOT's fairseq `transformer` base, reconstructed)."""

    mt_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Continue from an existing translation checkpoint instead of a new model."}
    )
    tokenizer_name_or_path: str | None = field(
        default=None, metadata={"help": "Reuse a tokenizer folder (or a stage-1 output) instead of training one."}
    )
    vocab_size: int = field(default=10000, metadata={"help": "Joint sentencepiece vocabulary (10k, CMOT)."})
    spm_model_type: str = field(default="unigram", metadata={"help": " | ".join(SPM_MODEL_TYPES) + " (CMOT: unigram)"})
    spm_hard_vocab_limit: bool = field(
        default=True, metadata={"help": "False lets tiny corpora end below vocab_size instead of failing."}
    )
    add_lang_tokens: bool = field(
        default=False, metadata={"help": "Add <lang:xx> pieces and force the target-language token (multilingual)."}
    )
    d_model: int = field(default=512, metadata={"help": "Model width."})
    encoder_layers: int = field(default=6, metadata={"help": "Encoder layers."})
    decoder_layers: int = field(default=6, metadata={"help": "Decoder layers."})
    attention_heads: int = field(default=8, metadata={"help": "Attention heads (encoder and decoder)."})
    ffn_dim: int = field(default=2048, metadata={"help": "Feed-forward width (encoder and decoder)."})
    dropout: float = field(default=0.1, metadata={"help": "Dropout (also attention and activation dropout)."})
    max_position_embeddings: int = field(default=1024, metadata={"help": "Longest sequence (tokens)."})
    layerdrop: float = field(default=0.0, metadata={"help": "Encoder/decoder LayerDrop (0: DDP-safe)."})
    max_source_length: int = field(default=256, metadata={"help": "Transcripts are cut to this many tokens."})
    max_target_length: int = field(default=256, metadata={"help": "Translations are cut to this many tokens."})

    def __post_init__(self):
        if self.spm_model_type not in SPM_MODEL_TYPES:
            raise SetupError(f"--spm_model_type {self.spm_model_type!r} is not one of {', '.join(SPM_MODEL_TYPES)}.")
        for name in ("vocab_size", "d_model", "encoder_layers", "decoder_layers", "attention_heads", "ffn_dim"):
            if getattr(self, name) < 1:
                raise SetupError(f"--{name} {getattr(self, name)} must be >= 1.")


def make_parser() -> HfArgumentParser:
    """The script's arguments; `--config recipe.yaml` (handled by `parse_args_and_config`) sets their defaults."""
    return HfArgumentParser(
        (ModelArguments, DataArguments, DTWAlignTrainingArguments),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_tokenizer_and_processor(
    model_args: ModelArguments, data_args: DataArguments, train_dataset, output_dir: str
):
    """Train the joint sentencepiece model (or load one) and wrap it in a `DTWAlignProcessor`."""
    from transformers import AutoTokenizer

    from dtw_align_hf import DTWAlignProcessor, train_sentencepiece
    from dtw_align_hf.processing_dtw_align import make_feature_extractor

    langs = [lang for lang in (data_args.src_lang, data_args.tgt_lang) if lang] if model_args.add_lang_tokens else []
    if model_args.tokenizer_name_or_path:
        tokenizer = AutoTokenizer.from_pretrained(model_args.tokenizer_name_or_path)
    elif model_args.mt_model_name_or_path:
        tokenizer = AutoTokenizer.from_pretrained(model_args.mt_model_name_or_path)
    else:
        if train_dataset is None:
            raise ValueError("No training split to train the sentencepiece model on; pass --tokenizer_name_or_path.")
        if is_streamed(train_dataset):  # CoVoST 2 text-only is a stream: read it once (text only, no audio)
            rows = list(train_dataset)
            texts = [str(r["transcript"]) for r in rows] + [str(r["translation"]) for r in rows]
        else:
            texts = [*train_dataset["transcript"], *train_dataset["translation"]]
        tokenizer = train_sentencepiece(
            texts,
            model_args.vocab_size,
            output_dir,
            model_type=model_args.spm_model_type,
            lang_codes=langs,
            hard_vocab_limit=model_args.spm_hard_vocab_limit,
        )
    # no audio length limit is decided here: stage 2 sets the processor's from its model config (max_source_seconds)
    processor = DTWAlignProcessor(
        feature_extractor=make_feature_extractor(),
        tokenizer=tokenizer,
        tgt_lang=data_args.tgt_lang if model_args.add_lang_tokens else None,
    )
    return processor


def build_model(model_args: ModelArguments, processor, training_args) -> M2M100ForConditionalGeneration:
    """A new M2M100 sized by the recipe (or the given checkpoint), with fairseq's special-token convention."""
    tokenizer = processor.tokenizer
    if model_args.mt_model_name_or_path:
        return M2M100ForConditionalGeneration.from_pretrained(model_args.mt_model_name_or_path)
    config = M2M100Config(
        vocab_size=len(tokenizer),
        d_model=model_args.d_model,
        encoder_layers=model_args.encoder_layers,
        decoder_layers=model_args.decoder_layers,
        encoder_attention_heads=model_args.attention_heads,
        decoder_attention_heads=model_args.attention_heads,
        encoder_ffn_dim=model_args.ffn_dim,
        decoder_ffn_dim=model_args.ffn_dim,
        dropout=model_args.dropout,
        attention_dropout=model_args.dropout,
        activation_dropout=model_args.dropout,
        encoder_layerdrop=model_args.layerdrop,
        decoder_layerdrop=model_args.layerdrop,
        max_position_embeddings=model_args.max_position_embeddings,
        scale_embedding=True,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        # fairseq starts decoding with </s>
        decoder_start_token_id=tokenizer.eos_token_id,
    )
    model = M2M100ForConditionalGeneration(config)
    gen = {
        "decoder_start_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "max_length": model_args.max_target_length,
        "num_beams": training_args.generation_num_beams or 1,
    }
    forced = processor.generation_kwargs().get("forced_bos_token_id")
    if forced is not None:
        gen["forced_bos_token_id"] = forced
    model.generation_config = GenerationConfig(**gen)
    return model


def main(
    model_args: ModelArguments, data_args: DataArguments, training_args: DTWAlignTrainingArguments
) -> dict[str, Any]:
    """Run stage 1 and return the test-set results (also written to `output_dir/results.json`)."""
    # 1. logging per rank; set-up checks before any work
    setup_logging(training_args)
    started = time.time()
    check_paths(
        mt_model_name_or_path=model_args.mt_model_name_or_path,
        tokenizer_name_or_path=model_args.tokenizer_name_or_path,
        files={
            "train_file": data_args.train_file,
            "eval_file": data_args.eval_file,
            "test_file": data_args.test_file,
            "text_train_files": data_args.text_train_files,
        },
    )

    # 2. seed + output folder (guard, run settings, resume)
    set_seed(training_args.seed)
    settings = run_settings("run_pretrain_mt", model=model_args, data=data_args)
    resume_from = prepare_output_dir(training_args, settings)

    # 3. data: text columns only, no audio is decoded
    splits, counters = load_splits(data_args, text_only=True, training_args=training_args)

    # 4. tokenizer/processor + model (the main process trains the sentencepiece model; the others then load it)
    output_dir = training_args.output_dir
    with training_args.main_process_first(desc="sentencepiece"):
        if not model_args.tokenizer_name_or_path and (Path(output_dir) / "tokenizer_config.json").is_file():
            model_args.tokenizer_name_or_path = output_dir  # rerun/resume: keep the vocabulary the checkpoint used
        processor = build_tokenizer_and_processor(model_args, data_args, splits.get("train"), output_dir)
        if training_args.should_save:
            processor.save_pretrained(output_dir)
    model = build_model(model_args, processor, training_args)

    # 5. trainer
    trainer = DTWAlignTrainer(
        model=model,
        args=training_args,
        train_dataset=splits.get("train"),
        eval_dataset=splits.get("eval"),
        data_collator=DataCollatorTextTranslation(
            processor, model_args.max_source_length, model_args.max_target_length
        ),
        processing_class=processor.tokenizer,
        compute_metrics=make_compute_metrics(processor.tokenizer),
        card_info={
            **card_info_base(data_args, training_args, "pretrain_mt"),
            "architecture": {
                "d_model": model.config.d_model,
                "layers": f"{model.config.encoder_layers}+{model.config.decoder_layers}",
                "heads": model.config.encoder_attention_heads,
                "ffn_dim": model.config.encoder_ffn_dim,
                "vocab_size": model.config.vocab_size,
            },
        },
    )

    trainer.run_settings = settings

    # 6. train (resume), save model + processor + state
    train_and_save(trainer, processor, training_args, resume_from, splits.get("train"))

    # 7. test-set evaluation -> results JSON;  8. card / push
    return finish_run(trainer, splits, data_args, training_args, processor.tokenizer, counters, started, "pretrain_mt")


if __name__ == "__main__":
    run_main(main, make_parser())
