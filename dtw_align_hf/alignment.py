"""Monotonic DTW alignment of speech frames to transcript tokens (DTW-Align, Issam et al., 2025, arXiv 2509.18987).

One public function, `align`, in the shape of whisper's `timing.py`: it checks its inputs, computes the cosine
similarity with one batched matmul and hands the `(B, N, M)` matrix to a backend registered by name:

- `"torch"`: the reference; vectorised over the batch, a Python loop over frames; runs on any device.
- `"numba"`: CPU kernel, parallel over the batch (`alignment_numba.py`, extra `cpu-kernels`).
- `"triton"`: the whole batch in one GPU launch (`alignment_triton.py`, extra `gpu`).

The recurrence (METHOD.md, "DTW alignment"), with S the cosine similarity of frame n and token m:

    D[0, 0] = S[0, 0],   D[0, m > 0] = -inf,   D[n, m] = S[n, m] + max(D[n-1, m], D[n-1, m-1])

and the path runs from (0, 0) to (N_b - 1, M_b - 1) for each sample's own lengths, so every token gets >= 1 frame.

Tie rule (one rule, implemented identically by every backend): **on equal scores the path advances**, i.e. the
predecessor of cell (n, m) is (n-1, m-1) whenever `D[n-1, m-1] >= D[n-1, m]`. Read backwards, a token's segment starts
as late as possible, so on a tie earlier tokens get the longer segments (all-equal similarities give frames
`0 .. N_b - M_b` to token 0 and one frame to every later token). It is `torch.cummax`'s rule (last index of a tie),
and every exact peer we checked (librosa, the MAS Cython packages) picks the same paths on random data. All backends
run the same float32 operations in the same order (a max, then one add), so they agree path for path.

Other methods behind the same interface (`alignment_cmot.py`): `"cmot"` (alias `"ot"`), CMOT's released windowed
nearest neighbour; `"nn"`, each frame's most similar token; `"uniform"`, length-proportional. They may leave tokens
without a frame or go backwards; `AlignmentOutput.token_coverage` and `.monotonic` report it.
"""

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers.utils import logging

from .import_utils import is_numba_available, is_triton_available


logger = logging.get_logger(__name__)

