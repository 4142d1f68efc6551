"""Triton GPU kernel for the DTW-Align recurrence (the `"triton"` backend of `alignment.align`).

The whole batch in one launch, one program per sample (`grid = (B,)`), after whisper's `triton_ops.py` but for our
step pattern, which has no same-row dependency: each frame row depends only on the previous one, so the kernel sweeps
frames and keeps the row in registers (no anti-diagonal skew).

- The current row `D[n, :]` lives in registers, `BLOCK_M = next_pow2(M_max)` lanes, for the whole frame loop. The only
  cross-lane dependency, `D[n-1, m-1]`, is a one-lane shift done with `tl.gather`, not a global-memory round trip.
- Similarity rows are read coalesced (layout B x N x M, token axis contiguous), one row ahead of use.
- Instead of a stay/advance bit, each lane keeps the frame where its current token segment started
  (`start[n, m] = n` on advance, else `start[n-1, m]`); storing it makes the backtrack M dependent loads (one per
  token) instead of N.
- The frame -> token map is written from the M segment starts with a vectorised count.

Tie rule (shared with every backend): advance when `D[n-1, m-1] >= D[n-1, m]`; the same float32 max-then-add as the
torch and numba backends, so the paths are identical.

Limits: one register block holds the token axis, so M_max <= `MAX_TOKENS` (4096); beyond it this backend raises and
`align(backend="auto")` picks torch instead. On the CPU the kernel runs only under Triton's interpreter
(`TRITON_INTERPRET=1` set before import), which the tests use. `triton` is imported inside `try` so this file can ship
with a `trust_remote_code` checkpoint where Triton is absent.
"""

import os

import torch

from .import_utils import is_triton_available


try:
    import triton
    import triton.language as tl
except ImportError:  # the optional `gpu` extra
    triton = None

MAX_TOKENS = 4096


def _triton_errors() -> tuple[type[BaseException], ...]:
    """Triton's compile / launch error types that exist in the installed version (their modules moved across 2.x-3.x)."""
    import importlib

    found = []
    for module, name in (
        ("triton.errors", "TritonError"),
        ("triton.compiler.errors", "CompilationError"),
        ("triton.runtime.errors", "OutOfResources"),
        ("triton.runtime.autotuner", "OutOfResources"),
    ):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(dict.fromkeys(found))


# What a failing kernel raises: Triton's compilation / resource errors and CUDA errors (RuntimeError, which includes
# torch.OutOfMemoryError). `align(backend="auto")` catches these to fall back to the torch reference.
KERNEL_ERRORS: tuple[type[BaseException], ...] = (RuntimeError,) + (_triton_errors() if triton is not None else ())


