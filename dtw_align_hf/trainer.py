"""`DTWAlignTrainer`: a `Seq2SeqTrainer` that logs each DTW-Align loss term and the alignment statistics.

The model computes everything (see `modeling_dtw_align.py`); the trainer only
1. takes the model's weighted total as the loss and says explicitly how it scales under gradient accumulation,
2. gathers the components over processes and logs their averages through the Trainer's normal logging, so
   TensorBoard, wandb and `state.log_history` see `loss/st`, `loss/mt`, `loss/mix`, `loss/kl`,
   `align/valid_frac`, `align/frames_per_token` and `align/seconds`,
3. writes the model card (`model_cards/*.md`) next to every checkpoint and before a Hub push,
4. makes checkpoints atomic: a checkpoint is written to `.tmp-checkpoint-N` and renamed to `checkpoint-N` only when
   every file (weights, optimizer, scheduler, RNG, trainer state, run settings) is on disk, so a kill or a full disk
   during a save never leaves a `checkpoint-N` that a resume would trip over; rotation (`save_total_limit`) counts
   and deletes only complete checkpoints of this run (`find_checkpoints`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments
from transformers.trainer_pt_utils import LabelSmoother
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import logging


logger = logging.get_logger(__name__)

# logged key -> attribute of `DTWAlignSeq2SeqLMOutput` (docs/CONTRACTS.md). The loss terms are normalised like
# the total loss (by `num_items_in_batch` when the model receives it); the alignment statistics are plain values.
LOSS_COMPONENTS = {
    "loss/st": "loss_st",
    "loss/mt": "loss_mt",
    "loss/mix": "loss_mix",
    "loss/kl": "loss_kl",
    "loss/ctc": "loss_ctc",
}
ALIGN_STATISTICS = {
    "align/valid_frac": "align_valid_frac",
    "align/frames_per_token": "align_frames_per_token",
    "align/seconds": "align_seconds",
    "ctc/valid_frac": "ctc_valid_frac",
}
LOGGED_KEYS = (*LOSS_COMPONENTS, *ALIGN_STATISTICS)

PAPER = {
    "title": "DTW-Align: Bridging the Modality Gap in End-to-End Speech Translation with Dynamic Time Warping Alignment",
    "id": "2509.18987",
    "url": "https://arxiv.org/abs/2509.18987",
    "venue": "Proceedings of the Tenth Conference on Machine Translation (WMT 2025), pp. 191-199",
    "citation": (
        "@inproceedings{issam2025dtwalign,\n"
        "  title     = {{DTW-Align}: Bridging the Modality Gap in End-to-End Speech Translation with Dynamic Time "
        "Warping Alignment},\n"
        "  author    = {Issam and Semerci and Scholtes and Spanakis},\n"
        "  booktitle = {Proceedings of the Tenth Conference on Machine Translation (WMT 2025)},\n"
        "  pages     = {191--199},\n"
        "  year      = {2025},\n"
        "  eprint    = {2509.18987},\n"
        "  archivePrefix = {arXiv}\n"
        "}"
    ),
}


@dataclass
class DTWAlignTrainingArguments(Seq2SeqTrainingArguments):
    """`Seq2SeqTrainingArguments` with the run scripts' defaults and `resume`.

    Changed defaults: `do_train=True` and `do_predict=True` (a run trains, then scores the test set),
    `predict_with_generate=True` (BLEU needs generated text), `remove_unused_columns=False` (the collator reads the
    raw `audio`/`transcript`/`translation` columns). Added: `resume`, `overwrite_output_dir` (transformers 5 removed
    its own) and `generation_length_penalty` (beam search's length penalty in evaluation and test prediction).
    """

    resume: str = field(
        default="auto",
        metadata={
            "help": "'auto': continue from the newest complete checkpoint in output_dir if there is one; 'never': "
            "start over (the run's old checkpoints are kept until rotation); or the path of a checkpoint folder."
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Write into an output_dir that holds something else (another run's settings, files of your own). "
            "Without it such a folder is refused before any work."
        },
    )
    generation_length_penalty: float | None = field(
        default=None,
        metadata={"help": "Beam-search length penalty in evaluation and test prediction (CMOT decodes with 1.2)."},
    )
    license: str | None = field(
        default=None,
        metadata={
            "help": "License of the trained weights for the model card (a Hub license id: apache-2.0, mit, "
            "cc-by-nc-4.0, ...). Unset: the card says that no license was chosen. Check the terms of your data and "
            "pretrained models (MuST-C: CC BY-NC-ND 4.0; CoVoST 2: CC BY-NC 4.0)."
        },
    )
    dataset_name: str | None = field(
        default=None,
        metadata={"help": "The dataset's name in the model card (default: --dataset, e.g. 'manifest')."},
    )
    do_train: bool = field(default=True, metadata={"help": "Train (default True)."})
    do_predict: bool = field(default=True, metadata={"help": "Score the test split at the end (default True)."})
    predict_with_generate: bool = field(default=True, metadata={"help": "Generate during evaluation (BLEU/chrF)."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep raw columns for the collator."})

    def __post_init__(self, *args, **kwargs):
        check_resume_value(self.resume)
        if not torch.cuda.is_available():
            self.dataloader_pin_memory = False  # nothing to pin to; avoids a DataLoader warning per epoch
        super().__post_init__(*args, **kwargs)


RESUME_CHOICES = ("auto", "never")


def check_resume_value(resume: str | None) -> None:
    """`--resume` is 'auto', 'never' or an existing checkpoint folder; anything else (`nevr`) is a `SetupError`."""
    if resume is None or resume in RESUME_CHOICES:
        return
    if os.path.isdir(resume):
        return
    import difflib

    from .cli import SetupError

    close = difflib.get_close_matches(str(resume), RESUME_CHOICES, n=1, cutoff=0.5)
    hint = f" Did you mean --resume {close[0]}?" if close else ""
    raise SetupError(
        f"--resume {resume!r} is neither 'auto', 'never' nor an existing checkpoint folder.{hint} Give 'auto' (the "
        "newest complete checkpoint of output_dir), 'never', or the path of a checkpoint-N folder."
    )


# ---- checkpoints: which folders count, atomic saves ----

RUN_SETTINGS_NAME = "dtw_align_run.json"  # written into output_dir and into every checkpoint (run_utils.py)
TMP_PREFIX = ".tmp-"
_CHECKPOINT_RE = re.compile(rf"^{PREFIX_CHECKPOINT_DIR}-(\d+)$")


def is_complete_checkpoint(path: str | os.PathLike) -> bool:
    """A checkpoint of one of our runs: `checkpoint-N` holding our trainer state and run settings."""
    path = Path(path)
    return (
        _CHECKPOINT_RE.match(path.name) is not None
        and (path / "trainer_state.json").is_file()
        and (path / RUN_SETTINGS_NAME).is_file()
    )


def find_checkpoints(output_dir: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """`(complete, other)`: complete checkpoints of `output_dir` sorted by step (oldest first), and the folders that
    look like checkpoints but are not complete ones of our runs (a save interrupted by an older version, a partial
    `.tmp-checkpoint-N`, an unrelated `checkpoint-1/` of the user's)."""
    output_dir = Path(output_dir)
    complete, other = [], []
    if not output_dir.is_dir():
        return complete, other
    for path in sorted(output_dir.iterdir()):
        if not path.is_dir():
            continue
        name = path.name.removeprefix(TMP_PREFIX)
        if _CHECKPOINT_RE.match(name) is None:
            continue
        (complete if is_complete_checkpoint(path) else other).append(path)
    complete.sort(key=lambda p: int(_CHECKPOINT_RE.match(p.name).group(1)))
    return complete, other


def checkpoint_step(path: str | os.PathLike) -> int:
    return int(json.loads((Path(path) / "trainer_state.json").read_text(encoding="utf-8"))["global_step"])


def _is_dtw_align_model(model: Any) -> bool:
    return getattr(getattr(model, "config", None), "model_type", None) == "dtw_align"


class DTWAlignTrainer(Seq2SeqTrainer):
    """`Seq2SeqTrainer` for both DTW-Align stages.

    Args (beyond `Seq2SeqTrainer`'s):
        max_batch_seconds (`float`, *optional*): form training batches by padded audio seconds instead of
            `per_device_train_batch_size` (fairseq's `--max-tokens`): `data.SecondsBatchSampler` for map-style
            datasets, `data.SecondsBatchedStream` for streams (which splits itself between processes).
        card_info (`dict`, *optional*): what the model card reports: `dataset`, `recipe`, `languages`,
            `base_models`, `stage` ("pretrain_mt" or "finetune_st"), `results` (test-set BLEU/chrF with their
            signatures, alignment accuracy). The run scripts fill it; update `trainer.card_info` before
            `push_to_hub` to add the final results.

    Stage 1 (a plain `M2M100ForConditionalGeneration`) uses the Trainer's own loss, with `label_smoothing_factor`.
    Stage 2 (`DTWAlignForSpeechTranslation`) must leave `label_smoothing_factor=0`: label smoothing belongs to the
    model config there, and the Trainer's smoother would replace the multitask loss with a plain ST loss.
    """

    _tag_names: ClassVar[list[str]] = ["dtw-align"]
    _paper: ClassVar[dict[str, str]] = PAPER

    def __init__(
        self, *args, card_info: dict[str, Any] | None = None, max_batch_seconds: float | None = None, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.max_batch_seconds = max_batch_seconds
        model = self.accelerator.unwrap_model(self.model)
        if _is_dtw_align_model(model) and self.args.label_smoothing_factor > 0:
            raise ValueError(
                "label_smoothing_factor > 0 would make the Trainer replace DTW-Align's multitask loss by a "
                "label-smoothed ST loss. Set label_smoothing_factor=0 and use the model config's label smoothing."
            )
        # Explicit, not inferred: when the model receives `num_items_in_batch` (it accepts loss kwargs), its token
        # losses are sums divided by the token count of the whole accumulated (and, by default, all-reduced) batch,
        # so the loss is already scaled for gradient accumulation. Otherwise it is a per-micro-batch mean and the
        # Trainer must divide it by the accumulation steps. (transformers issue 37766, PR 43651.)
        self.loss_is_scaled_for_ga = bool(self.model_accepts_loss_kwargs)
        if self.label_smoother is None and not _is_dtw_align_model(model) and self.model_accepts_loss_kwargs:
            # Stage 1 (a plain M2M100): its own loss is a per-micro-batch mean that ignores `num_items_in_batch`,
            # yet it accepts loss kwargs, so the Trainer would neither divide it by the accumulation steps nor stop
            # multiplying it by the process count (logged loss x GA x world size). The Trainer's smoother with
            # epsilon 0 is the same cross-entropy, summed and divided by the accumulated batch's token count.
            self.label_smoother = LabelSmoother(epsilon=0.0)
        self.card_info: dict[str, Any] = dict(card_info or {})
        self._metrics: dict[str, defaultdict[str, list[float]]] = {
            "train": defaultdict(list),
            "eval": defaultdict(list),
        }
        # the run's settings (run_utils.run_settings), stored with every checkpoint to refuse mismatched resumes
        self.run_settings: dict[str, Any] = {}

    # ---- loss and logging ----

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.label_smoother is not None and "labels" in inputs and "decoder_input_ids" not in inputs:
            # the Trainer's smoother takes the labels away from the model; build its decoder inputs first
            decoder_input_ids = _decoder_input_ids(self.accelerator.unwrap_model(model), inputs["labels"])
            if decoder_input_ids is not None:
                inputs = {**inputs, "decoder_input_ids": decoder_input_ids}
        if model.training and self.state.max_steps:
            # the "linear" mixup-ratio schedule reads the share of training done
            unwrapped = self.accelerator.unwrap_model(model)
            if hasattr(unwrapped, "set_training_progress"):
                unwrapped.set_training_progress(self.state.global_step / self.state.max_steps)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if _has_components(outputs):
            self._record_components(outputs, model.training, num_items_in_batch)
        return (loss, outputs) if return_outputs else loss

    def _record_components(self, outputs: Any, training: bool, num_items_in_batch: Any) -> None:
        mode = "train" if training else "eval"
        # Put the loss terms on the same scale as the logged `loss`: with `num_items_in_batch` each micro-batch
        # holds a share of the step's mean, and Trainer multiplies by the process count (average_tokens_across_devices).
        scale = 1.0
        if training and num_items_in_batch is not None and self.model_accepts_loss_kwargs:
            scale = float(getattr(self, "current_gradient_accumulation_steps", 1) or 1)
            if self.args.average_tokens_across_devices:
                scale *= self.accelerator.num_processes
        values = []
        for key in LOGGED_KEYS:
            attr = LOSS_COMPONENTS.get(key) or ALIGN_STATISTICS[key]
            value = getattr(outputs, attr, None)
            if value is None:
                values.append(float("nan"))
                continue
            value = float(torch.as_tensor(value).detach().float().mean())
            values.append(value * scale if key in LOSS_COMPONENTS else value)
        # One fixed-size gather per step (NaN marks "absent on this process") so every rank joins the collective.
        local = torch.tensor(values, dtype=torch.float32, device=self.accelerator.device)
        gathered = self.accelerator.gather(local).reshape(-1, len(LOGGED_KEYS)).cpu().numpy()
        for key, column in zip(LOGGED_KEYS, gathered.T, strict=True):
            column = column[~np.isnan(column)]
            if column.size:
                self._metrics[mode][key].append(float(column.mean()))

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        metrics = {key: sum(vals) / len(vals) for key, vals in self._metrics[mode].items() if vals}
        if mode == "eval":
            metrics = {f"eval_{key}": val for key, val in metrics.items()}
        logs = {**logs, **metrics}
        super().log(logs, start_time)
        self._metrics[mode].clear()

    # ---- model card ----

    def create_model_card(self, model_name: str | None = None, **kwargs) -> None:
        """Render `model_cards/<stage>.md` into `output_dir/README.md` (also called by `push_to_hub`)."""
        if not self.is_world_process_zero():
            return
        from .model_card import render_model_card

        model = self.accelerator.unwrap_model(self.model)
        if model_name is None:
            model_name = (self.args.hub_model_id or Path(self.args.output_dir).name).split("/")[-1]
        card = render_model_card(
            model_name=model_name,
            config=getattr(model, "config", None),
            card_info={**self.card_info, **kwargs.get("card_info", {})},
            paper=self._paper,
            tags=[*self._tag_names, *(kwargs.get("tags") or [])],
            hub_model_id=self.args.hub_model_id,
            log_history=self.state.log_history,
        )
        os.makedirs(self.args.output_dir, exist_ok=True)
        card.save(os.path.join(self.args.output_dir, "README.md"))

    # ---- batches: by audio seconds, per-split collators, skipped batches ----

    def get_train_dataloader(self):
        streamed = isinstance(self.train_dataset, torch.utils.data.IterableDataset)
        if streamed and not self.max_batch_seconds and self.args.train_sampling_strategy == "group_by_length":
            # the Trainer ignores group_by_length for streams: bucket inside a buffer here (same seed on every rank,
            # so accelerate's sharding of the stream stays consistent)
            bucketed = _LengthBucketedStream(
                self.train_dataset, self._train_batch_size, self.args.length_column_name, self.args.seed
            )
            return self._get_dataloader(
                dataset=bucketed, description="Training", batch_size=self._train_batch_size, is_training=True
            )
        if not self.max_batch_seconds or self.train_dataset is None:
            return super().get_train_dataloader()
        from .data.batching import seconds_dataloader

        a = self.args
        return seconds_dataloader(
            self.train_dataset, self.data_collator, self.max_batch_seconds, seed=a.seed, rank=a.process_index,
            world_size=a.world_size, num_workers=a.dataloader_num_workers, pin_memory=a.dataloader_pin_memory,
            accelerator=self.accelerator,
        )  # fmt: skip

    def _with_role(self, role: str, make):
        """Build a dataloader whose collator reports bad samples to `role`'s counter (`BadSampleFilter.for_role`)."""
        collator = self.data_collator
        if hasattr(collator, "for_role"):
            self.data_collator = collator.for_role(role)
        try:
            return make()
        finally:
            self.data_collator = collator

    def get_eval_dataloader(self, eval_dataset=None):
        return self._with_role("eval", lambda: super(DTWAlignTrainer, self).get_eval_dataloader(eval_dataset))

    def get_test_dataloader(self, test_dataset):
        return self._with_role("test", lambda: super(DTWAlignTrainer, self).get_test_dataloader(test_dataset))

    def training_step(self, model, inputs, num_items_in_batch=None):
        from .data.filtering import is_skipped_batch

        if is_skipped_batch(inputs):
            # no usable example: a zero loss over every trainable parameter keeps DDP processes in step
            # (every rank joins the gradient all-reduce) and changes nothing
            model.train()
            loss = sum((p * 0.0).sum() for p in model.parameters() if p.requires_grad)
            self.accelerator.backward(loss)
            return loss.detach()
        return super().training_step(model, inputs, num_items_in_batch)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):
        from .data.filtering import is_skipped_batch

        if is_skipped_batch(inputs):
            return None, None, None
        return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys, **gen_kwargs)

    # ---- generation ----

    def _generation_kwargs(self, gen_kwargs: dict[str, Any]) -> dict[str, Any]:
        if gen_kwargs.get("length_penalty") is None and self.args.generation_length_penalty is not None:
            gen_kwargs["length_penalty"] = self.args.generation_length_penalty
        return gen_kwargs

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval", **gen_kwargs):
        return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix, **self._generation_kwargs(gen_kwargs))

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test", **gen_kwargs):
        return super().predict(test_dataset, ignore_keys, metric_key_prefix, **self._generation_kwargs(gen_kwargs))

    # ---- checkpoints ----

    def _save_checkpoint(self, model, trial) -> None:
        """`Trainer._save_checkpoint` (transformers 5.24) writing into `.tmp-checkpoint-N`, renamed when complete.

        The order of the writes is the Trainer's (weights, optimizer + scheduler, scaler, RNG, trainer state), then
        the run settings and the card; the rename is the commit point. Rotation counts complete checkpoints only.
        """
        from transformers.trainer_callback import ExportableState

        self.create_model_card()
        if self.hp_search_backend is None and trial is None:
            self.store_flos()
        run_dir = self._get_output_dir(trial=trial)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        final_dir, tmp_dir = os.path.join(run_dir, name), os.path.join(run_dir, TMP_PREFIX + name)
        if self.is_world_process_zero() and os.path.isdir(tmp_dir):
            shutil.rmtree(tmp_dir)  # left by a save that was interrupted at this same step
        self.accelerator.wait_for_everyone()
        self.save_model(tmp_dir, _internal_call=True)
        if self.state.best_global_step:
            self.accelerator.wait_for_everyone()
            best = os.path.join(run_dir, f"{PREFIX_CHECKPOINT_DIR}-{self.state.best_global_step}")
            if os.path.exists(best) or self.state.best_global_step == self.state.global_step:
                self.state.best_model_checkpoint = best
        if not self.args.save_only_model:
            self._save_optimizer_and_scheduler(tmp_dir)
            self._save_scaler(tmp_dir)
            self._save_rng_state(tmp_dir)
        if self.args.should_save:
            for cb in [c for c in self.callback_handler.callbacks + [self.control] if isinstance(c, ExportableState)]:
                cb_name, cb_state = cb.__class__.__name__, cb.state()
                if isinstance(self.state.stateful_callbacks[cb_name], list):
                    self.state.stateful_callbacks[cb_name].append(cb_state)
                else:
                    self.state.stateful_callbacks[cb_name] = cb_state
            self.state.save_to_json(os.path.join(tmp_dir, "trainer_state.json"))
            _write_json(os.path.join(tmp_dir, RUN_SETTINGS_NAME), self.run_settings)
            card = os.path.join(self.args.output_dir, "README.md")
            if os.path.isfile(card):
                shutil.copyfile(card, os.path.join(tmp_dir, "README.md"))
        self.accelerator.wait_for_everyone()  # every rank's shards are on disk before the commit
        if self.args.should_save:
            if os.path.exists(final_dir):  # not ours (an interrupted save of an older version, a user's folder)
                aside = f"{final_dir}.replaced-{int(time.time())}"
                logger.warning(
                    f"{final_dir} exists but is not a complete checkpoint of this run; moved it to {aside}."
                )
                os.replace(final_dir, aside)
            os.replace(tmp_dir, final_dir)
        self.accelerator.wait_for_everyone()
        if self.args.push_to_hub:
            self._push_from_checkpoint(final_dir)
        if self.args.should_save:
            rotate_complete_checkpoints(run_dir, self.args.save_total_limit, self.state.best_model_checkpoint)


