#!/usr/bin/env python
"""The offline demo: DTW-Align end to end on the bundled German -> English corpus, on a CPU, in minutes.

    make demo                       # = bash scripts/bootstrap.sh && .venv/bin/python run_demo.py
    python run_demo.py --quick      # a smoke run: a tiny corpus and a few steps (about a minute)
    python run_demo.py --fresh      # start over instead of resuming what an earlier run left

What it does, in order:
  1. builds the demo corpus (Ding dictionary sentence pairs, German speech synthesised with espeak-ng, exact word
     timings) into the cache, unless it is there already;
  2. stage 1 (`run_pretrain_mt.py`, recipe `recipes/demo/pretrain_mt.yaml`): a small translation model on the
     transcripts and translations;
  3. stage 2 (`run_finetune_st.py`, recipe `recipes/demo/finetune_st.yaml`): multitask speech translation with DTW
     alignment and interpolation mixup; test-set BLEU, chrF and alignment accuracy;
  4. compares the alignment methods (dtw, cmot, nn, uniform) on the trained model's own embeddings against the
     synthesiser's word timings, and draws alignment plots and the training curves;
  5. reloads the saved model with `AutoModelForSpeechSeq2Seq.from_pretrained` and translates one test audio file;
  6. writes `results.md` and prints where everything went.

Both stages resume from their newest checkpoint, so an interrupted demo picks up where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any


REPO = Path(__file__).resolve().parent
METHODS = ("dtw", "cmot", "nn", "uniform")

# --quick: the same pipeline on a tiny corpus with a few steps, for a smoke test.
QUICK = {
    "demo_train_size": 48,
    "demo_eval_size": 8,
    "demo_test_size": 8,
    "max_steps": 12,
    "save_steps": 6,
    "logging_steps": 3,
    "warmup_steps": 2,
    "per_device_train_batch_size": 8,
}


def _stage(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def _run_stage(module_name: str, recipe: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """Run a stage's `main` in this process, with the recipe as defaults and `overrides` on top."""
    import importlib

    from dtw_align_hf.cli import parse_args_and_config, print_run_summary

    module = importlib.import_module(module_name)
    parsed = parse_args_and_config(module.make_parser(), args=["--config", str(recipe)], config=overrides)
    results = module.main(*parsed)
    print(print_run_summary(results, module_name))
    return results


def _plot_training_curves(state_file: Path, out_png: Path) -> Path | None:
    """Loss components over training steps, from the Trainer's `trainer_state.json`."""
    if not state_file.is_file():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = json.loads(state_file.read_text())["log_history"]
    keys = ["loss", "loss/st", "loss/mt", "loss/mix", "loss/kl"]
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = False
    for key in keys:
        points = [(h["step"], h[key]) for h in history if key in h]
        if points:
            steps, values = zip(*points, strict=True)
            ax.plot(steps, values, marker="o", markersize=3, label=key)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (per target token)")
    ax.set_title("DTW-Align demo, stage 2: loss components")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    return out_png


def _compare_alignment_methods(st_dir: Path, data_kwargs: dict[str, Any], plot_root: Path) -> dict[str, dict]:
    """Alignment accuracy of each method on the trained model's own speech and text embeddings."""
    import torch

    from dtw_align_hf import DTWAlignForSpeechTranslation, DTWAlignProcessor
    from dtw_align_hf.data.demo import load_demo_corpus, load_demo_timings
    from dtw_align_hf.evaluation import evaluate_alignment

    model = DTWAlignForSpeechTranslation.from_pretrained(st_dir)
    processor = DTWAlignProcessor.from_pretrained(st_dir)
    test = load_demo_corpus("test", **data_kwargs)
    timings = load_demo_timings("test", **data_kwargs)
    table = {}
    for method in METHODS:
        started = time.perf_counter()
        with torch.no_grad():
            result = evaluate_alignment(
                model, processor, test, timings, method=method, plot_dir=plot_root / method, num_plots=2
            )
        result["seconds"] = time.perf_counter() - started
        table[method] = result
    return table


