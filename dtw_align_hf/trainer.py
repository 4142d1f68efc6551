"""`DTWAlignTrainer`: a `Seq2SeqTrainer` that logs each DTW-Align loss term and the alignment statistics.

The model computes everything (see `modeling_dtw_align.py`); the trainer only
1. takes the model's weighted total as the loss and says explicitly how it scales under gradient accumulation,
2. gathers the components over processes and logs their averages through the Trainer's normal logging, so
   TensorBoard, wandb and `state.log_history` see `loss/st`, `loss/mt`, `loss/mix`, `loss/kl`,
   `align/valid_frac`, `align/frames_per_token` and `align/seconds`,
3. writes the model card (`model_cards/*.md`) next to every checkpoint and before a Hub push.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments
from transformers.utils import logging


logger = logging.get_logger(__name__)

# logged key -> attribute of `DTWAlignSeq2SeqLMOutput` (docs/CONTRACTS.md). The loss terms are normalised like
# the total loss (by `num_items_in_batch` when the model receives it); the alignment statistics are plain values.
LOSS_COMPONENTS = {"loss/st": "loss_st", "loss/mt": "loss_mt", "loss/mix": "loss_mix", "loss/kl": "loss_kl"}
ALIGN_STATISTICS = {
    "align/valid_frac": "align_valid_frac",
    "align/frames_per_token": "align_frames_per_token",
    "align/seconds": "align_seconds",
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
    raw `audio`/`transcript`/`translation` columns).
    """

    resume: str = field(
        default="auto",
        metadata={
            "help": "'auto': continue from the newest checkpoint in output_dir if there is one; 'never'; or a path."
        },
    )
    do_train: bool = field(default=True, metadata={"help": "Train (default True)."})
    do_predict: bool = field(default=True, metadata={"help": "Score the test split at the end (default True)."})
    predict_with_generate: bool = field(default=True, metadata={"help": "Generate during evaluation (BLEU/chrF)."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep raw columns for the collator."})

    def __post_init__(self, *args, **kwargs):
        if not torch.cuda.is_available():
            self.dataloader_pin_memory = False  # nothing to pin to; avoids a DataLoader warning per epoch
        super().__post_init__(*args, **kwargs)


def _is_dtw_align_model(model: Any) -> bool:
    return getattr(getattr(model, "config", None), "model_type", None) == "dtw_align"


class DTWAlignTrainer(Seq2SeqTrainer):
    """`Seq2SeqTrainer` for both DTW-Align stages.

    Args (beyond `Seq2SeqTrainer`'s):
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

    def __init__(self, *args, card_info: dict[str, Any] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
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
        self.card_info: dict[str, Any] = dict(card_info or {})
        self._metrics: dict[str, defaultdict[str, list[float]]] = {
            "train": defaultdict(list),
            "eval": defaultdict(list),
        }

    # ---- loss and logging ----

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
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

    def _save_checkpoint(self, model, trial) -> None:
        self.create_model_card()
        super()._save_checkpoint(model, trial)
        if self.is_world_process_zero():
            card = os.path.join(self.args.output_dir, "README.md")
            ckpt = os.path.join(self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}")
            if os.path.isfile(card) and os.path.isdir(ckpt):
                Path(ckpt, "README.md").write_text(Path(card).read_text(encoding="utf-8"), encoding="utf-8")


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


__all__ = ["LOGGED_KEYS", "PAPER", "DTWAlignTrainer", "DTWAlignTrainingArguments", "make_compute_metrics"]
