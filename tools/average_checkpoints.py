#!/usr/bin/env python
"""Average the weights of the last N checkpoints (fairseq's `scripts/average_checkpoints.py`, for safetensors).

CMOT and DTW-Align evaluate the average of the last 10 checkpoints. With the Trainer's `checkpoint-<step>` folders:

    python tools/average_checkpoints.py --inputs runs/must_c_en-de --num_checkpoints 10 \
        --output runs/must_c_en-de/averaged
    python tools/average_checkpoints.py --checkpoints runs/x/checkpoint-900 runs/x/checkpoint-1000 --output avg

Floating-point tensors are averaged in float64 and cast back to their dtype; integer tensors (counters, buffers)
are floor-divided as fairseq does. Everything else in the newest checkpoint (config, generation config, tokenizer,
processor, card) is copied, so the output folder loads with `from_pretrained` like any checkpoint. Trainer state,
optimizer, scheduler and RNG files are not copied: the average is for evaluation, not for resuming.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
TRAINING_STATE_FILES = {"optimizer.pt", "scheduler.pt", "scaler.pt", "trainer_state.json", "training_args.bin"}
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def last_checkpoints(run_dir: str | Path, num: int) -> list[Path]:
    """The `num` newest `checkpoint-<step>` folders of `run_dir` that hold weights, oldest first.

    Folders without weights (a save interrupted by an older version, a folder of the user's) are skipped and named;
    partial saves of the run scripts are `.tmp-checkpoint-<step>` and never match.
    """
    found = []
    for path in Path(run_dir).iterdir():
        match = _CHECKPOINT_RE.match(path.name)
        if match and path.is_dir():
            if not ((path / WEIGHTS_NAME).is_file() or (path / WEIGHTS_INDEX_NAME).is_file()):
                print(f"[average_checkpoints] skipping {path}: no {WEIGHTS_NAME} (an incomplete checkpoint)")
                continue
            found.append((int(match.group(1)), path))
    if not found:
        raise FileNotFoundError(f"No checkpoint-<step> folders in {str(run_dir)!r}.")
    found.sort()
    if len(found) < num:
        print(f"[average_checkpoints] asked for {num} checkpoints, {run_dir} has {len(found)}; averaging those")
    return [path for _, path in found[-num:]]


def _weight_files(checkpoint: Path) -> list[Path]:
    index = checkpoint / WEIGHTS_INDEX_NAME
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [checkpoint / shard for shard in shards]
    single = checkpoint / WEIGHTS_NAME
    if single.is_file():
        return [single]
    raise FileNotFoundError(f"{str(checkpoint)!r} has neither {WEIGHTS_NAME} nor {WEIGHTS_INDEX_NAME}.")


def load_state_dict(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for file in _weight_files(Path(checkpoint)):
        state.update(load_file(str(file)))
    return state


def average_state_dicts(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of state dicts with identical keys and shapes."""
    if not states:
        raise ValueError("Nothing to average: no state dicts given.")
    keys = list(states[0])
    for i, state in enumerate(states[1:], start=1):
        if set(state) != set(keys):
            missing, extra = set(keys) - set(state), set(state) - set(keys)
            raise ValueError(
                f"Checkpoint {i} has different parameters (missing {sorted(missing)[:5]}, extra {sorted(extra)[:5]})."
            )
    averaged = {}
    for key in keys:
        first = states[0][key]
        if first.is_floating_point():
            total = torch.zeros(first.shape, dtype=torch.float64)
            for state in states:
                total += state[key].to(torch.float64)
            averaged[key] = (total / len(states)).to(first.dtype)
        else:
            total = torch.zeros(first.shape, dtype=torch.int64)
            for state in states:
                total += state[key].to(torch.int64)
            averaged[key] = torch.div(total, len(states), rounding_mode="floor").to(first.dtype)
    return averaged


def average_checkpoints(checkpoints: Sequence[str | Path], output_dir: str | Path) -> Path:
    """Average `checkpoints` into `output_dir` (model.safetensors + the newest checkpoint's other files)."""
    checkpoints = [Path(c) for c in checkpoints]
    output_dir = Path(output_dir)
    averaged = average_state_dicts([load_state_dict(c) for c in checkpoints])
    output_dir.mkdir(parents=True, exist_ok=True)
    newest = checkpoints[-1]
    for item in newest.iterdir():
        weights = item.suffix == ".safetensors" or item.name == WEIGHTS_INDEX_NAME
        training_state = item.name in TRAINING_STATE_FILES or item.name.startswith("rng_state")
        if item.is_file() and not weights and not training_state:
            shutil.copy2(item, output_dir / item.name)
    metadata = {"format": "pt", "averaged_from": json.dumps([str(c) for c in checkpoints])}
    save_file({k: v.contiguous() for k, v in averaged.items()}, str(output_dir / WEIGHTS_NAME), metadata=metadata)
    return output_dir


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--inputs", help="A run's output_dir holding checkpoint-<step> folders.")
    source.add_argument("--checkpoints", nargs="+", help="Explicit checkpoint folders, oldest first.")
    parser.add_argument("--num_checkpoints", type=int, default=10, help="How many of the newest to average (10).")
    parser.add_argument("--output", required=True, help="Folder to write the averaged model to.")
    args = parser.parse_args(argv)
    checkpoints = args.checkpoints or last_checkpoints(args.inputs, args.num_checkpoints)
    out = average_checkpoints(checkpoints, args.output)
    print(f"[average_checkpoints] averaged {len(checkpoints)} checkpoints: {', '.join(str(c) for c in checkpoints)}")
    print(f"[average_checkpoints] wrote {out / WEIGHTS_NAME}")
    return out


if __name__ == "__main__":
    main()
