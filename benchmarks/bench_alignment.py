#!/usr/bin/env python
"""Benchmark of the alignment step: our DTW backends vs CMOT's alignment vs per-pair DTW libraries vs the floor.

    python benchmarks/bench_alignment.py              # both shapes, CPU
    python benchmarks/bench_alignment.py --quick      # small shape, 5 rounds: a smoke run
    python benchmarks/bench_alignment.py --device cuda

Two stages, one table: "end to end" rows go from speech (B, N, D) and text (B, M, D) embeddings to one token per frame;
"given S" rows start from the similarity (or cost) matrix already computed, which isolates the alignment algorithm
from the shared matmul. All rows are measured in the same run with interleaved rounds (each round times every row
once, so background load hits all rows alike); the table gives the median and the minimum of the rounds after one
warm-up call per row (JIT compilation excluded). Inputs are synthetic but structured: each frame is a noisy copy of the
token that a random monotonic path assigns to it.

Rows:
- ours: `align(method="dtw")` with each available backend (numba, torch; triton on CUDA): cosine similarity (one bmm)
  + DP + backtrack + the result's statistics; given S: the backend's DP + backtrack alone. Three more end-to-end
  rows time the similarity corrections (`normalization="token_center"`, `"csls"`, `diagonal_prior=1.0`) on the
  fastest backend; they are not counted as "ours" for the ratio column. `align` is called untimed (`timed=False`,
  the default); the benchmark synchronises CUDA around each call itself.
- CMOT: `align(method="cmot")`, vectorised and `backend="loop"` (the released code's per-sample, per-frame loops),
  with its L2 cost end to end, and with the cosine cost 1 - S given S.
- per-pair peers (skipped with a note when not installed), one call per sample: librosa `sequence.dtw` (exact
  pattern, cost -S), tslearn `dtw_path_from_metric` (precomputed cost 1 - S; standard 3-move DTW), dtaidistance
  `dtw_ndim.warping_path` (C library; it takes no cost matrix and computes its own squared-Euclidean cost on the
  unit-normalised vectors, so end to end only; standard DTW). End to end they start with our cosine similarity.
- floor: end to end, the raw similarity matmul `bmm(f, e^T)` plus one pass over the B x N x M cells (read S, write one
  byte per cell, as the DP's decisions do), each timed in the same rounds and added; given S, the pass alone.
The ratio column is each row's median over the fastest of our rows of the same stage.
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

from dtw_align_hf.alignment import align, cosine_similarity, get_dtw_backend
from dtw_align_hf.alignment_cmot import cmot_align_loop, cmot_align_vectorised
from dtw_align_hf.import_utils import is_numba_available, is_triton_available


SHAPES = {"small": (16, 400, 40, 512), "large": (32, 1000, 100, 768)}


@dataclass
class Row:
    stage: str  # "end to end" (embeddings -> frame_to_token) or "given S" (similarity / cost already computed)
    name: str
    pattern: str
    fn: Callable[[], object] | None
    ours: bool = False
    times: list[float] = field(default_factory=list)
    fixed: tuple[float, float] | None = None  # (median, min) of a derived row (the floor)

    @property
    def median(self) -> float:
        return self.fixed[0] if self.fixed else statistics.median(self.times)

    @property
    def min(self) -> float:
        return self.fixed[1] if self.fixed else min(self.times)


E2E, GIVEN_S = "end to end", "given S"


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


def peer_rows(speech: torch.Tensor, text: torch.Tensor, S_host: np.ndarray, notes: list[str]) -> list[Row]:
    """Per-pair DTW libraries, end to end (our cosine similarity first) and given the similarity on the host."""
    B = speech.shape[0]
    rows = []
    try:
        import librosa

        steps, zeros, ones = np.array([[1, 1], [1, 0]]), np.zeros(2), np.ones(2)

        def librosa_pairs(S):
            return [
                librosa.sequence.dtw(C=-S[b], step_sizes_sigma=steps, weights_add=zeros, weights_mul=ones)[1]
                for b in range(B)
            ]

        name = f"librosa {librosa.__version__} sequence.dtw, per pair"
        rows.append(Row(E2E, name, "exact", lambda: librosa_pairs(cosine_similarity(speech, text).cpu().numpy())))
        rows.append(Row(GIVEN_S, name, "exact", lambda: librosa_pairs(S_host)))
    except ImportError:
        notes.append("librosa: not installed (pip install librosa), rows skipped")
    try:
        import tslearn
        from tslearn.metrics import dtw_path_from_metric

        def tslearn_pairs(S):
            C = (1.0 - S).astype(np.float64)
            return [dtw_path_from_metric(C[b], metric="precomputed")[0] for b in range(B)]

        name = f"tslearn {tslearn.__version__} dtw_path_from_metric, per pair"
        rows.append(Row(E2E, name, "standard", lambda: tslearn_pairs(cosine_similarity(speech, text).cpu().numpy())))
        rows.append(Row(GIVEN_S, name, "standard", lambda: tslearn_pairs(S_host)))
    except ImportError:
        notes.append("tslearn: not installed (pip install tslearn), rows skipped")
    try:
        import dtaidistance
        from dtaidistance import dtw_ndim

        def run_dtaidistance():
            f = torch.nn.functional.normalize(speech.float(), dim=-1).cpu().numpy().astype(np.float64)
            e = torch.nn.functional.normalize(text.float(), dim=-1).cpu().numpy().astype(np.float64)
            return [dtw_ndim.warping_path(f[b], e[b], use_c=True) for b in range(B)]

        name = f"dtaidistance {dtaidistance.__version__} dtw_ndim.warping_path (C, own distance), per pair"
        rows.append(Row(E2E, name, "standard", run_dtaidistance))
        notes.append("dtaidistance takes no precomputed cost: end-to-end row only")
    except ImportError:
        notes.append("dtaidistance: not installed (pip install dtaidistance), row skipped")
    return rows


def bench_shape(shape: str, device: str, rounds: int, notes: list[str]) -> tuple[list[Row], dict]:
    B, N, M, D = SHAPES[shape]
    speech, text = make_inputs(B, N, M, D, device)
    S = cosine_similarity(speech, text)
    S_host = S.cpu().numpy()
    nlen = torch.full((B,), N, device=device)
    mlen = torch.full((B,), M, device=device)
    backends = ["numba"] if is_numba_available() else []
    backends.append("torch")
    if device.startswith("cuda") and is_triton_available():
        backends.insert(0, "triton")
    labels = {
        "numba": "numba (CPU kernel)",
        "torch": "torch (frame loop, reference)",
        "triton": "triton (one launch per batch)",
    }
    rows: list[Row] = []
    for name in backends:
        label = labels[name] + (", host round trip" if name == "numba" and device.startswith("cuda") else "")
        rows.append(
            Row(E2E, f"ours: align(dtw) {label}", "exact", lambda n=name: align(speech, text, backend=n), True)
        )
        rows.append(
            Row(
                GIVEN_S,
                f"ours: {label} DP + backtrack",
                "exact",
                lambda n=name: get_dtw_backend(n)(S, nlen, mlen),
                True,
            )
        )
    # the similarity corrections (computed in torch before the DP), on the first (fastest) backend
    for label, kwargs in (
        ("normalization='token_center'", {"normalization": "token_center"}),
        ("normalization='csls'", {"normalization": "csls"}),
        ("diagonal_prior=1.0", {"diagonal_prior": 1.0}),
    ):
        rows.append(
            Row(
                E2E,
                f"ours: align(dtw) {backends[0]}, {label}",
                "exact",
                lambda b=backends[0], kw=kwargs: align(speech, text, backend=b, **kw),
            )
        )
    rows.append(Row(E2E, "CMOT, vectorised: align(cmot)", "windowed NN", lambda: align(speech, text, method="cmot")))
    rows.append(
        Row(
            E2E,
            "CMOT, released loop structure: align(cmot, backend='loop')",
            "windowed NN",
            lambda: align(speech, text, method="cmot", backend="loop"),
        )
    )
    rows.append(
        Row(
            GIVEN_S,
            "CMOT window + argmin on 1 - S, vectorised",
            "windowed NN",
            lambda: cmot_align_vectorised(speech, text, nlen, mlen, similarity=S),
        )
    )
    rows.append(
        Row(
            GIVEN_S,
            "CMOT window + argmin on 1 - S, released loop structure",
            "windowed NN",
            lambda: cmot_align_loop(speech, text, nlen, mlen, similarity=S),
        )
    )
    rows += peer_rows(speech, text, S_host, notes)

    # the floor's parts, timed in the same rounds
    holder = {}

    def floor_matmul():
        holder["S"] = torch.bmm(speech, text.transpose(1, 2))

    def floor_pass():
        torch.ge(holder["S"], 0)

    parts = [Row("", "floor part: bmm", "-", floor_matmul), Row("", "floor part: one pass", "-", floor_pass)]

    # correctness: every backend of ours gives the same paths
    ref = align(speech, text, backend="torch").frame_to_token
    same = all(torch.equal(align(speech, text, backend=n).frame_to_token, ref) for n in backends)

    timed = rows + parts
    for row in timed:  # warm-up (JIT, allocator, caches)
        row.fn()
        sync(device)
    for _ in range(rounds):
        for row in timed:
            gc.collect()
            sync(device)
            t0 = time.perf_counter()
            row.fn()
            sync(device)
            row.times.append(time.perf_counter() - t0)
    mm, one_pass = parts
    rows.append(
        Row(
            E2E,
            "floor: bmm(f, e^T) + one pass over the B*N*M cells",
            "-",
            None,
            fixed=(mm.median + one_pass.median, mm.min + one_pass.min),
        )
    )
    rows.append(
        Row(
            GIVEN_S,
            "floor: one pass over the B*N*M cells (read S, write 1 byte)",
            "-",
            None,
            fixed=(one_pass.median, one_pass.min),
        )
    )
    info = {"shape": {"B": B, "N": N, "M": M, "D": D}, "paths_identical_across_our_backends": same}
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


def table(rows: list[Row]) -> str:
    lines = [
        "| stage | implementation | pattern | median ms | min ms | x ours (fastest, same stage) |",
        "|---|---|---|---|---|---|",
    ]
    for stage in (E2E, GIVEN_S):
        group = [r for r in rows if r.stage == stage]
        best = min(r.median for r in group if r.ours)
        for r in group:
            name = f"**{r.name}**" if r.ours and r.median == best else r.name
            lines.append(
                f"| {stage} | {name} | {r.pattern} | {fmt_ms(r.median)} | {fmt_ms(r.min)} | {r.median / best:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small shape only, 5 rounds")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=None, help="default: small large")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per row (>= 5; default 7, quick 5)")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch and numba threads (default: their own choice); 1 is steadier on a busy machine",
    )
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda needs a CUDA GPU")
    if args.threads:
        torch.set_num_threads(args.threads)
        if is_numba_available():
            import numba

            numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
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
            "rows": [{"stage": r.stage, "name": r.name, "median_s": r.median, "min_s": r.min} for r in rows],
        }
    for note in sorted(set(notes)):
        print(f"\nnote: {note}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
