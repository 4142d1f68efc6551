"""Shared pieces of the alignment methods: input checks, masks, the cosine similarity and its corrections.

`alignment.py` (the `align` dispatcher and the DTW backends) and `alignment_cmot.py` (the baselines) both import from
here, so neither imports the other's helpers and there is no import cycle. A flat sibling of the model files: a
`trust_remote_code` checkpoint ships it with them.

Similarity corrections, all per sample and computed over the sample's real frames and tokens only (padding never
enters a statistic), applied by `align(normalization=..., diagonal_prior=...)` before any method runs:

- `normalize_similarity`: hubness corrections of the (B, N, M) similarity S, for a token that is similar to every frame
  (a horizontal stripe in the similarity plot) and would otherwise absorb a long stretch of frames:
  `"token_center"` subtracts each token's mean over the frames, `"token_zscore"` also divides by its standard
  deviation, `"csls"` is the cross-domain similarity local scaling of Conneau et al., 2018 ("Word Translation Without
  Parallel Data", arXiv 1710.04087) with k nearest neighbours.
- `diagonal_penalty`: the distance of every cell from the length-proportional diagonal, which
  `align(diagonal_prior=w)` subtracts, times w, from the similarity.
"""

import contextlib

import torch


SIMILARITY_NORMALIZATIONS = ("none", "token_center", "token_zscore", "csls")


# ----------------------------------------------------------------------------------------------------------------------
# input checks and masks
# ----------------------------------------------------------------------------------------------------------------------
def check_embeddings(speech: torch.Tensor, text: torch.Tensor) -> None:
    """Raise a `TypeError` / `ValueError` that says what to change unless speech (B, N, D) and text (B, M, D) match."""
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


def _checked_mask(mask: torch.Tensor | None, name: str, batch: int, size: int, device) -> torch.Tensor | None:
    """The mask on `device` after the type, shape and dtype checks (no host-device synchronisation)."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        raise TypeError(
            f"`{name}` must be a torch.Tensor of shape ({batch}, {size}) or None, got {type(mask).__name__}."
        )
    if tuple(mask.shape) != (batch, size):
        raise ValueError(
            f"`{name}` must have shape ({batch}, {size}) to match the embeddings, got {tuple(mask.shape)}."
        )
    if mask.is_floating_point() or mask.is_complex():
        raise ValueError(f"`{name}` must be bool or integer 0/1 (True / 1 = real position), got dtype {mask.dtype}.")
    return mask.to(device)


def lengths_from_masks(
    speech_mask: torch.Tensor | None,
    text_mask: torch.Tensor | None,
    batch: int,
    num_frames: int,
    num_tokens: int,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Real frames and tokens per sample, `(nlen, mlen)`, each (B,) int64 on `device`, from right-padded masks.

    Checks shape, values (bool or integer 0/1) and prefix form of both masks with one host-device synchronisation in
    all (none when both masks are None), and raises a `ValueError` that names the mask and the sample.
    """
    masks = {
        "speech_mask": (_checked_mask(speech_mask, "speech_mask", batch, num_frames, device), num_frames),
        "text_mask": (_checked_mask(text_mask, "text_mask", batch, num_tokens, device), num_tokens),
    }
    lengths, flags = {}, []
    for name, (mask, size) in masks.items():
        if mask is None:
            lengths[name] = torch.full((batch,), size, dtype=torch.long, device=device)
            continue
        not_binary = (
            ((mask != 0) & (mask != 1)).any() if mask.dtype != torch.bool else mask.new_zeros((), dtype=torch.bool)
        )
        n = (mask != 0).sum(1)
        prefix = torch.arange(size, device=device).unsqueeze(0) < n.unsqueeze(1)
        lengths[name] = n.long()
        flags += [not_binary, (prefix != (mask != 0)).any()]
    if flags and bool(torch.stack(flags).any()):  # the one synchronisation, for the error message
        for name, (mask, size) in masks.items():
            if mask is None:
                continue
            if mask.dtype != torch.bool and bool(((mask != 0) & (mask != 1)).any()):
                raise ValueError(
                    f"`{name}` must be bool or integer 0/1 (True / 1 = real position), got values other than 0 and 1."
                )
            prefix = torch.arange(size, device=device).unsqueeze(0) < lengths[name].unsqueeze(1)
            bad = (prefix != (mask != 0)).any(1)
            if bool(bad.any()):
                b = int(bad.nonzero()[0, 0])
                raise ValueError(
                    f"`{name}` must mark real positions as a prefix (right padding), but sample {b} has padding "
                    f"before real positions: {mask[b].int().tolist()[:32]}{' ...' if size > 32 else ''}. Pad on the "
                    f"right (the collator does), or flip left-padded batches before calling `align`."
                )
    return lengths["speech_mask"], lengths["text_mask"]