ALIGNMENT_METHODS = ("dtw", "cmot", "nn", "uniform")
_METHOD_ALIASES = {"ot": "cmot"}
DTW_BACKENDS = ("torch", "numba", "triton")
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
            Sum of the cosine similarities along the path (`sum_n S[n, frame_to_token[n]]`, accumulated in float64);
            -inf where the sample is invalid.
        valid (`torch.Tensor` of shape `(B,)`, bool):
            False where the sample is empty, has non-finite similarities, or (method `"dtw"`) has fewer frames than
            tokens (N_b < M_b). Invalid samples should be left out of mixup for that step.
        token_coverage (`torch.Tensor` of shape `(B,)`, float32):
            Share of the sample's tokens that got >= 1 frame (1.0 for every valid DTW sample; 0.0 when invalid).
        monotonic (`torch.Tensor` of shape `(B,)`, bool):
            Whether `frame_to_token` over the sample's real frames is non-decreasing with steps of 0 or 1 (always True
            for a valid DTW sample; False when no frame is assigned).
        seconds (`float`):
            Wall time of the call in seconds (CUDA is synchronised before and after).
    """

    frame_to_token: torch.Tensor
    score: torch.Tensor
    valid: torch.Tensor
    token_coverage: torch.Tensor
    monotonic: torch.Tensor
    seconds: float


# ----------------------------------------------------------------------------------------------------------------------
# input checks and shared helpers
# ----------------------------------------------------------------------------------------------------------------------
def _check_embeddings(speech: torch.Tensor, text: torch.Tensor) -> None:
    for name, x in (("speech", speech), ("text", text)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"`{name}` must be a torch.Tensor of shape (B, length, D), got {type(x).__name__}.")
        if x.dim() != 3:
            raise ValueError(
                f"`{name}` must have shape (B, length, D), got {tuple(x.shape)}; add a batch dimension with "
                f"`{name}.unsqueeze(0)` for a single sample."
            )
        if not x.is_floating_point():
            raise ValueError(f"`{name}` must be a floating-point tensor (embeddings), got dtype {x.dtype}.")
    if speech.shape[0] != text.shape[0]:
        raise ValueError(
            f"`speech` and `text` must have the same batch size, got speech {tuple(speech.shape)} and text "
            f"{tuple(text.shape)}."
        )
    if speech.shape[2] != text.shape[2]:
        raise ValueError(
            f"`speech` and `text` must have the same embedding width D, got speech {tuple(speech.shape)} and text "
            f"{tuple(text.shape)}; project both to the translation model's width first (the adapter does this)."
        )
    if speech.device != text.device:
        raise ValueError(f"`speech` is on {speech.device} but `text` is on {text.device}; move both to one device.")


def _lengths_from_mask(mask: torch.Tensor | None, name: str, batch: int, size: int, device) -> torch.Tensor:
    """Lengths (B,) int64 from a right-padded mask (True / 1 = real), checking shape, values and prefix form."""
    if mask is None:
        return torch.full((batch,), size, dtype=torch.long, device=device)
    if not isinstance(mask, torch.Tensor):
        raise TypeError(
            f"`{name}` must be a torch.Tensor of shape ({batch}, {size}) or None, got {type(mask).__name__}."
        )
    if tuple(mask.shape) != (batch, size):
        raise ValueError(
            f"`{name}` must have shape ({batch}, {size}) to match the embeddings, got {tuple(mask.shape)}."
        )
    mask = mask.to(device)
    if mask.dtype != torch.bool:
        if mask.is_floating_point() or mask.is_complex() or not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(
                f"`{name}` must be bool or integer 0/1 (True / 1 = real position), got dtype {mask.dtype}."
            )
        mask = mask.bool()
    lengths = mask.sum(1)
    prefix = torch.arange(size, device=device).unsqueeze(0) < lengths.unsqueeze(1)
    bad = (prefix != mask).any(1)
    if bool(bad.any()):
        b = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"`{name}` must mark real positions as a prefix (right padding), but sample {b} has padding before real "
            f"positions: {mask[b].int().tolist()[:32]}{' ...' if size > 32 else ''}. Pad on the right (the collator "
            f"does), or flip left-padded batches before calling `align`."
        )
    return lengths.long()


def _autocast_disabled(device: torch.device):
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except (RuntimeError, ValueError):  # a device type without autocast support
        return contextlib.nullcontext()


def cosine_similarity(
    speech: torch.Tensor,
    text: torch.Tensor,
    speech_mask: torch.Tensor | None = None,
    text_mask: torch.Tensor | None = None,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Cosine similarity of every speech frame with every text token, one batched matmul, in float32.

    Only the text side is normalised before the matmul; the result rows are scaled by `1 / max(||f_n||, eps)`, so the
    (large) speech tensor is never rewritten. Zero vectors give a similarity of 0, never NaN.

    Args:
        speech (`torch.Tensor` of shape `(B, N, D)`): speech embeddings, any float dtype, any device.
        text (`torch.Tensor` of shape `(B, M, D)`): text embeddings, same batch, width and device.
        speech_mask (`torch.Tensor` of shape `(B, N)`, *optional*): True / 1 on real frames (right padding).
        text_mask (`torch.Tensor` of shape `(B, M)`, *optional*): True / 1 on real tokens (right padding).
        eps (`float`): lower bound on the vector norms.

    Returns:
        `torch.Tensor` of shape `(B, N, M)`, float32, on the input device; 0 where the frame or the token is padding.
    """
    _check_embeddings(speech, text)
    B, N, _ = speech.shape
    M = text.shape[1]
    f = speech.float()
    e = torch.nn.functional.normalize(text.float(), dim=-1, eps=eps)
    with _autocast_disabled(speech.device):  # under mixed precision, autocast would run the bmm in fp16/bf16
        sim = torch.bmm(f, e.transpose(1, 2))
    inv = torch.linalg.vector_norm(f, dim=-1).clamp_min_(eps).reciprocal_()
    sim.mul_(inv.unsqueeze(-1))
    if speech_mask is not None:
        nlen = _lengths_from_mask(speech_mask, "speech_mask", B, N, speech.device)
        sim.masked_fill_((torch.arange(N, device=sim.device) >= nlen.unsqueeze(1)).unsqueeze(-1), 0.0)
    if text_mask is not None:
        mlen = _lengths_from_mask(text_mask, "text_mask", B, M, speech.device)
        sim.masked_fill_((torch.arange(M, device=sim.device) >= mlen.unsqueeze(1)).unsqueeze(1), 0.0)
    return sim


