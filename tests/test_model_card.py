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


class FakeHubApi:
    """Stands in for `huggingface_hub.HfApi` (no network): records what would be uploaded."""

    def __init__(self):
        self.uploads = []

    def create_repo(self, repo_id, **kwargs):
        class Url:
            pass

        url = Url()
        url.repo_id = repo_id
        return url

    def upload_folder(self, *, repo_id, folder_path, ignore_patterns=(), **kwargs):
        import fnmatch
        from pathlib import Path

        files = {}
        for path in Path(folder_path).rglob("*"):
            rel = str(path.relative_to(folder_path))
            if path.is_file() and not any(fnmatch.fnmatch(rel.split("/")[0], pat) for pat in ignore_patterns):
                files[rel] = path.read_bytes()
        self.uploads.append({"repo_id": repo_id, "files": files, **kwargs})

        class Done:  # what `run_as_future=True` would return
            def done(self):
                return True

            def result(self):
                return None

        return Done()


def test_push_to_hub_publishes_model_processor_and_card(
    tmp_path, monkeypatch, tiny_speech_encoder_dir, tiny_mt_dir, tiny_processor_dir
):
    import transformers.trainer

    import run_finetune_st
    from dtw_align_hf.cli import parse_args_and_config

    api = FakeHubApi()
    monkeypatch.setattr(transformers.trainer, "hf_api", lambda: api)
    overrides = {
        "demo_train_size": 24,
        "demo_eval_size": 4,
        "demo_test_size": 6,
        "eval_split": None,
        "mt_model_name_or_path": str(tiny_mt_dir),
        "speech_encoder_name_or_path": str(tiny_speech_encoder_dir),
        "processor_name_or_path": str(tiny_processor_dir),
        "adapter_hidden_size": 32,
        "max_steps": 2,
        "per_device_train_batch_size": 4,
        "save_steps": 100,
        "generation_max_length": 6,
        "disable_tqdm": True,
        "output_dir": str(tmp_path / "st"),
        "push_to_hub": True,
        "hub_model_id": "someone/dtw-align-demo",
    }
    parsed = parse_args_and_config(
        run_finetune_st.make_parser(), ["--config", "recipes/demo/finetune_st.yaml"], config=overrides
    )
    results = run_finetune_st.main(*parsed)
    final = api.uploads[-1]
    assert final["repo_id"] == "someone/dtw-align-demo"
    for name in ("model.safetensors", "config.json", "processor_config.json", "tokenizer_config.json", "README.md"):
        assert name in final["files"], name
    assert not any(name.startswith(("checkpoint-", "_speech_encoder_init")) for name in final["files"])
    card = final["files"]["README.md"].decode()
    assert "someone/dtw-align-demo" in card  # the usage snippet names the repo
    assert f"{results['test']['bleu']:.2f}" in card and results["test"]["bleu_signature"] in card
    assert "alignment accuracy" in card.lower() and "2509.18987" in card
    # the offline output_dir carries the same card
    assert (tmp_path / "st" / "README.md").read_text() == card


def test_license_is_the_users_choice():
    card = st_card()
    assert card.data.license is None  # no invented apache-2.0
    assert "No license was chosen" in str(card) and "--license" in str(card)
    chosen = st_card(license="cc-by-nc-4.0")
    assert chosen.data.license == "cc-by-nc-4.0" and "`cc-by-nc-4.0`" in str(chosen)
    mt = render_model_card("mt", card_info={"stage": "pretrain_mt", "dataset": "demo", "license": "mit"}, paper=PAPER)
    assert mt.data.license == "mit"


def test_cards_record_command_recipe_and_dataset_name():
    recipe = "dataset: manifest\nalignment: dtw\n"
    info = {"command": "python run_finetune_st.py --config r.yaml --max_steps 5", "recipe_text": recipe}
    st = str(st_card(**info, dataset="my-czech-lectures"))
    assert info["command"] in st and "dataset: manifest\nalignment: dtw" in st
    assert "Dataset: my-czech-lectures" in st
    mt = str(render_model_card("mt", card_info={"stage": "pretrain_mt", "dataset": "demo", **info}, paper=PAPER))
    assert info["command"] in mt and "alignment: dtw" in mt


def test_card_without_reference_timings_points_to_the_plots():
    text = str(st_card(results={**RESULTS, "alignment_accuracy": None, "alignment_plots": 4}))
    assert "not measured" in text and "4 test utterances are plotted in `alignment_plots/`" in text