if triton is not None:

    @triton.jit
    def _dtw_kernel(
        S,
        NLEN,
        MLEN,
        START,
        BOUNDS,
        OUT,
        s_b,
        s_n,
        st_b,
        st_n,
        o_b,
        N,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
    ):
        b = tl.program_id(0)
        nb = tl.load(NLEN + b).to(tl.int32)
        mb = tl.load(MLEN + b).to(tl.int32)
        offs = tl.arange(0, BLOCK_M)
        lane_ok = offs < mb
        # feasibility kept numeric (0/1): the interpreter rejects mixing vector masks with scalar bools
        feas = ((mb >= 1) & (nb >= mb)).to(tl.int32)
        nb_run = nb * feas
        neg_inf = float("-inf")
        src = tl.maximum(offs - 1, 0)  # gather index of the one-lane shift D[n-1, m-1]
        s_row = S + b * s_b
        st_row = START + b * st_b
        # frame 0: only token 0 is reachable
        s0 = tl.load(s_row + offs, mask=(offs == 0) & (offs < mb * feas), other=0.0).to(tl.float32)
        D = tl.where(offs == 0, s0, neg_inf)
        st = tl.zeros([BLOCK_M], dtype=tl.int32)
        tl.store(st_row + offs, st, mask=lane_ok)
        s_next = tl.load(s_row + s_n + offs, mask=offs < mb * (nb_run > 1).to(tl.int32), other=0.0).to(tl.float32)
        for n in range(1, nb_run):
            s_cur = s_next
            s_next = tl.load(
                s_row + (n + 1) * s_n + offs, mask=offs < mb * (nb_run > n + 1).to(tl.int32), other=0.0
            ).to(tl.float32)
            adv = tl.gather(D, src, 0)
            adv = tl.where(offs == 0, neg_inf, adv)
            go = adv >= D  # the tie rule: advance on equal scores
            D = tl.where(go, adv, D) + s_cur
            st = tl.where(go, n, st)
            tl.store(st_row + n * st_n + offs, st, mask=lane_ok)
        tl.debug_barrier()
        # backtrack over tokens: token m occupies [start_m, end_m] and end_{m-1} = start_m - 1
        e = nb_run - 1
        for i in range(mb * feas):
            m = mb - 1 - i
            s_m = tl.load(st_row + e * st_n + m)
            tl.store(BOUNDS + b * BLOCK_M + m, s_m)
            e = s_m - 1
        tl.debug_barrier()
        starts = tl.load(BOUNDS + b * BLOCK_M + offs, mask=offs < mb * feas, other=2147483647)
        for n0 in range(0, N, BLOCK_N):
            frames = n0 + tl.arange(0, BLOCK_N)
            count = tl.sum((starts[None, :] <= frames[:, None]).to(tl.int32), axis=1)
            tok = tl.where(frames < nb_run, count - 1, -1)
            tl.store(OUT + b * o_b + frames, tok.to(tl.int64), mask=frames < N)


def dtw_triton(similarity: torch.Tensor, nlen: torch.Tensor, mlen: torch.Tensor, block_n: int = 64) -> torch.Tensor:
    """Batched monotonic DTW on the GPU, one Triton launch for the whole batch.

    Args:
        similarity (`torch.Tensor` of shape `(B, N, M)`): similarity on a CUDA device (fp32; fp16/bf16 are read and
            accumulated in fp32).
        nlen (`torch.Tensor` of shape `(B,)`): real frames per sample; samples with `nlen < mlen` or a zero length
            get -1 everywhere.
        mlen (`torch.Tensor` of shape `(B,)`): real tokens per sample.
        block_n (`int`): frames per step of the final frame -> token fill.

    Returns:
        `torch.Tensor` of shape `(B, N)`, int64, on the device of `similarity`: the token of each frame, -1 on padding.
    """
    if triton is None or not is_triton_available():
        raise ImportError("The 'triton' alignment backend needs Triton: `pip install dtw-align-hf[gpu]`.")
    device = similarity.device
    if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError(
            f"The 'triton' alignment backend runs on CUDA tensors, got a tensor on {device}; use backend='numba' or "
            f"'torch' on the CPU (or set TRITON_INTERPRET=1 before importing to run Triton's slow interpreter)."
        )
    B, N, M = similarity.shape
    out = torch.full((B, N), -1, dtype=torch.long, device=device)
    if B == 0 or N == 0 or M == 0:
        return out
    if M > MAX_TOKENS:
        raise ValueError(f"The 'triton' alignment backend handles at most {MAX_TOKENS} tokens per sample, got {M}.")
    S = similarity.contiguous()
    nl = nlen.to(device=device, dtype=torch.int32).contiguous()
    ml = mlen.to(device=device, dtype=torch.int32).contiguous()
    block_m = max(16, triton.next_power_of_2(M))
    start = torch.empty((B, N, M), dtype=torch.int32, device=device)
    bounds = torch.empty((B, block_m), dtype=torch.int32, device=device)
    _dtw_kernel[(B,)](
        S,
        nl,
        ml,
        start,
        bounds,
        out,
        S.stride(0),
        S.stride(1),
        start.stride(0),
        start.stride(1),
        out.stride(0),
        N,
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        num_warps=max(1, min(8, block_m // 32)),
    )
    return out


__all__ = ["KERNEL_ERRORS", "MAX_TOKENS", "dtw_triton"]