class _LengthBucketedStream(torch.utils.data.IterableDataset):
    """A stream whose consecutive `batch_size` examples have similar lengths (`data.sort_by_length_buffered`)."""

    def __init__(self, dataset, batch_size: int, key: str, seed: int, buffer_size: int = 1000):
        self.dataset, self.batch_size, self.key, self.seed = dataset, batch_size, key, seed
        self.buffer_size, self.epoch = max(buffer_size, batch_size), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __iter__(self):
        from .data.batching import sort_by_length_buffered

        yield from sort_by_length_buffered(
            iter(self.dataset), buffer_size=self.buffer_size, batch_size=self.batch_size, key=self.key,
            seed=self.seed + self.epoch,
        )  # fmt: skip


def _decoder_input_ids(model: Any, labels: torch.Tensor) -> torch.Tensor | None:
    """The labels shifted right behind the decoder start token, as the model's own forward would build them."""
    if hasattr(model, "prepare_decoder_input_ids_from_labels"):
        return model.prepare_decoder_input_ids_from_labels(labels)
    config = getattr(model, "config", None)
    start = getattr(config, "decoder_start_token_id", None)
    if start is None or not getattr(config, "is_encoder_decoder", False):
        return None
    from transformers.models.bart.modeling_bart import shift_tokens_right

    return shift_tokens_right(labels, config.pad_token_id, start)


