#!/usr/bin/env python
"""Is system B significantly better than system A? Paired bootstrap resampling with sacrebleu (Koehn, 2004).

Inputs are detokenised outputs, one sentence a line, in the test set's order: the `test_hypotheses.txt` and
`test_references.txt` that `run_finetune_st.py` writes into its output_dir, or any text files.

    python tools/compare_systems.py --baseline runs/cmot/test_hypotheses.txt \
        --system runs/dtw/test_hypotheses.txt --references runs/dtw/test_references.txt
    python tools/compare_systems.py --baseline runs/cmot --system runs/dtw      # run folders: files found inside

Prints BLEU and chrF of both systems with the bootstrap mean, 95% confidence interval and p-value, and the
sacrebleu signature; `--json out.json` also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


HYPOTHESES_FILE = "test_hypotheses.txt"
REFERENCES_FILE = "test_references.txt"


def read_lines(path: str | Path, default_name: str) -> list[str]:
    path = Path(path)
    if path.is_dir():
        path = path / default_name
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} does not exist.")
    return path.read_text(encoding="utf-8").rstrip("\n").split("\n")


def compare(
    baseline: Sequence[str], system: Sequence[str], references: Sequence[str], n_samples: int = 1000, seed: int = 12345
) -> dict[str, Any]:
    """Paired bootstrap of `system` against `baseline` via `dtw_align_hf.metrics.paired_bootstrap`."""
    from dtw_align_hf.metrics import paired_bootstrap

    if not len(baseline) == len(system) == len(references):
        raise ValueError(
            f"Line counts differ: baseline {len(baseline)}, system {len(system)}, references {len(references)}; "
            "all three must follow the same test set in the same order."
        )
    return paired_bootstrap(list(baseline), list(system), list(references), n_samples=n_samples, seed=seed)


def _format(result: dict[str, Any]) -> str:
    lines = []
    for key, value in result.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items())
            lines.append(f"  {key}: {inner}")
        elif isinstance(value, float):
            lines.append(f"  {key}: {value:.4f}")
        else:
            lines.append(f"  {key}: {value}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help=f"Hypotheses file or run folder (with {HYPOTHESES_FILE}).")
    parser.add_argument("--system", required=True, help="Hypotheses file or run folder of the system to test.")
    parser.add_argument(
        "--references", default=None, help=f"References file or folder (default: {REFERENCES_FILE} beside --system)."
    )
    parser.add_argument("--n_samples", type=int, default=1000, help="Bootstrap resamples (1000).")
    parser.add_argument("--seed", type=int, default=12345, help="Resampling seed (sacrebleu's default 12345).")
    parser.add_argument("--json", default=None, help="Also write the result to this JSON file.")
    args = parser.parse_args(argv)

    baseline = read_lines(args.baseline, HYPOTHESES_FILE)
    system = read_lines(args.system, HYPOTHESES_FILE)
    ref_source = args.references
    if ref_source is None:
        system_path = Path(args.system)
        ref_source = system_path if system_path.is_dir() else system_path.parent
    references = read_lines(ref_source, REFERENCES_FILE)
    result = compare(baseline, system, references, n_samples=args.n_samples, seed=args.seed)
    print(f"[compare_systems] baseline={args.baseline} system={args.system} ({len(references)} sentences)")
    print(_format(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"[compare_systems] wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
