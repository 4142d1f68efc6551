"""Recipes: every YAML parses into the run scripts' dataclasses and says what it reproduces; the accelerate configs
load; the demo recipes train both stages end to end (tiny overrides), the loss goes down, and the result reloads
with from_pretrained and translates."""

import dataclasses
import importlib
import math
from pathlib import Path

import pytest
import yaml

from dtw_align_hf import DTWAlignConfig
from dtw_align_hf.cli import parse_args_and_config


REPO = Path(__file__).resolve().parent.parent
# run-script recipes; accelerate configs and experiment grids (tests/test_experiments.py) have their own formats
RECIPES = sorted(p for p in (REPO / "recipes").rglob("*.yaml") if p.parent.name not in ("accelerate", "experiments"))
ACCELERATE = sorted((REPO / "recipes" / "accelerate").glob("*.yaml"))
run_pretrain_mt = importlib.import_module("run_pretrain_mt")
run_finetune_st = importlib.import_module("run_finetune_st")


def module_for(recipe: Path):
    return run_pretrain_mt if recipe.name.startswith("pretrain_mt") else run_finetune_st


def test_recipe_inventory():
    names = {str(p.relative_to(REPO / "recipes")) for p in RECIPES}
    for direction in ("en-de", "en-fr"):
        for name in ("pretrain_mt", "finetune_st", "finetune_st_ot", "finetune_st_noalign"):
            assert f"must_c/{direction}/{name}.yaml" in names
    for direction in ("en-de", "en-ca", "en-fa", "fr-en", "es-en", "de-en"):
        assert f"covost2/{direction}_10h/pretrain_mt.yaml" in names
        assert f"covost2/{direction}_10h/finetune_st.yaml" in names
    assert {"demo/pretrain_mt.yaml", "demo/finetune_st.yaml"} <= names
    assert {p.stem for p in ACCELERATE} == {"single_gpu", "multi_gpu_bf16", "fsdp", "multi_node", "cpu_2proc"}
    assert (REPO / "recipes" / "README.md").is_file()


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: str(p.relative_to(REPO / "recipes")))
def test_recipe_parses_and_has_header(recipe, tmp_path):
    text = recipe.read_text()
    lines = text.splitlines()
    header = "\n".join(lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))]).lower()
    assert text.startswith("# "), "a recipe opens with a comment block"
    for word in ("reproduces", "bleu to expect", "hardware", "wall time"):
        assert word in header, f"the header comment does not say its {word!r}"
    parsed = parse_args_and_config(
        module_for(recipe).make_parser(), ["--config", str(recipe), "--output_dir", str(tmp_path)]
    )
    training_args = parsed[-1]
    assert training_args.output_dir == str(tmp_path)
    data_args = parsed[1]
    assert data_args.recipe == str(recipe)
    if module_for(recipe) is run_finetune_st:
        align_args = parsed[2]
        assert training_args.label_smoothing_factor == 0.0  # label smoothing is the model's in stage 2
        # the DTW-Align settings are valid DTWAlignConfig values
        DTWAlignConfig(**align_args.overrides())
        model_args = parsed[0]
        assert model_args.mt_model_name_or_path
        assert model_args.speech_encoder_name_or_path or model_args.speech_encoder_config
        if "demo" not in recipe.parts:  # CMOT decodes with length penalty 1.2 (passed to generate, test_trainer)
            assert training_args.generation_length_penalty == 1.2
        if "covost2" in recipe.parts and data_args.src_lang != "en":
            assert model_args.speech_encoder_name_or_path == "utter-project/mHuBERT-147"


def test_finetune_arguments_cover_every_dtw_align_setting():
    config_fields = {f.name for f in dataclasses.fields(DTWAlignConfig)}
    arg_fields = {f.name for f in dataclasses.fields(run_finetune_st.DTWAlignArguments)}
    assert arg_fields <= config_fields
    settings = {
        name
        for name in config_fields
        if name.startswith(("adapter_", "alignment", "mix", "discrete_", "kl_", "st_", "mt_", "label_smoothing"))
        or name in ("preset", "max_source_seconds")
    }
    assert settings <= arg_fields, f"missing on the command line: {sorted(settings - arg_fields)}"


def test_cli_override_of_dtw_settings(tmp_path):
    recipe = REPO / "recipes" / "demo" / "finetune_st.yaml"
    _, _, align, _ = parse_args_and_config(
        run_finetune_st.make_parser(),
        ["--config", str(recipe), "--alignment", "ot", "--mixup", "discrete", "--kl_weight", "2", "--output_dir", "x"],
    )
    assert (align.alignment, align.mixup, align.kl_weight) == ("ot", "discrete", 2.0)
    assert align.mixup_level == "token"  # from the recipe


