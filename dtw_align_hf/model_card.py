"""Model cards: render `model_cards/<stage>.md` (Jinja, with `card_data` front matter) into a `README.md`.

`DTWAlignTrainer.create_model_card` calls `render_model_card` after each checkpoint and before a Hub push, so a
local `--output_dir` and the Hub repo carry the same card: data, recipe, alignment method, BLEU/chrF with their
sacrebleu signatures, alignment accuracy and the paper's citation. Metrics also go into the `model-index`
metadata so the Hub shows them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData


_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
# `dtw_align_hf/model_cards` is a link to the repository's `model_cards/` in a checkout, and a copy of it in a wheel.
TEMPLATE_DIR = Path(__file__).parent / "model_cards"
TEMPLATES = {"finetune_st": "dtw_align_st.md", "pretrain_mt": "mt_pretrain.md"}


def _template_path(stage: str) -> Path:
    if stage not in TEMPLATES:
        raise ValueError(f"Unknown card stage {stage!r}; expected one of {sorted(TEMPLATES)}.")
    path = TEMPLATE_DIR / TEMPLATES[stage]
    if not path.is_file():
        raise FileNotFoundError(
            f"Model card template {str(path)!r} not found; the templates live in the repository's model_cards/ "
            "folder (install the package in editable mode, `pip install -e .`, to keep it next to the code)."
        )
    return path


def _config_summary(config: Any) -> dict[str, Any]:
    """The DTW-Align settings worth a line in the card (absent fields are skipped)."""
    if config is None:
        return {}
    fields = (
        "preset",
        "alignment",
        "alignment_backend",
        "alignment_window",
        "mixup",
        "mixup_level",
        "mix_position",
        "mixup_ratio",
        "mixup_ratio_schedule",
        "discrete_mixup_prob",
        "st_weight",
        "mt_weight",
        "mix_weight",
        "kl_weight",
        "label_smoothing",
    )
    summary = {name: getattr(config, name) for name in fields if getattr(config, name, None) is not None}
    # leave out settings the chosen method does not read
    if summary.get("alignment") not in ("cmot", "ot"):
        summary.pop("alignment_window", None)
    if summary.get("mixup") != "discrete":
        summary.pop("discrete_mixup_prob", None)
    if summary.get("mixup") != "interpolation":
        summary.pop("mixup_ratio", None)
        summary.pop("mixup_ratio_schedule", None)
    if summary.get("alignment") == "none" or summary.get("mixup") == "none":
        for name in ("mixup_level", "mix_position", "mix_weight"):
            summary.pop(name, None)
    return summary


def _final_train_loss(log_history: list[dict[str, Any]] | None) -> float | None:
    for entry in reversed(log_history or []):
        if "loss" in entry:
            return float(entry["loss"])
    return None


def render_model_card(
    model_name: str,
    *,
    config: Any = None,
    card_info: dict[str, Any] | None = None,
    paper: dict[str, str] | None = None,
    tags: list[str] | None = None,
    hub_model_id: str | None = None,
    log_history: list[dict[str, Any]] | None = None,
) -> ModelCard:
    """Build the card.

    Args:
        model_name (`str`): repo or folder name shown as the title.
        config: the model config (`DTWAlignConfig` for stage 2, the M2M100 config for stage 1).
        card_info (`dict`): `stage` ("finetune_st" | "pretrain_mt"), `dataset` (name, e.g. "covost2"),
            `dataset_config` (e.g. "fr_en"), `languages` ([src, tgt]), `recipe` (path), `command`,
            `recipe_text` (the recipe's YAML, recorded verbatim), `license` (a Hub license id from `--license`;
            None: the card says that none was chosen), `base_models` (speech encoder, MT checkpoint), `results`
            (`bleu`, `chrf`, `bleu_signature`, `chrf_signature`, `alignment_accuracy`, `alignment_plots`,
            `num_samples`), `skipped` (unique bad records, all splits), `wall_time`.
        paper (`dict`): `title`, `id` (arXiv), `url`, `venue`, `citation` (BibTeX).
    """
    info = dict(card_info or {})
    stage = info.get("stage", "finetune_st")
    results = dict(info.get("results") or {})
    languages = [lang for lang in info.get("languages") or [] if lang]
    dataset = info.get("dataset")
    dataset_config = info.get("dataset_config")

    eval_results = []
    if dataset:
        task = ("translation", "Translation") if stage == "pretrain_mt" else ("translation", "Speech Translation")
        for metric, pretty in (("bleu", "BLEU"), ("chrf", "chrF")):
            if results.get(metric) is not None:
                eval_results.append(
                    EvalResult(
                        task_type=task[0],
                        task_name=task[1],
                        dataset_type=str(dataset),
                        dataset_name=str(info.get("dataset_name") or dataset),
                        dataset_config=dataset_config,
                        dataset_split=info.get("test_split"),
                        metric_type=metric,
                        metric_name=f"{pretty} (sacrebleu)",
                        metric_value=round(float(results[metric]), 2),
                        metric_config=results.get(f"{metric}_signature"),
                    )
                )
    # Hub ids only ("org/name", not a local folder) go into `base_model`; every source is listed in the text.
    base_models = [
        m for m in info.get("base_models") or [] if m and _HUB_ID.fullmatch(str(m)) and not Path(str(m)).exists()
    ]
    card_data = ModelCardData(
        model_name=model_name,
        language=languages or None,
        license=info.get("license") or None,  # the user's choice (--license); none is invented
        library_name="transformers",
        pipeline_tag=None if stage == "pretrain_mt" else "automatic-speech-recognition",
        tags=sorted(
            set(tags or []) | {"dtw-align", "speech-translation" if stage != "pretrain_mt" else "translation"}
        ),
        datasets=[str(dataset)] if dataset else None,
        base_model=base_models or None,
        metrics=["bleu", "chrf"],
        eval_results=eval_results or None,
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(_template_path(stage)),
        model_name=model_name,
        hub_model_id=hub_model_id,
        info=info,
        results=results,
        settings=_config_summary(config),
        paper=paper or {},
        dataset=dataset,
        dataset_config=dataset_config,
        final_train_loss=_final_train_loss(log_history),
    )


__all__ = ["TEMPLATES", "TEMPLATE_DIR", "render_model_card"]