def _path_stats(
    frame_to_token: torch.Tensor, nlen: torch.Tensor, mlen: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token coverage (B,) float32 and monotonicity (B,) bool of a frame->token map (shared by every method)."""
    B = frame_to_token.shape[0]
    M = int(mlen.max()) if B else 0
    hit = torch.zeros((B, M + 1), dtype=torch.bool, device=frame_to_token.device)
    hit.scatter_(1, torch.where(frame_to_token >= 0, frame_to_token.clamp_max(M), M), True)
    in_range = torch.arange(M, device=hit.device).unsqueeze(0) < mlen.unsqueeze(1)
    covered = (hit[:, :M] & in_range).sum(1)
    coverage = torch.where(mlen > 0, covered.float() / mlen.clamp_min(1).float(), 0.0)
    assigned = frame_to_token >= 0
    step = frame_to_token[:, 1:] - frame_to_token[:, :-1]
    both = assigned[:, 1:] & assigned[:, :-1]
    monotonic = (((step == 0) | (step == 1)) | ~both).all(1) & assigned.any(1)
    return coverage.float(), monotonic


def _path_score(similarity: torch.Tensor, frame_to_token: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """sum_n S[b, n, frame_to_token[b, n]] over assigned frames, accumulated in float64; -inf where invalid."""
    if similarity.shape[1] == 0 or similarity.shape[2] == 0:
        return torch.full(valid.shape, float("-inf"), dtype=torch.float32, device=similarity.device)
    picked = similarity.gather(2, frame_to_token.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    score = torch.where(frame_to_token >= 0, picked, 0.0).sum(1, dtype=torch.float64).float()
    return torch.where(valid, score, float("-inf"))


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
def _load_numba() -> DTWBackend:
    from .alignment_numba import dtw_numba

    return dtw_numba


def _load_triton() -> DTWBackend:
    from .alignment_triton import dtw_triton

    return dtw_triton


_DTW_BACKEND_LOADERS: dict[str, Callable[[], DTWBackend]] = {
    "torch": lambda: _dtw_torch,
    "numba": _load_numba,
    "triton": _load_triton,
}
_BACKEND_AVAILABLE: dict[str, Callable[[], bool]] = {
    "torch": lambda: True,
    "numba": is_numba_available,
    "triton": is_triton_available,
}


def get_dtw_backend(name: str) -> DTWBackend:
    """The DTW backend registered as `name` (`"torch"`, `"numba"` or `"triton"`).

    Raises:
        `ValueError` for an unknown name; `ImportError` naming the extra to install when the package is missing.
    """
    if name not in _DTW_BACKEND_LOADERS:
        raise ValueError(f"Unknown DTW backend {name!r}; choose one of {('auto',) + DTW_BACKENDS}.")
    if not _BACKEND_AVAILABLE[name]():
        raise ImportError(
            f"The {name!r} alignment backend needs the `{name}` package: `pip install dtw-align-hf[{_EXTRAS[name]}]` "
            f"(or use backend='torch', which always works)."
        )
    return _DTW_BACKEND_LOADERS[name]()


def _auto_backend(device: torch.device) -> str:
    if device.type == "cuda" and is_triton_available():
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
    name = _auto_backend(similarity.device)
    if name != "torch":
        try:
            return get_dtw_backend(name)(similarity, nlen, mlen)
        except Exception as err:  # noqa: BLE001 - any kernel failure under "auto" falls back to the reference
            logger.warning_once(
                f"The {name} DTW kernel failed ({type(err).__name__}: {err}); falling back to a slower torch "
                f"implementation of the alignment."
            )
    return _dtw_torch(similarity, nlen, mlen)


# ----------------------------------------------------------------------------------------------------------------------
# the public entry point
# ----------------------------------------------------------------------------------------------------------------------
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
) -> AlignmentOutput:
    """Assign each speech frame one transcript token.

    With `method="dtw"` (DTW-Align) the assignment follows the best monotonic path through the cosine similarity:
    frame 0 takes token 0, the last real frame takes the last real token, and from one frame to the next the token
    index stays or advances by one, so every token gets >= 1 contiguous frames. Ties advance (see the module
    docstring). No gradient flows through the alignment.

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
            `"dtw"`, `"cmot"` (alias `"ot"`: CMOT's windowed nearest neighbour, L2 cost as in its released code),
            `"nn"` (most similar token, no window) or `"uniform"` (frame n takes token floor(n * M_b / N_b)).
        backend (`str`, *optional*, defaults to `"auto"`):
            For `"dtw"`: `"auto"`, `"torch"`, `"numba"` or `"triton"`. `"auto"` takes Triton for CUDA tensors and numba
            for CPU tensors when installed, else torch, and falls back to torch (with one warning) if a kernel fails.
            For `"cmot"`: `"auto"`/`"torch"` (vectorised) or `"loop"` (the released code's per-sample, per-frame
            Python loops, for timing comparisons). Ignored by `"nn"` and `"uniform"`.
        strict (`bool`, *optional*, defaults to `False`):
            Raise a `ValueError` naming the sample and both lengths instead of marking a sample invalid.
        window (`int`, *optional*, defaults to 10):
            CMOT's window half-width in tokens around the length-proportional diagonal (`"cmot"` only).
        similarity (`torch.Tensor` of shape `(B, N, M)`, *optional*):
            A precomputed similarity to use instead of the cosine similarity (higher = more similar). With `"cmot"`
            it replaces the L2 cost by `-similarity`.

    Returns:
        [`AlignmentOutput`]: `frame_to_token` (B, N), `score` (B,), `valid` (B,), `token_coverage` (B,),
        `monotonic` (B,) and `seconds`, all tensors on the input device.

    Note: a DTW sample is feasible only if N_b >= M_b (every token needs a frame); samples with fewer frames than
    tokens, and empty samples, come back with `valid=False`, every frame -1 and score -inf.
    """
    _check_embeddings(speech, text)
    method = _METHOD_ALIASES.get(method, method)
    if method not in ALIGNMENT_METHODS:
        raise ValueError(f"Unknown alignment method {method!r}; choose one of {ALIGNMENT_METHODS} (or 'ot' = 'cmot').")
    device = speech.device
    _synchronize(device)
    t0 = time.perf_counter()
    B, N, _ = speech.shape
    M = text.shape[1]
    nlen = _lengths_from_mask(speech_mask, "speech_mask", B, N, device)
    mlen = _lengths_from_mask(text_mask, "text_mask", B, M, device)
    if similarity is not None:
        if not isinstance(similarity, torch.Tensor) or tuple(similarity.shape) != (B, N, M):
            shape = tuple(similarity.shape) if isinstance(similarity, torch.Tensor) else type(similarity).__name__
            raise ValueError(
                f"`similarity` must have shape (B, N, M) = {(B, N, M)} to match the embeddings, got {shape}."
            )
        similarity = similarity.to(device=device, dtype=torch.float32).contiguous()
        real = (torch.arange(N, device=device)[:, None] < nlen[:, None, None]) & (
            torch.arange(M, device=device)[None, :] < mlen[:, None, None]
        )
        similarity = similarity.masked_fill(~real, 0.0)

    valid = (nlen > 0) & (mlen > 0)
    if method == "dtw":
        valid &= nlen >= mlen
    sim = similarity
    if sim is None and method in ("dtw", "nn"):
        sim = cosine_similarity(speech, text, speech_mask, text_mask)
    if sim is not None:
        # a float64 sum propagates NaN / inf and cannot overflow from float32 values: 10x cheaper than isfinite().all()
        finite = torch.isfinite(sim.sum((1, 2), dtype=torch.float64))
        if not bool(finite.all()):
            logger.warning_once("Non-finite speech/text similarities; those samples are marked invalid in `align`.")
        valid &= finite
    if strict and not bool(valid.all()):
        b = int((~valid).nonzero()[0, 0])
        nb, mb = int(nlen[b]), int(mlen[b])
        if nb == 0 or mb == 0:
            why = "is empty; drop empty utterances / transcripts before batching"
        elif method == "dtw" and nb < mb:
            why = (
                "has fewer speech frames than text tokens, so DTW cannot give every token a frame; drop the "
                "sample, shorten the transcript, reduce the adapter's total stride, or call align(strict=False) to "
                "mark it invalid and skip it"
            )
        else:
            why = "has NaN or inf similarities; check the embeddings (fp16 overflow?)"
        raise ValueError(f"align(strict=True): sample {b} ({nb} speech frames, {mb} text tokens) {why}.")

    if method == "dtw":
        run_nlen = torch.where(valid, nlen, 0)
        run_mlen = torch.where(valid, mlen, 0)
        frame_to_token = _run_dtw(sim, run_nlen, run_mlen, backend).to(device)
    else:
        from .alignment_cmot import align_baseline

        frame_to_token = align_baseline(
            speech, text, nlen, mlen, method=method, backend=backend, window=window, similarity=sim
        )
        frame_to_token = torch.where(valid.unsqueeze(1), frame_to_token, -1)

    if sim is None:  # cmot with L2 cost and uniform: the score needs only the cosine along the path
        from .alignment_cmot import path_cosine

        score = path_cosine(speech, text, frame_to_token, valid)
    else:
        score = _path_score(sim, frame_to_token, valid)
    coverage, monotonic = _path_stats(frame_to_token, nlen, mlen)
    coverage = torch.where(valid, coverage, 0.0)
    monotonic &= valid
    _synchronize(device)
    return AlignmentOutput(
        frame_to_token=frame_to_token,
        score=score,
        valid=valid,
        token_coverage=coverage,
        monotonic=monotonic,
        seconds=time.perf_counter() - t0,
    )


__all__ = [
    "ALIGNMENT_METHODS",
    "DTW_BACKENDS",
    "AlignmentOutput",
    "align",
    "available_backends",
    "cosine_similarity",
    "get_dtw_backend",
]