@pytest.mark.parametrize("config", ACCELERATE, ids=lambda p: p.stem)
def test_accelerate_configs_load(config):
    from accelerate.commands.config.config_args import load_config_from_file

    loaded = load_config_from_file(str(config))
    assert loaded.num_processes >= 1
    assert yaml.safe_load(config.read_text())["compute_environment"] == "LOCAL_MACHINE"


# ---------------------------------------------------------------------------------------------------------------------
# the demo recipes end to end, with tiny overrides (a few utterances, a few steps)

TINY_DATA = {"demo_train_size": 24, "demo_eval_size": 4, "demo_test_size": 6, "eval_split": None}


def run_stage(module, recipe, overrides):
    parsed = parse_args_and_config(module.make_parser(), ["--config", str(REPO / recipe)], config=overrides)
    return module.main(*parsed)


def losses(output_dir):
    import json

    state = json.loads((Path(output_dir) / "trainer_state.json").read_text())
    return [entry for entry in state["log_history"] if "loss" in entry]


def test_demo_recipes_train_both_stages(tmp_path):
    mt_dir, st_dir = tmp_path / "mt", tmp_path / "st"
    mt = run_stage(
        run_pretrain_mt,
        "recipes/demo/pretrain_mt.yaml",
        {
            **TINY_DATA,
            "output_dir": str(mt_dir),
            "vocab_size": 200,
            "d_model": 32,
            "ffn_dim": 64,
            "max_steps": 30,
            "per_device_train_batch_size": 8,
            "warmup_steps": 5,
            "logging_steps": 5,
            "save_steps": 30,
            "generation_max_length": 12,
            "disable_tqdm": True,
        },
    )
    mt_logs = losses(mt_dir)
    assert mt_logs[-1]["loss"] < mt_logs[0]["loss"]
    assert math.isfinite(mt["test"]["bleu"]) and mt["test"]["bleu_signature"].startswith("nrefs:1")
    for name in ("model.safetensors", "config.json", "tokenizer_config.json", "processor_config.json", "README.md"):
        assert (mt_dir / name).is_file(), name

    st = run_stage(
        run_finetune_st,
        "recipes/demo/finetune_st.yaml",
        {
            **TINY_DATA,
            "output_dir": str(st_dir),
            "mt_model_name_or_path": str(mt_dir),
            "max_steps": 12,
            "per_device_train_batch_size": 4,
            "learning_rate": 2e-3,
            "warmup_steps": 2,
            "logging_steps": 3,
            "save_steps": 12,
            "generation_max_length": 12,
            "disable_tqdm": True,
        },
    )
    st_logs = losses(st_dir)
    assert st_logs[-1]["loss"] < st_logs[0]["loss"]
    for key in ("loss/st", "loss/mt", "loss/mix", "loss/kl", "align/valid_frac", "align/frames_per_token"):
        assert key in st_logs[0], key
    assert math.isfinite(st["test"]["chrf"])
    assert 0.0 <= st["alignment"]["token_accuracy"] <= 1.0
    for key in ("checkpoint", "results", "hypotheses", "card", "plots"):
        assert Path(st["paths"][key]).exists(), key
    card = (st_dir / "README.md").read_text()
    assert "recipes/demo/finetune_st.yaml" in card and "chrF" in card and "2509.18987" in card
    assert "Command: `python" in card and "speech_encoder_config:" in card  # command line and recipe text
    # one audio-length limit: the processor saved with the model follows the model config (issue 10, bug 6)
    import json

    processor_config = json.loads((st_dir / "processor_config.json").read_text())
    model_config = json.loads((st_dir / "config.json").read_text())
    assert processor_config.get("max_source_seconds", 30.0) == model_config.get("max_source_seconds", 30.0)
    assert "Command: `python" in (mt_dir / "README.md").read_text()

    # rerunning the finished folder with other settings is refused before any work, nothing relabelled (issue 11)
    from dtw_align_hf.cli import SetupError

    config_before = (st_dir / "config.json").read_text()
    with pytest.raises(SetupError, match=r"(?s)alignment\.alignment: 'dtw' -> 'ot'.*alignment\.mixup"):
        run_stage(
            run_finetune_st,
            "recipes/demo/finetune_st.yaml",
            {**TINY_DATA, "output_dir": str(st_dir), "mt_model_name_or_path": str(mt_dir), "alignment": "ot",
             "mixup": "discrete"},
        )  # fmt: skip
    assert (st_dir / "config.json").read_text() == config_before

    # the output folder reloads with the Auto classes and translates speech
    import torch
    from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

    from dtw_align_hf.data.demo import load_demo_corpus

    model = AutoModelForSpeechSeq2Seq.from_pretrained(st_dir).eval()
    processor = AutoProcessor.from_pretrained(st_dir)
    sizes = {"train": 24, "dev": 4, "test": 6}
    example = load_demo_corpus("test", split_sizes=sizes)[0]
    inputs = processor(audio=example["audio"], sampling_rate=16000)
    with torch.no_grad():
        ids = model.generate(**inputs, max_new_tokens=8, num_beams=1)
    assert ids.shape[0] == 1 and ids.shape[1] >= 2
    assert isinstance(processor.batch_decode(ids)[0], str)