def real_cells(nlen: torch.Tensor, mlen: torch.Tensor, num_frames: int, num_tokens: int) -> torch.Tensor:
    """(B, N, M) bool: True where both frame n and token m are real."""
    device = nlen.device
    frame_real = torch.arange(num_frames, device=device).unsqueeze(0) < nlen.unsqueeze(1)
    token_real = torch.arange(num_tokens, device=device).unsqueeze(0) < mlen.unsqueeze(1)
    return frame_real.unsqueeze(-1) & token_real.unsqueeze(1)


def _autocast_disabled(device: torch.device):
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except (RuntimeError, ValueError):  # a device type without autocast support
        return contextlib.nullcontext()


# ----------------------------------------------------------------------------------------------------------------------
# the similarity and its corrections
# ----------------------------------------------------------------------------------------------------------------------
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
    check_embeddings(speech, text)
    B, N, _ = speech.shape
    M = text.shape[1]
    f = speech.float()
    e = torch.nn.functional.normalize(text.float(), dim=-1, eps=eps)
    with _autocast_disabled(speech.device):  # under mixed precision, autocast would run the bmm in fp16/bf16
        sim = torch.bmm(f, e.transpose(1, 2))
    inv = torch.linalg.vector_norm(f, dim=-1).clamp_min_(eps).reciprocal_()
    sim.mul_(inv.unsqueeze(-1))
    if speech_mask is not None or text_mask is not None:
        nlen, mlen = lengths_from_masks(speech_mask, text_mask, B, N, M, speech.device)
        sim.masked_fill_(~real_cells(nlen, mlen, N, M), 0.0)
    return sim


def _topk_mean(x: torch.Tensor, count: torch.Tensor, k: int) -> torch.Tensor:
    """Mean of the `min(k, count_b)` largest entries along the last axis of x (B, R, L), padding set to -inf."""
    kk = min(k, x.shape[-1])
    if kk == 0:
        return x.new_zeros(x.shape[:-1])
    top = x.topk(kk, dim=-1).values  # sorted, so the first min(k, count_b) entries are real
    take = torch.arange(kk, device=x.device) < count.clamp_max(k).view(-1, 1, 1)
    total = torch.where(take, top, 0.0).sum(-1, dtype=torch.float64)
    return (total / count.clamp(1, k).view(-1, 1).double()).float()


def normalize_similarity_from_lengths(
    similarity: torch.Tensor,
    nlen: torch.Tensor,
    mlen: torch.Tensor,
    normalization: str,
    *,
    csls_k: int = 10,
    eps: float = 1e-6,
) -> torch.Tensor:
    """`normalize_similarity` with the real lengths (B,) instead of masks (for callers that already have them)."""
    if normalization not in SIMILARITY_NORMALIZATIONS:
        raise ValueError(
            f"Unknown similarity normalization {normalization!r}; choose one of {SIMILARITY_NORMALIZATIONS}."
        )
    N, M = similarity.shape[1:]
    S = similarity.float()
    real = real_cells(nlen, mlen, N, M)
    if normalization == "none" or S.numel() == 0:
        return S.masked_fill(~real, 0.0)
    n_frames = nlen.clamp_min(1).view(-1, 1).double()
    if normalization in ("token_center", "token_zscore"):
        # float64 sums: the statistic of a sample does not depend on how much padding its batch has
        S0 = S.masked_fill(~real, 0.0)
        mean = S0.sum(1, dtype=torch.float64) / n_frames  # (B, M): each token's mean over the real frames
        out = S0 - mean.float().unsqueeze(1)
        if normalization == "token_zscore":
            var = (S0.double() - mean.unsqueeze(1)).masked_fill(~real, 0.0).square().sum(1) / n_frames
            out = out / var.sqrt().float().clamp_min(eps).unsqueeze(1)
    else:  # csls: 2 S - r_frame[n] - r_token[m], each r the mean similarity of the k nearest neighbours
        if not isinstance(csls_k, int) or isinstance(csls_k, bool) or csls_k < 1:
            raise ValueError(f"`csls_k` must be an integer >= 1 (neighbours per frame / token), got {csls_k!r}.")
        neg = S.masked_fill(~real, float("-inf"))
        r_frame = _topk_mean(neg, mlen, csls_k)  # (B, N): over each frame's real tokens
        r_token = _topk_mean(neg.transpose(1, 2), nlen, csls_k)  # (B, M): over each token's real frames
        out = 2.0 * S - r_frame.unsqueeze(-1) - r_token.unsqueeze(1)
    return out.masked_fill(~real, 0.0)


