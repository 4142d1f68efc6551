#!/usr/bin/env python
"""Benchmark of the alignment step: our DTW backends vs CMOT's alignment vs per-pair DTW libraries vs the floor.

    python benchmarks/bench_alignment.py              # both shapes, CPU
    python benchmarks/bench_alignment.py --quick      # small shape, 5 rounds: a smoke run
    python benchmarks/bench_alignment.py --device cuda

Every row is timed end to end, from speech (B, N, D) and text (B, M, D) embeddings to one token per frame, in the same
run with interleaved rounds (each round times every row once, so background load hits all rows alike); the table
gives the median and the minimum of the rounds after one warm-up call per row (JIT compilation excluded). Inputs are
synthetic but structured: each frame is a noisy copy of the token that a random monotonic path assigns to it.

Rows:
- ours: `align(method="dtw")` with each available backend (numba, torch; triton on CUDA): cosine similarity (one bmm)
  + DP + backtrack + the result's statistics.
- CMOT: `align(method="cmot")`, vectorised and `backend="loop"` (the released code's per-sample, per-frame loops).
- per-pair peers (skipped with a note when not installed): our cosine similarity, then one call per sample of
  librosa `sequence.dtw` (exact pattern, cost = -S), tslearn `dtw_path_from_metric` (precomputed cost 1 - S; standard
  3-move DTW), dtaidistance `dtw_ndim.warping_path` (C library; computes its own squared-Euclidean cost on the
  unit-normalised vectors; standard DTW).
- floor: the raw similarity matmul `bmm(f, e^T)` plus one pass over the B x N x M cells (read S, write one byte per
  cell, as the DP's decisions do), each timed on its own; no implementation can do less work.
The ratio column is each row's median over the fastest of our rows.
"""

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from dtw_align_hf.alignment import align, cosine_similarity
from dtw_align_hf.import_utils import is_numba_available, is_triton_available


SHAPES = {"small": (16, 400, 40, 512), "large": (32, 1000, 100, 768)}


@dataclass
class Row:
    name: str
    pattern: str
    fn: Callable[[], object]
    ours: bool = False
    times: list[float] = field(default_factory=list)
    note: str = ""


def make_inputs(B: int, N: int, M: int, D: int, device: str, seed: int = 0, noise: float = 1.0):
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(B, M, D, generator=g)
    truth = torch.empty(B, N, dtype=torch.long)
    for b in range(B):
        cuts = torch.randperm(N - 1, generator=g)[: M - 1].sort().values + 1
        bounds = torch.cat([torch.tensor([0]), cuts, torch.tensor([N])])
        truth[b] = torch.repeat_interleave(torch.arange(M), bounds[1:] - bounds[:-1])
    speech = torch.gather(text, 1, truth.unsqueeze(-1).expand(B, N, D)) + noise * torch.randn(B, N, D, generator=g)
    return speech.contiguous().to(device), text.contiguous().to(device)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peer_rows(speech: torch.Tensor, text: torch.Tensor, notes: list[str]) -> list[Row]:
    B = speech.shape[0]
    rows = []
    try:
        import librosa

        steps, zeros, ones = np.array([[1, 1], [1, 0]]), np.zeros(2), np.ones(2)

        def run_librosa():
            S = cosine_similarity(speech, text).cpu().numpy().astype(np.float64)
            return [
                librosa.sequence.dtw(C=-S[b], step_sizes_sigma=steps, weights_add=zeros, weights_mul=ones)[1]
                for b in range(B)
            ]

        rows.append(Row(f"librosa {librosa.__version__} sequence.dtw, per pair", "exact", run_librosa))
    except ImportError:
        notes.append("librosa: not installed (pip install librosa), row skipped")
    try:
        import tslearn
        from tslearn.metrics import dtw_path_from_metric

        def run_tslearn():
            C = (1.0 - cosine_similarity(speech, text)).cpu().numpy().astype(np.float64)
            return [dtw_path_from_metric(C[b], metric="precomputed")[0] for b in range(B)]

        rows.append(Row(f"tslearn {tslearn.__version__} dtw_path_from_metric, per pair", "standard", run_tslearn))
    except ImportError:
        notes.append("tslearn: not installed (pip install tslearn), row skipped")
    try:
        import dtaidistance
        from dtaidistance import dtw_ndim

        def run_dtaidistance():
            f = torch.nn.functional.normalize(speech.float(), dim=-1).cpu().numpy().astype(np.float64)
            e = torch.nn.functional.normalize(text.float(), dim=-1).cpu().numpy().astype(np.float64)
            return [dtw_ndim.warping_path(f[b], e[b], use_c=True) for b in range(B)]

        rows.append(
            Row(
                f"dtaidistance {dtaidistance.__version__} dtw_ndim.warping_path (C), per pair",
                "standard",
                run_dtaidistance,
            )
        )
    except ImportError:
        notes.append("dtaidistance: not installed (pip install dtaidistance), row skipped")
    return rows