def _translate_one(st_dir: Path, data_kwargs: dict[str, Any]) -> dict[str, str]:
    """Reload the model the way a user would and translate one test audio file read from disk."""
    import soundfile as sf
    from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

    from dtw_align_hf.data.demo import build_demo_corpus

    corpus = build_demo_corpus(**data_kwargs, progress=False)
    record = json.loads((corpus / "test.jsonl").read_text(encoding="utf-8").splitlines()[0])
    audio_path = Path(record["audio"])
    if not audio_path.is_absolute():
        audio_path = corpus / audio_path
    audio, rate = sf.read(audio_path, dtype="float32")

    model = AutoModelForSpeechSeq2Seq.from_pretrained(st_dir)
    processor = AutoProcessor.from_pretrained(st_dir)
    inputs = processor(audio=audio, sampling_rate=rate)
    generated = model.generate(
        input_values=inputs["input_values"],
        attention_mask=inputs["attention_mask"],
        num_beams=4,
        max_length=64,
        **processor.generation_kwargs(record.get("tgt_lang")),
    )
    return {
        "audio": str(audio_path),
        "transcript": record["transcript"],
        "reference": record["translation"],
        "hypothesis": processor.batch_decode(generated, skip_special_tokens=True)[0],
    }


def _results_markdown(mt: dict, st: dict, methods: dict[str, dict], example: dict[str, str], quick: bool) -> str:
    def fmt(value, scale=1.0, digits=1):
        return "n/a" if value is None else f"{scale * value:.{digits}f}"

    lines = ["# DTW-Align demo results", ""]
    if quick:
        lines += ["*Quick smoke run (`--quick`): tiny corpus, a few steps; the numbers mean nothing.*", ""]
    lines += [
        "Offline German -> English demo corpus (Ding sentence pairs, espeak-ng speech), tiny models trained from",
        "scratch on a CPU. The speech encoder is randomly initialised (no pretrained HuBERT offline), so BLEU is low;",
        "the point is the pipeline, the loss terms and the alignments.",
        "",
        "## Translation (test split, sacrebleu)",
        "",
        "| stage | input | BLEU | chrF |",
        "| --- | --- | ---: | ---: |",
    ]
    mt_test, st_test = mt.get("test") or {}, st.get("test") or {}
    lines.append(f"| 1: MT pretraining | transcript text | {fmt(mt_test.get('bleu'))} | {fmt(mt_test.get('chrf'))} |")
    lines.append(f"| 2: ST fine-tuning | speech | {fmt(st_test.get('bleu'))} | {fmt(st_test.get('chrf'))} |")
    if st_test.get("bleu_signature"):
        lines += [
            "",
            f"BLEU signature: `{st_test['bleu_signature']}`  ",
            f"chrF signature: `{st_test['chrf_signature']}`",
        ]
    lines += [
        "",
        "## Alignment accuracy (test split, against the synthesiser's word timings)",
        "",
        "Each method aligns the trained model's adapter outputs to its transcript-token embeddings; accuracy as",
        "defined in the README (token level: share of tokens whose frames lie in their word's span).",
        "",
        "| method | token accuracy % | frame accuracy % | utterances scored | seconds (incl. model forward) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for method, result in methods.items():
        lines.append(
            f"| {method} | {fmt(result.get('token_accuracy'), 100)} | {fmt(result.get('frame_accuracy'), 100)} | "
            f"{result.get('num_samples', 0)} | {result.get('seconds', 0.0):.2f} |"
        )
    lines += [
        "",
        "## One test utterance, reloaded with `from_pretrained`",
        "",
        f"- audio: `{example['audio']}`",
        f"- source transcript: {example['transcript']}",
        f"- reference: {example['reference']}",
        f"- hypothesis: {example['hypothesis']}",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="runs/demo", help="Where both stages and the results go.")
    parser.add_argument("--quick", action="store_true", help="Tiny corpus and a few steps: a smoke run.")
    parser.add_argument("--fresh", action="store_true", help="Delete output_dir first instead of resuming.")
    parser.add_argument("--max_steps_mt", type=int, default=None, help="Override stage 1's max_steps.")
    parser.add_argument("--max_steps_st", type=int, default=None, help="Override stage 2's max_steps.")
    args = parser.parse_args(argv)

    os.chdir(REPO)  # recipes, tools/ and the default cache are relative to the repository
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    started = time.time()
    out = Path(args.output_dir)
    if args.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    mt_dir, st_dir = out / "pretrain_mt", out / "finetune_st"

    common: dict[str, Any] = dict(QUICK) if args.quick else {}
    import yaml

    recipe_mt, recipe_st = REPO / "recipes/demo/pretrain_mt.yaml", REPO / "recipes/demo/finetune_st.yaml"
    st_recipe = yaml.safe_load(recipe_st.read_text())
    sizes = {
        "train": common.get("demo_train_size", st_recipe.get("demo_train_size")),
        "dev": common.get("demo_eval_size", st_recipe.get("demo_eval_size")),
        "test": common.get("demo_test_size", st_recipe.get("demo_test_size")),
    }
    data_kwargs = {"split_sizes": sizes, "seed": st_recipe.get("demo_seed", 0)}

    _stage("1/5 demo corpus (German speech synthesised with espeak-ng, exact word timings)")
    from dtw_align_hf.data.demo import build_demo_corpus

    corpus = build_demo_corpus(**data_kwargs)
    print(f"corpus: {corpus}")

    _stage("2/5 stage 1: MT pretraining on transcript -> translation")
    mt_overrides = {**common, "output_dir": str(mt_dir)}
    if args.max_steps_mt is not None:
        mt_overrides["max_steps"] = args.max_steps_mt
    mt_results = _run_stage("run_pretrain_mt", recipe_mt, mt_overrides)

    _stage("3/5 stage 2: multitask ST fine-tuning with DTW alignment + interpolation mixup")
    st_overrides = {**common, "output_dir": str(st_dir), "mt_model_name_or_path": str(mt_dir)}
    if args.max_steps_st is not None:
        st_overrides["max_steps"] = args.max_steps_st
    st_results = _run_stage("run_finetune_st", recipe_st, st_overrides)

    _stage("4/5 alignment methods on the trained model's embeddings, plots")
    plot_root = out / "alignment_plots"
    methods = _compare_alignment_methods(st_dir, data_kwargs, plot_root)
    for method, result in methods.items():
        token_acc = result.get("token_accuracy")
        print(f"{method:>8}: token accuracy {100 * token_acc:.1f}%" if token_acc is not None else f"{method}: n/a")
    curves = _plot_training_curves(st_dir / "trainer_state.json", out / "training_curves.png")

    _stage("5/5 reload with from_pretrained and translate a demo audio file")
    example = _translate_one(st_dir, data_kwargs)
    print(f"audio:      {example['audio']}")
    print(f"transcript: {example['transcript']}")
    print(f"reference:  {example['reference']}")
    print(f"hypothesis: {example['hypothesis']}")

    results_md = out / "results.md"
    results_md.write_text(_results_markdown(mt_results, st_results, methods, example, args.quick), encoding="utf-8")
    summary = {
        "mt": mt_results.get("test"),
        "st": st_results.get("test"),
        "alignment": {m: {k: r.get(k) for k in ("token_accuracy", "frame_accuracy")} for m, r in methods.items()},
        "example": example,
        "wall_time_seconds": round(time.time() - started, 1),
    }
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    print(f"\n=== done in {summary['wall_time_seconds'] / 60:.1f} min; written: ===")
    print(f"  corpus (audio, manifests, word timings): {corpus}")
    print(f"  stage-1 MT model + tokenizer:            {mt_dir}")
    print(f"  stage-2 DTW-Align model + processor:     {st_dir}   (from_pretrained loads this folder)")
    print(f"  model card:                              {st_dir / 'README.md'}")
    print(f"  alignment plots:                         {plot_root}/<method>/*.png")
    if curves:
        print(f"  training curves:                         {curves}")
    print(f"  results table:                           {results_md}")
    print(f"  summary JSON:                            {out / 'demo_summary.json'}")
    return summary


if __name__ == "__main__":
    main()