def normalize_similarity(
    similarity: torch.Tensor,
    speech_mask: torch.Tensor | None = None,
    text_mask: torch.Tensor | None = None,
    *,
    normalization: str = "token_center",
    csls_k: int = 10,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Correct a frame x token similarity for hub tokens, per sample, over its real frames and tokens only.

    With S the similarity of sample b, n < N_b its real frames and m < M_b its real tokens:

    - `"none"`: S unchanged (padding set to 0).
    - `"token_center"`: `S[n, m] - mean_n' S[n', m]`, each token's mean over the sample's real frames removed.
    - `"token_zscore"`: `(S[n, m] - mean_n' S[n', m]) / max(std_n' S[n', m], eps)` (population standard deviation).
    - `"csls"`: `2 S[n, m] - r_F(n) - r_T(m)` (Conneau et al., 2018, arXiv 1710.04087), where `r_T(m)` is the
      mean similarity of token m to its `min(k, N_b)` most similar real frames and `r_F(n)` that of frame n to its
      `min(k, M_b)` most similar real tokens. `r_F(n)` is the same for every token of a frame, so it changes no
      path of `"dtw"`, `"nn"` or `"cmot"` (each frame takes exactly one token), only the score scale.

    Args:
        similarity (`torch.Tensor` of shape `(B, N, M)`): higher = more similar (e.g. `cosine_similarity`).
        speech_mask (`torch.Tensor` of shape `(B, N)`, *optional*): True / 1 on real frames (right padding).
        text_mask (`torch.Tensor` of shape `(B, M)`, *optional*): True / 1 on real tokens (right padding).
        normalization (`str`): one of `SIMILARITY_NORMALIZATIONS`.
        csls_k (`int`, *optional*, defaults to 10): neighbours for `"csls"` (the paper's value).
        eps (`float`): lower bound on the standard deviation for `"token_zscore"`.

    Returns:
        `torch.Tensor` of shape `(B, N, M)`, float32, 0 on padded cells. Statistics are accumulated in float64, so a
        sample gives the same values alone and inside a padded batch.
    """
    if not isinstance(similarity, torch.Tensor) or similarity.dim() != 3:
        shape = tuple(similarity.shape) if isinstance(similarity, torch.Tensor) else type(similarity).__name__
        raise ValueError(f"`similarity` must be a tensor of shape (B, N, M), got {shape}.")
    B, N, M = similarity.shape
    nlen, mlen = lengths_from_masks(speech_mask, text_mask, B, N, M, similarity.device)
    return normalize_similarity_from_lengths(similarity, nlen, mlen, normalization, csls_k=csls_k, eps=eps)


def diagonal_penalty_from_lengths(
    nlen: torch.Tensor, mlen: torch.Tensor, num_frames: int, num_tokens: int
) -> torch.Tensor:
    """`diagonal_penalty` from the real lengths (B,) and the padded sizes N, M."""
    device = nlen.device
    n = torch.arange(num_frames, device=device, dtype=torch.float32).add_(0.5)
    m = torch.arange(num_tokens, device=device, dtype=torch.float32).add_(0.5)
    frame_pos = n.unsqueeze(0) / nlen.clamp_min(1).float().unsqueeze(1)  # (B, N)
    token_pos = m.unsqueeze(0) / mlen.clamp_min(1).float().unsqueeze(1)  # (B, M)
    dist = (frame_pos.unsqueeze(-1) - token_pos.unsqueeze(1)).abs_()
    return dist.masked_fill_(~real_cells(nlen, mlen, num_frames, num_tokens), 0.0)


def diagonal_penalty(speech_mask: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
    """Distance of every cell from the sample's length-proportional diagonal, in units of the utterance length.

    For sample b with N_b real frames and M_b real tokens, `P[b, n, m] = |(n + 0.5) / N_b - (m + 0.5) / M_b|`: the
    relative position of frame n's centre minus that of token m's centre, in [0, 1). It is 0 on the diagonal and on
    padded cells. `align(diagonal_prior=w)` maximises `S - w * P` summed along the path, i.e. pays `w` per frame for
    being one whole utterance away from the diagonal; the uniform split (`method="uniform"`) keeps every frame within
    half a token of it.

    Args:
        speech_mask (`torch.Tensor` of shape `(B, N)`): True / 1 on real frames (right padding).
        text_mask (`torch.Tensor` of shape `(B, M)`): True / 1 on real tokens (right padding).

    Returns:
        `torch.Tensor` of shape `(B, N, M)`, float32, on the masks' device.
    """
    for name, mask in (("speech_mask", speech_mask), ("text_mask", text_mask)):
        if not isinstance(mask, torch.Tensor) or mask.dim() != 2:
            shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"`{name}` must be a tensor of shape (B, length), got {shape}.")
    B, N = speech_mask.shape
    M = text_mask.shape[1]
    nlen, mlen = lengths_from_masks(speech_mask, text_mask, B, N, M, speech_mask.device)
    return diagonal_penalty_from_lengths(nlen, mlen, N, M)


# ----------------------------------------------------------------------------------------------------------------------
# statistics of a result (shared by every method)
# ----------------------------------------------------------------------------------------------------------------------
def path_stats(frame_to_token: torch.Tensor, mlen: torch.Tensor, num_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token coverage (B,) float32 and monotonicity (B,) bool of a frame->token map (no host synchronisation)."""
    B = frame_to_token.shape[0]
    M = num_tokens
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


def path_score(similarity: torch.Tensor, frame_to_token: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """sum_n S[b, n, frame_to_token[b, n]] over assigned frames, accumulated in float64; -inf where invalid."""
    if similarity.shape[1] == 0 or similarity.shape[2] == 0:
        return torch.full(valid.shape, float("-inf"), dtype=torch.float32, device=similarity.device)
    picked = similarity.gather(2, frame_to_token.clamp_min(0).unsqueeze(-1)).squeeze(-1)
    score = torch.where(frame_to_token >= 0, picked, 0.0).sum(1, dtype=torch.float64).float()
    return torch.where(valid, score, float("-inf"))


def path_cosine(
    speech: torch.Tensor, text: torch.Tensor, frame_to_token: torch.Tensor, valid: torch.Tensor, eps: float = 1e-8
) -> torch.Tensor:
    """sum_n cos(f_n, e_{a[n]}) over assigned frames (float64 accumulation, float32 result; -inf where invalid).

    Costs B x N x D (a gather), not the B x N x M x D of a full similarity.
    """
    B, N, D = speech.shape
    if B == 0 or N == 0 or text.shape[1] == 0:
        return torch.full((B,), float("-inf"), dtype=torch.float32, device=speech.device)
    e = torch.nn.functional.normalize(text.float(), dim=-1, eps=eps)
    picked = e.gather(1, frame_to_token.clamp_min(0).unsqueeze(-1).expand(B, N, D))
    f = speech.float()
    cos = (f * picked).sum(-1) / torch.linalg.vector_norm(f, dim=-1).clamp_min(eps)
    score = torch.where(frame_to_token >= 0, cos, 0.0).sum(1, dtype=torch.float64).float()
    return torch.where(valid, score, float("-inf"))


def finite_per_sample(x: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
    """(B,) bool: whether every real entry of sample b is finite (no host synchronisation).

    `real` (broadcastable to x) marks the entries to check; None checks all (for a tensor already 0 on padding). A
    float64 sum propagates NaN / inf and cannot overflow from float32 values: cheaper than `isfinite().all()`.
    """
    if x.shape[0] == 0:
        return torch.ones(0, dtype=torch.bool, device=x.device)
    if real is not None:
        x = torch.where(real, x, 0.0)
    return torch.isfinite(x.flatten(1).sum(1, dtype=torch.float64))


__all__ = [
    "SIMILARITY_NORMALIZATIONS",
    "cosine_similarity",
    "diagonal_penalty",
    "normalize_similarity",
]