def bench_shape(shape: str, device: str, rounds: int, notes: list[str]) -> tuple[list[Row], dict]:
    B, N, M, D = SHAPES[shape]
    speech, text = make_inputs(B, N, M, D, device)
    rows: list[Row] = []
    backends = ["numba"] if is_numba_available() else []
    backends.append("torch")
    if device.startswith("cuda") and is_triton_available():
        backends.insert(0, "triton")
    for name in backends:
        label = {"numba": "numba (CPU kernel, prange over batch)", "torch": "torch (frame loop, reference)"}.get(
            name, "triton (one launch per batch)"
        )
        if name == "numba" and device.startswith("cuda"):
            label += ", host round trip"
        rows.append(
            Row(f"ours: align(dtw) {label}", "exact", lambda n=name: align(speech, text, backend=n), ours=True)
        )
    rows.append(
        Row("CMOT alignment, vectorised: align(cmot)", "windowed NN", lambda: align(speech, text, method="cmot"))
    )
    rows.append(
        Row(
            "CMOT alignment, released loop structure: align(cmot, backend='loop')",
            "windowed NN",
            lambda: align(speech, text, method="cmot", backend="loop"),
        )
    )
    rows += peer_rows(speech, text, notes)

    # floor components, timed in the same rounds
    S_holder = {}

    def floor_matmul():
        S_holder["S"] = torch.bmm(speech, text.transpose(1, 2))
        sync(device)

    def floor_pass():
        torch.ge(S_holder["S"], 0)
        sync(device)

    floor_rows = [
        Row("floor part: bmm(f, e^T)", "-", floor_matmul),
        Row("floor part: one pass over S", "-", floor_pass),
    ]

    # correctness: every backend of ours gives the same paths
    ref = align(speech, text, backend="torch").frame_to_token
    same = all(torch.equal(align(speech, text, backend=n).frame_to_token, ref) for n in backends)

    for row in rows + floor_rows:  # warm-up (JIT, allocator, caches)
        row.fn()
        sync(device)
    for _ in range(rounds):
        for row in rows + floor_rows:
            gc.collect()
            sync(device)
            t0 = time.perf_counter()
            row.fn()
            sync(device)
            row.times.append(time.perf_counter() - t0)
    floor = statistics.median(floor_rows[0].times) + statistics.median(floor_rows[1].times)
    floor_min = min(floor_rows[0].times) + min(floor_rows[1].times)
    info = {"shape": {"B": B, "N": N, "M": M, "D": D}, "paths_identical_across_our_backends": same, "floor_s": floor}
    rows.append(Row("floor: bmm(f, e^T) + one pass over B*N*M cells", "-", lambda: None, times=[floor, floor_min]))
    return rows, info


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1e3
    if ms >= 100:
        return f"{ms:,.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def _median(row: Row) -> float:
    return row.times[0] if row.name.startswith("floor:") else statistics.median(row.times)


def _min(row: Row) -> float:
    return row.times[1] if row.name.startswith("floor:") else min(row.times)


def table(rows: list[Row]) -> str:
    best = min(statistics.median(r.times) for r in rows if r.ours)
    lines = [
        "| implementation | pattern | median ms | min ms | x ours (fastest) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        med, lo = _median(r), _min(r)
        name = f"**{r.name}**" if r.ours and statistics.median(r.times) == best else r.name
        lines.append(f"| {name} | {r.pattern} | {fmt_ms(med)} | {fmt_ms(lo)} | {med / best:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small shape only, 5 rounds")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=None, help="default: small large")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per row (>= 5; default 7, quick 5)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda needs a CUDA GPU")
    if args.threads:
        torch.set_num_threads(args.threads)
    shapes = args.shapes or (["small"] if args.quick else ["small", "large"])
    rounds = max(5, args.rounds or (5 if args.quick else 7))

    notes: list[str] = []
    cpu = platform.processor() or platform.machine()
    dev = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU ({cpu})"
    print(f"# Alignment benchmark: {dev}, torch {torch.__version__}, {torch.get_num_threads()} torch threads")
    if is_numba_available():
        import numba

        print(f"# numba {numba.__version__}, {numba.get_num_threads()} threads")
    results = {"device": dev, "torch": torch.__version__, "threads": torch.get_num_threads(), "shapes": {}}
    for shape in shapes:
        rows, info = bench_shape(shape, args.device, rounds, notes)
        B, N, M, D = SHAPES[shape]
        print(f"\n## {shape}: B={B}, N={N}, M={M}, D={D}, fp32, {rounds} rounds after warm-up")
        print(
            f"paths identical across our backends: {'yes' if info['paths_identical_across_our_backends'] else 'NO'}\n"
        )
        print(table(rows))
        results["shapes"][shape] = {
            **info,
            "rows": {r.name: {"median_s": _median(r), "min_s": _min(r)} for r in rows},
        }
    for note in sorted(set(notes)):
        print(f"\nnote: {note}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
