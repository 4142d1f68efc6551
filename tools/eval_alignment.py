#!/usr/bin/env python
"""Alignment accuracy of a trained DTW-Align model against reference word timings, with plots.

For each test utterance the model's adapter outputs (speech frames) are aligned to its transcript-token embeddings
with the model's alignment method (or `--method`), and each token's frames are compared with the reference time
span of the word it belongs to (`dtw_align_hf.metrics.alignment_accuracy`). The paper reports 26% (CMOT) vs 45%
(DTW-Align) against NeMo Forced Aligner timings; the demo corpus ships exact synthesiser timings.

    python tools/eval_alignment.py --model runs/demo/st --dataset demo --split test --plot_dir runs/demo/st/plots
    python tools/eval_alignment.py --model runs/x --dataset manifest --test_file test.tsv \
        --reference_timings test.timings.jsonl --method cmot

Timings file (docs/CONTRACTS.md): one JSON object a line, `{"id": ..., "words": [{"word", "start", "end"}, ...]}`.
`run_finetune_st.py` calls `evaluate_alignment` at the end of training when timings exist.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dtw_align_hf.evaluation import evaluate_alignment, reference_timings_for


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from dtw_align_hf import DTWAlignForSpeechTranslation, DTWAlignProcessor
    from dtw_align_hf.cli import DataArguments, load_splits

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="Trained DTW-Align folder (run_finetune_st.py output_dir).")
    parser.add_argument("--dataset", default="demo", help="demo | manifest | covost2 | must_c")
    parser.add_argument("--split", default="test", help="Split to score (default test).")
    parser.add_argument("--test_file", default=None, help="manifest: the split's manifest.")
    parser.add_argument("--dataset_config", default=None)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--reference_timings", default=None, help="JSONL word timings (the demo has its own).")
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
    splits, _ = load_splits(data_args, decode_audio=True)
    timings = reference_timings_for(data_args)
    if not timings:
        raise SystemExit("No reference timings: pass --reference_timings (JSONL, docs/CONTRACTS.md).")
    model = DTWAlignForSpeechTranslation.from_pretrained(args.model)
    processor = DTWAlignProcessor.from_pretrained(args.model)
    result = evaluate_alignment(
        model,
        processor,
        splits["test"],
        timings,
        method=args.method,
        max_samples=args.max_samples,
        plot_dir=args.plot_dir,
        num_plots=args.num_plots,
    )
    print(f"[eval_alignment] {args.model} on {args.dataset}/{args.split}, method {result['method']}:")
    for key in ("token_accuracy", "frame_accuracy", "num_samples", "skipped"):
        if key in result:
            print(f"  {key}: {result[key]}")
    for plot in result["plots"]:
        print(f"  plot: {plot}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"[eval_alignment] wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