def write_covost2_parquet(root, config="de_en", n=8):
    """A local copy of the CoVoST 2 parquet mirror's layout (<config>/<split>-00000-of-00001.parquet)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    import soundfile as sf

    from dtw_align_hf.testing_utils import synthetic_audio

    words = ["das kleine rote haus", "ein hund", "die katze sieht den baum", "das haus"]
    english = ["the small red house", "a dog", "the cat sees the tree", "the house"]
    (root / config).mkdir(parents=True)
    for split in ("train", "validation", "test"):
        rows = {"client_id": [], "file": [], "audio": [], "sentence": [], "translation": [], "id": []}
        for i in range(n):
            buf = io.BytesIO()
            sf.write(buf, synthetic_audio(0.6 + 0.1 * (i % 3), seed=i), 16000, format="WAV")
            rows["client_id"].append("spk")
            rows["file"].append(f"{split}_{i}.wav")
            rows["audio"].append({"bytes": buf.getvalue(), "path": f"{split}_{i}.wav"})
            rows["sentence"].append(words[i % 4])
            rows["translation"].append(english[i % 4])
            rows["id"].append(f"{split}-{i}")
        if split == "train":  # one bad row: skipped and counted, never a crash
            rows["sentence"][1] = ""
        pq.write_table(pa.table(rows), root / config / f"{split}-00000-of-00001.parquet")


def test_covost2_streamed_from_local_parquet(tmp_path, tiny_speech_encoder_dir, tiny_mt_dir, tiny_processor_dir):
    """--dataset covost2 streams (IterableDataset): max_steps training, test references from the labels."""
    write_covost2_parquet(tmp_path / "covost2")
    results = run_stage(
        run_finetune_st,
        "recipes/covost2/de-en_10h/finetune_st.yaml",
        {
            "data_dir": str(tmp_path / "covost2"),
            "output_dir": str(tmp_path / "st"),
            "speech_encoder_name_or_path": str(tiny_speech_encoder_dir),
            "mt_model_name_or_path": str(tiny_mt_dir),
            "processor_name_or_path": str(tiny_processor_dir),
            "adapter_hidden_size": 32,
            "adapter_kernel_size": 5,
            "train_hours": None,
            "eval_strategy": "no",
            "max_steps": 2,
            "per_device_train_batch_size": 2,
            "per_device_eval_batch_size": 4,
            "save_steps": 100,
            "generation_max_length": 6,
            "generation_num_beams": 1,
            "report_to": "none",
            "dataloader_num_workers": 0,
            "disable_tqdm": True,
        },
    )
    assert results["train"]["steps"] == 2
    assert results["test"]["num_samples"] == 8
    assert results["skipped"]["train"] >= 1
    assert (tmp_path / "st" / "test_references.txt").read_text().splitlines()[0] == "the small red house"
    # no reference word timings: the alignments of a few test utterances are plotted anyway (issue 12, item 5)
    assert results["alignment"]["token_accuracy"] is None and len(results["alignment"]["plots"]) == 4
    assert all(Path(p).is_file() for p in results["alignment"]["plots"])
    card = (tmp_path / "st" / "README.md").read_text()
    assert "plotted in `alignment_plots/`" in card and "No license was chosen" in card


def test_manifest_dataset_stage_1(tmp_path):
    """--dataset manifest with JSONL manifests (here the demo corpus's own files)."""
    from dtw_align_hf.data.demo import build_demo_corpus

    corpus = build_demo_corpus(split_sizes={"train": 24, "dev": 4, "test": 6}, progress=False)
    results = run_stage(
        run_pretrain_mt,
        "recipes/demo/pretrain_mt.yaml",
        {
            "dataset": "manifest",
            "train_file": str(corpus / "train.jsonl"),
            "test_file": str(corpus / "test.jsonl"),
            "eval_split": None,
            "src_lang": "de",
            "tgt_lang": "en",
            "output_dir": str(tmp_path / "mt"),
            "vocab_size": 150,
            "d_model": 32,
            "ffn_dim": 64,
            "max_steps": 3,
            "per_device_train_batch_size": 8,
            "logging_steps": 1,
            "save_steps": 100,
            "generation_max_length": 6,
            "disable_tqdm": True,
        },
    )
    assert results["train"]["steps"] == 3 and results["test"]["num_samples"] == 6
    assert results["dataset"] == "manifest"
