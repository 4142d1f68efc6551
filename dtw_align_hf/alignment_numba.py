"""numba CPU kernel for the DTW-Align recurrence (the `"numba"` backend of `alignment.align`).

One kernel for the whole batch, `prange` over samples (threads only for batches of >= `PARALLEL_MIN_CELLS` cells;
smaller ones run the same kernel compiled serially, see below). Per sample it keeps two rows of M + 1 float32 (index 0 is a
-inf sentinel), restricts each frame row to the band of cells that can lie on a complete path
(`max(0, M_b - N_b + n) <= m <= min(M_b - 1, n)`), stores a 1-byte stay/advance decision per cell and backtracks in the
same kernel. The inner loop runs over 0-based slices, which is what lets LLVM vectorise it (AVX2 compare + blend +
add); a `for m in range(lo, hi + 1)` loop stays scalar. Cells outside the band cannot influence cells inside it, so
the band changes nothing but the amount of work: the paths are those of the torch reference.

Tie rule (shared with every backend): advance when `D[n-1, m-1] >= D[n-1, m]`.

`numba` is imported inside `try` so this file can ship with a `trust_remote_code` checkpoint where numba is absent.
"""

import numpy as np
import torch

from .import_utils import is_numba_available


try:
    import numba
    from numba.core.errors import NumbaError
except ImportError:  # the optional `cpu-kernels` extra
    numba = None
    NumbaError = None

# What a failing kernel raises (typing / lowering errors, LLVM failures surface as RuntimeError): the types that
# `align(backend="auto")` catches to fall back to the torch reference. Anything else is a bug and propagates.
KERNEL_ERRORS: tuple[type[BaseException], ...] = (RuntimeError,) + ((NumbaError,) if NumbaError is not None else ())


def _dtw_kernel_py(S, nlen, mlen, out):  # pragma: no cover - compiled by numba below
    B, N = S.shape[0], S.shape[1]
    for b in numba.prange(B):
        nb = nlen[b]
        mb = mlen[b]
        for n in range(N):
            out[b, n] = -1
        if mb < 1 or nb < mb:
            continue
        dec = np.empty((nb, mb), dtype=np.uint8)
        buf_a = np.full(mb + 1, -np.inf, dtype=np.float32)
        buf_b = np.full(mb + 1, -np.inf, dtype=np.float32)
        buf_a[1] = S[b, 0, 0]
        for n in range(1, nb):
            if n % 2 == 1:
                prev = buf_a
                cur = buf_b
            else:
                prev = buf_b
                cur = buf_a
            lo = max(0, mb - nb + n)  # cells below lo cannot reach (N_b - 1, M_b - 1)
            hi = min(mb - 1, n)  # cells above hi cannot be reached from (0, 0)
            p_adv = prev[lo:]  # D[n-1, m-1] at i = m - lo
            p_stay = prev[lo + 1 :]  # D[n-1, m]
            c = cur[lo + 1 :]
            s = S[b, n, lo:]
            d = dec[n, lo:]
            for i in range(hi - lo + 1):
                adv = p_adv[i]
                stay = p_stay[i]
                go = adv >= stay
                c[i] = (adv if go else stay) + s[i]
                d[i] = go
        m = mb - 1
        for n in range(nb - 1, 0, -1):
            out[b, n] = m
            m -= dec[n, m]
        out[b, 0] = m


# Below this many DP cells (B x N x M) the batch runs on one thread. The serial DP is ~0.2 ns per cell (0.1 ms for
# 16 x 400 x 40), so threads can save at most a fraction of a millisecond there, while a parallel region whose threads
# are descheduled (a busy machine, DataLoader workers, other ranks) waits 10-20 ms at its barrier (measured on a
# loaded 2-core VM: 0.09 ms serial vs 13-24 ms with 2 OpenMP threads).
PARALLEL_MIN_CELLS = 1 << 22

_kernels: dict[bool, object] = {}


def _get_kernel(parallel: bool):
    if parallel not in _kernels:
        try:
            _kernels[parallel] = numba.njit(parallel=parallel, cache=True, boundscheck=False)(_dtw_kernel_py)
        except (RuntimeError, OSError):  # "cannot cache function ...": no writable cache location (read-only install)
            _kernels[parallel] = numba.njit(parallel=parallel, cache=False, boundscheck=False)(_dtw_kernel_py)
    return _kernels[parallel]


def dtw_numba(similarity: torch.Tensor, nlen: torch.Tensor, mlen: torch.Tensor) -> torch.Tensor:
    """Batched monotonic DTW on the CPU with numba.

    Args:
        similarity (`torch.Tensor` of shape `(B, N, M)`): float32 similarity (copied to the CPU if elsewhere).
        nlen (`torch.Tensor` of shape `(B,)`): real frames per sample; samples with `nlen < mlen` or a zero length
            get -1 everywhere.
        mlen (`torch.Tensor` of shape `(B,)`): real tokens per sample.

    Returns:
        `torch.Tensor` of shape `(B, N)`, int64, on the device of `similarity`: the token of each frame, -1 on padding.
    """
    if numba is None or not is_numba_available():
        raise ImportError("The 'numba' alignment backend needs numba: `pip install dtw-align-hf[cpu-kernels]`.")
    device = similarity.device
    S = similarity.detach().to("cpu", torch.float32).contiguous().numpy()
    out = np.empty(S.shape[:2], dtype=np.int64)
    if S.shape[0] and S.shape[1]:
        nl = nlen.detach().to("cpu", torch.int64).numpy()
        ml = mlen.detach().to("cpu", torch.int64).numpy()
        parallel = S.shape[0] > 1 and S.size >= PARALLEL_MIN_CELLS and numba.get_num_threads() > 1
        _get_kernel(parallel)(S, nl, ml, out)
    return torch.from_numpy(out).to(device)


__all__ = ["KERNEL_ERRORS", "dtw_numba"]