def _write_json(path: str, data: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True, default=str)
        f.write("\n")


def rotate_complete_checkpoints(
    output_dir: str | os.PathLike, save_total_limit: int | None, best_model_checkpoint: str | None = None
) -> list[Path]:
    """Delete the oldest complete checkpoints beyond `save_total_limit`; keep the newest and the best one.

    Folders that are not complete checkpoints of our runs are never counted nor deleted. Returns what was deleted.
    """
    if not save_total_limit or save_total_limit <= 0:
        return []
    complete, _ = find_checkpoints(output_dir)
    keep = {complete[-1]} if complete else set()
    if best_model_checkpoint:
        keep |= {p for p in complete if p.resolve() == Path(best_model_checkpoint).resolve()}
    removable = [p for p in complete if p not in keep]
    excess = len(complete) - max(save_total_limit, len(keep))
    deleted = removable[: max(excess, 0)]
    for path in deleted:
        logger.info(f"Deleting older checkpoint {path} (save_total_limit={save_total_limit}).")
        shutil.rmtree(path, ignore_errors=True)
    return deleted


def _has_components(outputs: Any) -> bool:
    return any(hasattr(outputs, attr) for attr in (*LOSS_COMPONENTS.values(), *ALIGN_STATISTICS.values()))


def make_compute_metrics(tokenizer: Any):
    """`compute_metrics` for `predict_with_generate`: sacrebleu BLEU and chrF on detokenised text.

    The returned callable keeps the last signatures and hypotheses in its attributes `signatures` and
    `hypotheses` (strings do not belong in `log_history`; the run scripts put them in `results.json`).
    """
    from .metrics import translation_metrics

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def compute_metrics(eval_pred) -> dict[str, float]:
        preds, labels = eval_pred.predictions, eval_pred.label_ids
        if isinstance(preds, tuple):
            preds = preds[0]
        # generated ids and labels are padded with -100 by the Trainer; the tokenizer cannot decode it.
        preds = np.where(preds != -100, preds, pad_id)
        labels = np.where(labels != -100, labels, pad_id)
        hyps = [h.strip() for h in tokenizer.batch_decode(preds, skip_special_tokens=True)]
        refs = [r.strip() for r in tokenizer.batch_decode(labels, skip_special_tokens=True)]
        scores = translation_metrics(hyps, refs)
        compute_metrics.signatures = {k: v for k, v in scores.items() if isinstance(v, str)}
        compute_metrics.hypotheses = hyps
        return {k: float(v) for k, v in scores.items() if isinstance(v, (int, float))}

    compute_metrics.signatures = {}
    compute_metrics.hypotheses = []
    return compute_metrics


__all__ = [
    "LOGGED_KEYS",
    "PAPER",
    "RUN_SETTINGS_NAME",
    "DTWAlignTrainer",
    "DTWAlignTrainingArguments",
    "check_resume_value",
    "find_checkpoints",
    "is_complete_checkpoint",
    "make_compute_metrics",
    "rotate_complete_checkpoints",
]
