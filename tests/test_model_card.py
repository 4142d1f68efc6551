"""Model cards rendered from model_cards/*.md: metadata (model-index with BLEU/chrF + signature) and content."""

import pytest
from huggingface_hub import ModelCard

from dtw_align_hf import DTWAlignConfig
from dtw_align_hf.model_card import render_model_card
from dtw_align_hf.trainer import PAPER


RESULTS = {
    "bleu": 23.456,
    "chrf": 51.2,
    "bleu_signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
    "chrf_signature": "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0",
    "alignment_accuracy": 0.45,
    "num_samples": 2641,
}


def st_card(**info):
    card_info = {
        "stage": "finetune_st",
        "dataset": "must_c",
        "dataset_config": "en-de",
        "languages": ["en", "de"],
        "recipe": "recipes/must_c/en-de/finetune_st.yaml",
        "base_models": ["facebook/hubert-base-ls960", "runs/must_c_en-de/pretrain_mt"],
        "test_split": "tst-COMMON",
        "results": RESULTS,
        **info,
    }
    config = DTWAlignConfig(alignment="dtw", mixup="interpolation", kl_weight=1.5)
    return render_model_card("dtw-align-must-c-en-de", config=config, card_info=card_info, paper=PAPER, tags=["x"])


def test_st_card_content(tmp_path):
    card = st_card()
    text = str(card)
    assert "recipes/must_c/en-de/finetune_st.yaml" in text
    assert "Alignment method: **dtw**" in text and "Mixup: **interpolation**" in text
    assert "`kl_weight`: 1.5" in text
    assert "| tst-COMMON | 23.46 | 51.20 | 45.0% |" in text
    assert RESULTS["bleu_signature"] in text and RESULTS["chrf_signature"] in text
    assert "arXiv" in text and "2509.18987" in text and "@inproceedings" in text
    assert "facebook/hubert-base-ls960" in text


def test_st_card_metadata_round_trip(tmp_path):
    path = tmp_path / "README.md"
    st_card().save(path)
    data = ModelCard.load(path).data
    assert data.language == ["en", "de"]
    assert data.library_name == "transformers"
    assert "dtw-align" in data.tags and "speech-translation" in data.tags
    assert data.base_model == ["facebook/hubert-base-ls960"]  # local folders are not Hub ids
    metrics = {r.metric_type: r for r in data.eval_results}
    assert metrics["bleu"].metric_value == pytest.approx(23.46)
    assert metrics["bleu"].metric_config == RESULTS["bleu_signature"]
    assert metrics["chrf"].dataset_config == "en-de" and metrics["chrf"].dataset_split == "tst-COMMON"


def test_card_before_evaluation_says_so():
    text = str(st_card(results={}))
    assert "Not evaluated yet" in text
    assert "model-index" not in text


def test_mt_card():
    card = render_model_card(
        "mt",
        card_info={
            "stage": "pretrain_mt",
            "dataset": "demo",
            "languages": ["de", "en"],
            "results": RESULTS,
            "architecture": {"d_model": 64},
        },
        paper=PAPER,
    )
    text = str(card)
    assert "Stage 1 of **DTW-Align**" in text and "`d_model`: 64" in text and "| test | 23.46 | 51.20 |" in text
    assert "speech-translation" not in card.data.tags


def test_unknown_stage():
    with pytest.raises(ValueError, match="stage"):
        render_model_card("x", card_info={"stage": "bogus"})
