"""Monotonic DTW alignment of speech frames to transcript tokens (DTW-Align, Issam et al., 2025, arXiv 2509.18987).

One public function, `align`, in the shape of whisper's `timing.py`: it checks its inputs and options, builds the
similarity the method needs, dispatches to the method through a table (`_METHODS`: name -> function) and packages the
result. For `method="dtw"` the `(B, N, M)` similarity goes to a DTW backend registered by name:

- `"torch"`: the reference; vectorised over the batch, a Python loop over frames; runs on any device.
- `"numba"`: CPU kernel, parallel over the batch (`alignment_numba.py`, extra `cpu-kernels`).
- `"triton"`: the whole batch in one GPU launch (`alignment_triton.py`, extra `gpu`).

The recurrence (the paper's DTW alignment, with our step pattern), with S the similarity of frame n and token m:

    D[0, 0] = S[0, 0],   D[0, m > 0] = -inf,   D[n, m] = S[n, m] + max(D[n-1, m], D[n-1, m-1])

and the path runs from (0, 0) to (N_b - 1, M_b - 1) for each sample's own lengths, so every token gets >= 1 frame.

Tie rule (one rule, implemented identically by every backend): **on equal scores the path advances**, i.e. the
predecessor of cell (n, m) is (n-1, m-1) whenever `D[n-1, m-1] >= D[n-1, m]`. Read backwards, a token's segment starts
as late as possible, so on a tie earlier tokens get the longer segments (all-equal similarities give frames
`0 .. N_b - M_b` to token 0 and one frame to every later token). It is `torch.cummax`'s rule (last index of a tie),
and every exact peer we checked (librosa, the MAS Cython packages) picks the same paths on random data. All backends
run the same float32 operations in the same order (a max, then one add), so they agree path for path.

Similarity corrections (`normalization`, `diagonal_prior`, see `alignment_utils.py`) are computed in torch before
dispatch, so every backend runs the same DP on the same corrected matrix and the paths stay identical across backends.

Other methods behind the same interface (`alignment_cmot.py`): `"cmot"` (alias `"ot"`), CMOT's released windowed
nearest neighbour; `"nn"`, each frame's most similar token; `"uniform"`, length-proportional. They may leave tokens
without a frame or go backwards; `AlignmentOutput.token_coverage` and `.monotonic` report it.

Host-device synchronisation: a call makes one (the mask check, only when a mask is given), plus one for `strict=True`
and two for `timed=True`; the kernels' own (numba copies to the host) aside, nothing else waits for the device.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real

import torch
from transformers.utils import logging

from .alignment_cmot import cmot_align_loop, cmot_align_vectorised, nn_align, uniform_align
from .alignment_utils import (
    SIMILARITY_NORMALIZATIONS,
    check_embeddings,
    cosine_similarity,
    diagonal_penalty,
    diagonal_penalty_from_lengths,
    finite_per_sample,
    lengths_from_masks,
    normalize_similarity,
    normalize_similarity_from_lengths,
    path_cosine,
    path_score,
    path_stats,
    real_cells,
)
from .import_utils import is_numba_available, is_triton_available


logger = logging.get_logger(__name__)

ALIGNMENT_METHODS = ("dtw", "cmot", "nn", "uniform")
METHOD_ALIASES = {"ot": "cmot"}
DTW_BACKENDS = ("torch", "numba", "triton")
CMOT_BACKENDS = ("torch", "loop")
ALIGNMENT_BACKENDS = ("auto", *DTW_BACKENDS, "loop")
_EXTRAS = {"numba": "cpu-kernels", "triton": "gpu"}

# A DTW backend takes the similarity S (B, N, M) float32 contiguous, the lengths nlen, mlen (B,) int64 on S's device
# (infeasible samples already zeroed by `align`) and returns frame_to_token (B, N) int64, -1 on padded frames and on
# every frame of a sample whose lengths are zero.
DTWBackend = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class AlignmentOutput:
    """Result of `align`.

    Args:
        frame_to_token (`torch.Tensor` of shape `(B, N)`, int64):
            Index of the token assigned to each speech frame; -1 on padded frames and on every frame of an invalid
            sample.
        score (`torch.Tensor` of shape `(B,)`, float32):
            Sum along the path of the similarity before any correction (`sum_n S[n, frame_to_token[n]]`, S the cosine
            similarity or the `similarity` passed in, accumulated in float64), so scores compare across methods and
            corrections; -inf where the sample is invalid.
        valid (`torch.Tensor` of shape `(B,)`, bool):
            False where the sample is empty, has non-finite inputs (the similarity for methods that read one, else
            the embeddings), or (method `"dtw"`) has fewer frames than tokens (N_b < M_b). Invalid samples should be
            left out of mixup for that step.
        token_coverage (`torch.Tensor` of shape `(B,)`, float32):
            Share of the sample's tokens that got >= 1 frame (1.0 for every valid DTW sample; 0.0 when invalid).
        monotonic (`torch.Tensor` of shape `(B,)`, bool):
            Whether `frame_to_token` over the sample's real frames is non-decreasing with steps of 0 or 1 (always True
            for a valid DTW sample; False when no frame is assigned).
        seconds (`float`, *optional*):
            Wall time of the call in seconds with `align(timed=True)` (CUDA synchronised before and after); None
            otherwise.
    """

    frame_to_token: torch.Tensor
    score: torch.Tensor
    valid: torch.Tensor
    token_coverage: torch.Tensor
    monotonic: torch.Tensor
    seconds: float | None = None


# ----------------------------------------------------------------------------------------------------------------------
# the torch backend (reference)
# ----------------------------------------------------------------------------------------------------------------------
def _dtw_torch(similarity: torch.Tensor, nlen: torch.Tensor, mlen: torch.Tensor) -> torch.Tensor:
    """Batched DTW in torch: a loop over frames, each frame row vectorised over batch x tokens (4 ops per frame).

    Instead of a stay/advance bit per cell it keeps, per cell, the frame where the current token segment started
    (`start[n, b, m]`), so the backtrack is M gathers (one per token), not N.
    """
    B, N, M = similarity.shape
    device = similarity.device
    out = torch.full((B, N), -1, dtype=torch.long, device=device)
    if B == 0 or N == 0 or M == 0:
        return out
    # D[:, m + 1] holds D[n, m]; column 0 is a -inf sentinel so that "advance" into token 0 is never taken.
    D = torch.full((B, M + 1), float("-inf"), dtype=torch.float32, device=device)
    D[:, 1] = similarity[:, 0, 0]
    D_next = D.clone()
    start = torch.zeros((N, B, M), dtype=torch.int32, device=device)
    go = torch.empty((B, M), dtype=torch.bool, device=device)
    for n in range(1, N):
        adv, stay = D[:, :-1], D[:, 1:]
        torch.ge(adv, stay, out=go)  # the tie rule: advance when D[n-1, m-1] >= D[n-1, m]
        torch.where(go, adv, stay, out=D_next[:, 1:])
        D_next[:, 1:] += similarity[:, n]
        start[n].copy_(start[n - 1]).masked_fill_(go, n)
        D, D_next = D_next, D
    # backtrack over tokens: token m occupies frames [start[end_m, m], end_m] and token m-1 ends one frame earlier
    rows = torch.arange(B, device=device)
    bounds = torch.full((B, M), N, dtype=torch.long, device=device)
    end = (nlen - 1).clamp_min(0)
    for m in range(M - 1, -1, -1):
        active = m < mlen
        seg_start = start[end, rows, m].long()
        bounds[:, m] = torch.where(active, seg_start, N)
        end = torch.where(active, (seg_start - 1).clamp_min(0), end)
    frames = torch.arange(N, device=device)
    tok = torch.searchsorted(bounds, frames.expand(B, N).contiguous(), right=True) - 1
    return torch.where(frames.unsqueeze(0) < nlen.unsqueeze(1), tok, -1)


# ----------------------------------------------------------------------------------------------------------------------
# backend registry
# ----------------------------------------------------------------------------------------------------------------------
KernelErrors = tuple[type[BaseException], ...]


def _load_numba() -> tuple[DTWBackend, KernelErrors]:
    from .alignment_numba import KERNEL_ERRORS, dtw_numba

    return dtw_numba, KERNEL_ERRORS


def _load_triton() -> tuple[DTWBackend, KernelErrors]:
    from .alignment_triton import KERNEL_ERRORS, dtw_triton

    return dtw_triton, KERNEL_ERRORS


# name -> loader returning the kernel and the error types it raises when it fails (caught by backend="auto")
_DTW_BACKEND_LOADERS: dict[str, Callable[[], tuple[DTWBackend, KernelErrors]]] = {
    "torch": lambda: (_dtw_torch, ()),
    "numba": _load_numba,
    "triton": _load_triton,
}
_BACKEND_AVAILABLE: dict[str, Callable[[], bool]] = {
    "torch": lambda: True,
    "numba": is_numba_available,
    "triton": is_triton_available,
}


def _load_backend(name: str) -> tuple[DTWBackend, KernelErrors]:
    if name not in _DTW_BACKEND_LOADERS:
        raise ValueError(f"Unknown DTW backend {name!r}; choose one of {('auto', *DTW_BACKENDS)}.")
    if not _BACKEND_AVAILABLE[name]():
        raise ImportError(
            f"The {name!r} alignment backend needs the `{name}` package: `pip install dtw-align-hf[{_EXTRAS[name]}]` "
            f"(or use backend='torch', which always works)."
        )
    return _DTW_BACKEND_LOADERS[name]()


def get_dtw_backend(name: str) -> DTWBackend:
    """The DTW backend registered as `name` (`"torch"`, `"numba"` or `"triton"`).

    Raises:
        `ValueError` for an unknown name; `ImportError` naming the extra to install when the package is missing.
    """
    return _load_backend(name)[0]


def _auto_backend(device: torch.device, num_tokens: int = 0) -> str:
    if device.type == "cuda" and is_triton_available():
        from .alignment_triton import MAX_TOKENS

        if num_tokens <= MAX_TOKENS:  # one register block holds the token axis
            return "triton"
    if device.type == "cpu" and is_numba_available():
        return "numba"
    return "torch"


def available_backends(device: torch.device | str = "cpu") -> list[str]:
    """Names of the DTW backends usable for tensors on `device` (in `align`'s `backend="auto"` preference order)."""
    device = torch.device(device)
    names = ["torch"]
    if is_numba_available():
        names.insert(0, "numba")
    if device.type == "cuda" and is_triton_available():
        names.insert(0, "triton")
    return names


def _run_dtw(similarity: torch.Tensor, nlen: torch.Tensor, mlen: torch.Tensor, backend: str) -> torch.Tensor:
    if backend != "auto":
        return get_dtw_backend(backend)(similarity, nlen, mlen)
    name = _auto_backend(similarity.device, similarity.shape[2])
    if name == "torch":
        return _dtw_torch(similarity, nlen, mlen)
    errors: KernelErrors = (ImportError,)
    try:
        kernel, kernel_errors = _load_backend(name)
        errors += kernel_errors
        return kernel(similarity, nlen, mlen).to(similarity.device)
    except errors as err:  # the kernel's own failure types only (see KERNEL_ERRORS); a bug elsewhere propagates
        logger.warning_once(
            f"The {name} DTW kernel failed ({type(err).__name__}: {err}); falling back to a slower torch "
            f"implementation of the alignment."
        )
    return _dtw_torch(similarity, nlen, mlen)


# ----------------------------------------------------------------------------------------------------------------------
# the methods: one function each, in a table
# ----------------------------------------------------------------------------------------------------------------------
@dataclass
class _MethodInputs:
    speech: torch.Tensor  # (B, N, D)
    text: torch.Tensor  # (B, M, D)
    similarity: torch.Tensor | None  # (B, N, M) after the corrections; None when the method works without one
    nlen: torch.Tensor  # (B,) real frames, 0 for invalid samples (so every method leaves them at -1)
    mlen: torch.Tensor  # (B,) real tokens, 0 for invalid samples
    backend: str
    window: int


def _method_dtw(x: _MethodInputs) -> torch.Tensor:
    return _run_dtw(x.similarity, x.nlen, x.mlen, x.backend)


def _method_cmot(x: _MethodInputs) -> torch.Tensor:
    run = cmot_align_loop if x.backend == "loop" else cmot_align_vectorised
    return run(x.speech, x.text, x.nlen, x.mlen, window=x.window, similarity=x.similarity)


def _method_nn(x: _MethodInputs) -> torch.Tensor:
    return nn_align(x.similarity, x.nlen, x.mlen)


def _method_uniform(x: _MethodInputs) -> torch.Tensor:
    return uniform_align(x.nlen, x.mlen, x.speech.shape[1])


@dataclass(frozen=True)
class _Method:
    run: Callable[[_MethodInputs], torch.Tensor]
    # "required": computes on the similarity; "optional": on the similarity when one is given or corrected, else on
    # its own cost from the embeddings (CMOT's L2); "unused": reads neither (uniform; the score still uses it)
    similarity: str
    backends: tuple[str, ...]  # accepted `backend` names (nn and uniform accept and ignore every name)
    every_token_a_frame: bool  # infeasible when N_b < M_b


_METHODS: dict[str, _Method] = {
    "dtw": _Method(_method_dtw, "required", ("auto", *DTW_BACKENDS), True),
    "cmot": _Method(_method_cmot, "optional", ("auto", *CMOT_BACKENDS), False),
    "nn": _Method(_method_nn, "required", ALIGNMENT_BACKENDS, False),
    "uniform": _Method(_method_uniform, "unused", ALIGNMENT_BACKENDS, False),
}


# ----------------------------------------------------------------------------------------------------------------------
# the public entry point: check -> dispatch -> package
# ----------------------------------------------------------------------------------------------------------------------
def _check_options(
    method: str, backend: str, normalization: str, diagonal_prior: float, window: int, csls_k: int
) -> _Method:
    """Validate every option before any work; returns the method's table entry (aliases resolved)."""
    name = METHOD_ALIASES.get(method, method)
    if name not in _METHODS:
        raise ValueError(
            f"Unknown alignment method {method!r}; choose one of {ALIGNMENT_METHODS} (or an alias: {METHOD_ALIASES})."
        )
    spec = _METHODS[name]
    if backend not in ALIGNMENT_BACKENDS:
        raise ValueError(f"Unknown alignment backend {backend!r}; choose one of {ALIGNMENT_BACKENDS}.")
    if backend not in spec.backends:
        if name == "cmot":
            raise ValueError(
                f"Unknown backend {backend!r} for method 'cmot'; choose 'auto'/'torch' (vectorised) or 'loop'."
            )
        raise ValueError(f"Unknown DTW backend {backend!r}; choose one of {spec.backends}.")
    if name == "dtw" and backend != "auto":
        _load_backend(backend)  # an ImportError naming the extra, before any work
    if normalization not in SIMILARITY_NORMALIZATIONS:
        raise ValueError(
            f"Unknown similarity normalization {normalization!r}; choose one of {SIMILARITY_NORMALIZATIONS}."
        )
    if normalization == "csls" and (not isinstance(csls_k, int) or isinstance(csls_k, bool) or csls_k < 1):
        raise ValueError(f"`csls_k` must be an integer >= 1 (neighbours per frame / token), got {csls_k!r}.")
    if isinstance(diagonal_prior, bool) or not isinstance(diagonal_prior, Real) or not 0 <= diagonal_prior < math.inf:
        raise ValueError(f"`diagonal_prior` must be a finite number >= 0 (0 = off), got {diagonal_prior!r}.")
    if isinstance(window, bool) or not isinstance(window, int) or window < 0:
        raise ValueError(f"`window` must be an integer >= 0 (CMOT's half-width in tokens), got {window!r}.")
    return spec


def _checked_similarity(similarity, shape: tuple[int, int, int], device: torch.device) -> torch.Tensor:
    if not isinstance(similarity, torch.Tensor) or tuple(similarity.shape) != shape:
        got = tuple(similarity.shape) if isinstance(similarity, torch.Tensor) else type(similarity).__name__
        raise ValueError(f"`similarity` must have shape (B, N, M) = {shape} to match the embeddings, got {got}.")
    return similarity.to(device=device, dtype=torch.float32)


def _raise_invalid(valid: torch.Tensor, nlen: torch.Tensor, mlen: torch.Tensor, spec: _Method) -> None:
    b = int((~valid).nonzero()[0, 0])
    nb, mb = int(nlen[b]), int(mlen[b])
    if nb == 0 or mb == 0:
        why = "is empty; drop empty utterances / transcripts before batching"
    elif spec.every_token_a_frame and nb < mb:
        why = (
            "has fewer speech frames than text tokens, so DTW cannot give every token a frame; drop the sample, "
            "shorten the transcript, reduce the adapter's total stride, or call align(strict=False) to mark it "
            "invalid and skip it"
        )
    else:
        why = "has NaN or inf similarities or embeddings; check the embeddings (fp16 overflow?)"
    raise ValueError(f"align(strict=True): sample {b} ({nb} speech frames, {mb} text tokens) {why}.")


def _input_similarity(
    spec: _Method,
    speech: torch.Tensor,
    text: torch.Tensor,
    similarity: torch.Tensor | None,
    real: torch.Tensor,
    corrected: bool,
) -> torch.Tensor | None:
    """The similarity before corrections, 0 on padding: the one passed in, else the cosine where the method reads it."""
    B, N, M = real.shape
    if similarity is not None:
        return _checked_similarity(similarity, (B, N, M), speech.device).masked_fill(~real, 0.0)
    if spec.similarity == "required" or (spec.similarity == "optional" and corrected):
        return cosine_similarity(speech, text).masked_fill_(~real, 0.0)
    return None


def _valid_samples(
    spec: _Method,
    speech: torch.Tensor,
    text: torch.Tensor,
    raw: torch.Tensor | None,
    nlen: torch.Tensor,
    mlen: torch.Tensor,
    real: torch.Tensor,
) -> torch.Tensor:
    """(B,) bool: not empty, feasible for the method, and finite in what the method reads (the similarity when there
    is one, else the embeddings), padding ignored. The same rule for every method."""
    valid = (nlen > 0) & (mlen > 0)
    if spec.every_token_a_frame:
        valid &= nlen >= mlen
    if raw is not None:
        return valid & finite_per_sample(raw)  # already 0 on padding
    frames_ok = finite_per_sample(speech, real.any(2, keepdim=True))
    return valid & frames_ok & finite_per_sample(text, real.any(1).unsqueeze(-1))


def _corrected(
    raw: torch.Tensor, nlen: torch.Tensor, mlen: torch.Tensor, normalization: str, diagonal_prior: float, csls_k: int
) -> torch.Tensor:
    """`normalize_similarity`, then minus `diagonal_prior * diagonal_penalty`, on the real cells of each sample."""
    work = raw
    if normalization != "none":
        work = normalize_similarity_from_lengths(raw, nlen, mlen, normalization, csls_k=csls_k)
    if diagonal_prior > 0:
        work = work - diagonal_prior * diagonal_penalty_from_lengths(nlen, mlen, raw.shape[1], raw.shape[2])
    return work


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def align(
    speech: torch.Tensor,
    text: torch.Tensor,
    speech_mask: torch.Tensor | None = None,
    text_mask: torch.Tensor | None = None,
    *,
    method: str = "dtw",
    backend: str = "auto",
    strict: bool = False,
    window: int = 10,
    similarity: torch.Tensor | None = None,
    normalization: str = "none",
    diagonal_prior: float = 0.0,
    csls_k: int = 10,
    timed: bool = False,
) -> AlignmentOutput:
    """Assign each speech frame one transcript token.

    With `method="dtw"` (DTW-Align) the assignment follows the best monotonic path through the similarity: frame 0
    takes token 0, the last real frame takes the last real token, and from one frame to the next the token index stays
    or advances by one, so every token gets >= 1 contiguous frames. Ties advance (see the module docstring). No
    gradient flows through the alignment.

    Args:
        speech (`torch.Tensor` of shape `(B, N, D)`):
            Speech embeddings (adapter outputs, one frame per 80 ms with HuBERT + a stride-4 adapter), any float
            dtype (fp16/bf16 are computed in float32), any device.
        text (`torch.Tensor` of shape `(B, M, D)`):
            Transcript token embeddings, same batch size, width and device.
        speech_mask (`torch.Tensor` of shape `(B, N)`, *optional*):
            True / 1 on real frames, right-padded. None means every frame is real.
        text_mask (`torch.Tensor` of shape `(B, M)`, *optional*):
            True / 1 on real tokens, right-padded. None means every token is real.
        method (`str`, *optional*, defaults to `"dtw"`):
            One of `ALIGNMENT_METHODS`: `"dtw"`, `"cmot"` (alias `"ot"`: CMOT's windowed nearest neighbour, L2 cost as
            in its released code), `"nn"` (most similar token, no window) or `"uniform"` (frame n takes token
            floor(n * M_b / N_b)).
        backend (`str`, *optional*, defaults to `"auto"`):
            One of `ALIGNMENT_BACKENDS`. For `"dtw"`: `"auto"`, `"torch"`, `"numba"` or `"triton"`; `"auto"` takes
            Triton for CUDA tensors (up to 4096 tokens) and numba for CPU tensors when installed, else torch, and
            falls back to torch with one warning if the kernel fails with its own error types (RuntimeError, numba's
            `NumbaError`, Triton's compilation / resource errors). For `"cmot"`: `"auto"`/`"torch"` (vectorised) or
            `"loop"` (the released code's per-sample, per-frame Python loops, for timing comparisons). Ignored by
            `"nn"` and `"uniform"`.
        strict (`bool`, *optional*, defaults to `False`):
            Raise a `ValueError` naming the sample and both lengths instead of marking a sample invalid.
        window (`int`, *optional*, defaults to 10):
            CMOT's window half-width in tokens around the length-proportional diagonal (`"cmot"` only).
        similarity (`torch.Tensor` of shape `(B, N, M)`, *optional*):
            A precomputed similarity to use instead of the cosine similarity (higher = more similar). With `"cmot"`
            it replaces the L2 cost by `1 - similarity`.
        normalization (`str`, *optional*, defaults to `"none"`):
            One of `SIMILARITY_NORMALIZATIONS`, a hubness correction of the similarity per sample over its real
            frames and tokens (see `normalize_similarity`): `"token_center"` subtracts each token's mean over the
            frames, `"token_zscore"` divides that by the token's standard deviation too, `"csls"` is CSLS with
            `csls_k` neighbours. Used by `"dtw"`, `"nn"` and `"cmot"` (which then aligns on the cost
            `1 - corrected similarity` instead of L2); `"uniform"` reads no similarity and ignores it.
        diagonal_prior (`float`, *optional*, defaults to 0.0):
            Weight w >= 0 of a soft prior towards the length-proportional diagonal: the methods see
            `S - w * P` with `P[b, n, m] = |(n + 0.5) / N_b - (m + 0.5) / M_b|` (see `diagonal_penalty`), applied
            after `normalization`, so DTW maximises `sum_n S[n, a_n] - w * sum_n P[n, a_n]`. Same methods as
            `normalization`. 0 = off.
        csls_k (`int`, *optional*, defaults to 10):
            Neighbours for `normalization="csls"` (Conneau et al., 2018 use 10).
        timed (`bool`, *optional*, defaults to `False`):
            Measure the wall time into `AlignmentOutput.seconds` (synchronising CUDA before and after). Off, the call
            makes no synchronisation for timing and `seconds` is None.

    Returns:
        [`AlignmentOutput`]: `frame_to_token` (B, N), `score` (B,), `valid` (B,), `token_coverage` (B,),
        `monotonic` (B,) as tensors on the input device, and `seconds`.

    Note: a DTW sample is feasible only if N_b >= M_b (every token needs a frame); samples with fewer frames than
    tokens, empty samples and samples with non-finite inputs come back with `valid=False`, every frame -1 and score
    -inf, whatever the method.
    """
    # ---- check (options, then inputs; nothing is computed before both pass)
    spec = _check_options(method, backend, normalization, diagonal_prior, window, csls_k)
    check_embeddings(speech, text)
    device = speech.device
    if timed:
        _synchronize(device)
    t0 = time.perf_counter() if timed else None
    B, N, _ = speech.shape
    M = text.shape[1]
    nlen, mlen = lengths_from_masks(speech_mask, text_mask, B, N, M, device)
    real = real_cells(nlen, mlen, N, M)
    raw = _input_similarity(spec, speech, text, similarity, real, normalization != "none" or diagonal_prior > 0)
    valid = _valid_samples(spec, speech, text, raw, nlen, mlen, real)
    if strict and not bool(valid.all()):
        _raise_invalid(valid, nlen, mlen, spec)
    run_nlen, run_mlen = torch.where(valid, nlen, 0), torch.where(valid, mlen, 0)  # invalid samples: all -1
    work = raw
    if raw is not None and spec.similarity != "unused":
        work = _corrected(raw, run_nlen, run_mlen, normalization, float(diagonal_prior), csls_k)

    # ---- dispatch
    frame_to_token = spec.run(_MethodInputs(speech, text, work, run_nlen, run_mlen, backend, window)).to(device)

    # ---- package
    if raw is not None:
        score = path_score(raw, frame_to_token, valid)
    else:
        score = path_cosine(speech, text, frame_to_token, valid)
    coverage, monotonic = path_stats(frame_to_token, mlen, M)
    if timed:
        _synchronize(device)
    return AlignmentOutput(
        frame_to_token=frame_to_token,
        score=score,
        valid=valid,
        token_coverage=torch.where(valid, coverage, 0.0),
        monotonic=monotonic & valid,
        seconds=time.perf_counter() - t0 if timed else None,
    )


__all__ = [
    "ALIGNMENT_BACKENDS",
    "ALIGNMENT_METHODS",
    "CMOT_BACKENDS",
    "DTW_BACKENDS",
    "METHOD_ALIASES",
    "SIMILARITY_NORMALIZATIONS",
    "AlignmentOutput",
    "align",
    "available_backends",
    "cosine_similarity",
    "diagonal_penalty",
    "get_dtw_backend",
    "normalize_similarity",
]
