#!/usr/bin/env python
"""Alignments of a trained DTW-Align model: statistics and plots, and accuracy against reference word timings.

For each test utterance the model's adapter outputs (speech frames) are aligned to its transcript-token embeddings
with the model's alignment method (or `--method`).

- Always: the statistics that need no reference (`dtw_align_hf.metrics.alignment_statistics`): coverage (share of
  tokens with >= 1 frame), monotonicity, frames per token (mean, min, max), share of frames on the longest segment.
- With reference word timings (the demo corpus ships exact synthesiser timings; `--reference_timings file.jsonl`
  otherwise): token and frame accuracy (`dtw_align_hf.metrics.alignment_accuracy`; the paper reports 26% CMOT vs 45%
  DTW-Align against NeMo Forced Aligner timings), and plots with the reference spans.
- `--plot_only` (or data without timings): plots of similarity and path, and the statistics; no timings needed.

    python tools/eval_alignment.py --model runs/demo/finetune_st_whisper --dataset demo --split test --plot_dir plots
    python tools/eval_alignment.py --model runs/x --dataset manifest --test_file test.tsv --plot_only --plot_dir plots
    python tools/eval_alignment.py --model runs/x --dataset manifest --test_file test.tsv \
        --reference_timings test.timings.jsonl --method cmot

Timings file (docs/CONTRACTS.md): one JSON object a line, `{"id": ..., "words": [{"word", "start", "end"}, ...]}`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from dtw_align_hf.evaluation import evaluate_alignment, frames_per_second, reference_timings_for


STAT_KEYS = (
    "coverage",
    "monotonic",
    "frames_per_token_mean",
    "frames_per_token_min",
    "frames_per_token_max",
    "longest_segment_share",
    "unaligned_samples",
)


@torch.no_grad()
def alignment_plots_and_statistics(
    model,
    processor,
    dataset,
    *,
    method: str | None = None,
    max_samples: int | None = 200,
    batch_size: int = 8,
    plot_dir: str | Path | None = None,
    num_plots: int = 4,
) -> dict[str, Any]:
    """Align `dataset` (CONTRACTS schema: `id`, decoded `audio`, `transcript`) and measure it without references.

    Returns `alignment_statistics`' batch figures (no `per_sample`) plus `num_samples`, `skipped` (rows without
    audio), `method`, `frames_per_second`, `plots` (PNG paths: similarity matrix and path, no reference spans).
    """
    from dtw_align_hf.alignment import cosine_similarity
    from dtw_align_hf.evaluation import align_rows
    from dtw_align_hf.metrics import alignment_statistics
    from dtw_align_hf.plotting import plot_alignment

    model.eval()
    cfg = model.config
    method = method or (cfg.alignment if cfg.alignment != "none" else "dtw")
    rate = frames_per_second(model)
    rows_f2t, counts, plots, skipped = [], [], [], 0
    n = len(dataset) if max_samples is None else min(len(dataset), max_samples)
    for start in range(0, n, batch_size):
        rows = [dataset[i] for i in range(start, min(n, start + batch_size))]
        kept = [r for r in rows if r.get("audio") is not None and r.get("transcript")]
        skipped += len(rows) - len(kept)
        if not kept:
            continue
        batch, speech, text, frame_mask, text_mask, out = align_rows(model, processor, kept, method)
        similarity = None
        for b, row in enumerate(kept):
            n_frames, n_tokens = int(frame_mask[b].sum()), int(text_mask[b].sum())
            f2t = out.frame_to_token[b, :n_frames].cpu()
            rows_f2t.append(f2t.numpy())
            counts.append(n_tokens)
            if plot_dir is not None and len(plots) < num_plots:
                if similarity is None:
                    similarity = cosine_similarity(speech, text, frame_mask.bool(), text_mask)
                tokens = processor.tokenizer.convert_ids_to_tokens(batch["input_ids"][b, :n_tokens].tolist())
                path = Path(plot_dir) / f"{row.get('id', start + b)}.png"
                plot_alignment(
                    similarity[b, :n_frames, :n_tokens].float().cpu(),
                    f2t,
                    str(path),
                    tokens=tokens,
                    title=f"{row.get('id', start + b)} ({method}, no reference timings)",
                    frame_rate=rate,
                )
                plots.append(str(path))
    stats = alignment_statistics(rows_f2t, num_tokens=counts) if rows_f2t else {}
    stats.pop("per_sample", None)
    stats.update(
        {"num_samples": len(rows_f2t), "skipped": skipped, "method": method, "frames_per_second": rate, "plots": plots}
    )
    return stats


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from dtw_align_hf import DTWAlignForSpeechTranslation, DTWAlignProcessor

    try:
        from dtw_align_hf.data import DataArguments, load_splits
    except ImportError:  # before the data-loading code moved out of cli.py
        from dtw_align_hf.data import DataArguments, load_splits

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="Trained DTW-Align folder (run_finetune_st.py output_dir).")
    parser.add_argument("--dataset", default="demo", help="demo | manifest | covost2 | must_c")
    parser.add_argument("--split", default="test", help="Split to score (default test).")
    parser.add_argument("--test_file", default=None, help="manifest: the split's manifest.")
    parser.add_argument("--dataset_config", default=None)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--reference_timings", default=None, help="JSONL word timings (the demo has its own).")
    parser.add_argument(
        "--plot_only",
        action="store_true",
        help="No reference timings: plots and reference-free statistics only (also the default without timings).",
    )
    parser.add_argument("--method", default=None, help="dtw | cmot | nn | uniform (default: the model's).")
    parser.add_argument("--max_samples", type=int, default=200)
    parser.add_argument("--plot_dir", default=None, help="Write PNG plots here.")
    parser.add_argument("--num_plots", type=int, default=4)
    parser.add_argument("--json", default=None, help="Also write the result to this JSON file.")
    args = parser.parse_args(argv)

    data_args = DataArguments(
        dataset=args.dataset,
        dataset_config=args.dataset_config,
        data_dir=args.data_dir,
        test_file=args.test_file,
        eval_split=None,
        train_split=None,
        test_split=args.split,
        reference_timings=args.reference_timings,
    )
    splits, _ = load_splits(data_args)
    timings = None if args.plot_only else reference_timings_for(data_args)
    model = DTWAlignForSpeechTranslation.from_pretrained(args.model)
    processor = DTWAlignProcessor.from_pretrained(args.model)
    common = {"method": args.method, "max_samples": args.max_samples}
    if timings:
        result = evaluate_alignment(
            model, processor, splits["test"], timings, plot_dir=args.plot_dir, num_plots=args.num_plots, **common
        )
        result["statistics"] = alignment_plots_and_statistics(model, processor, splits["test"], **common)
        stats = result["statistics"]
    else:
        if not args.plot_only:
            print("[eval_alignment] no reference timings for this data: plots and reference-free statistics only.")
        stats = result = alignment_plots_and_statistics(
            model, processor, splits["test"], plot_dir=args.plot_dir, num_plots=args.num_plots, **common
        )
        result["reference"] = None
    print(f"[eval_alignment] {args.model} on {args.dataset}/{args.split}, method {result['method']}:")
    for key in ("token_accuracy", "frame_accuracy", "num_samples", "skipped"):
        if key in result:
            print(f"  {key}: {result[key]}")
    for key in STAT_KEYS:
        if key in stats:
            print(f"  {key}: {stats[key]}")
    for plot in result["plots"]:
        print(f"  plot: {plot}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"[eval_alignment] wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
