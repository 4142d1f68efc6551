"""Cross-modal mixup of speech and text along an alignment, and the schedules of the mixing ratio lam.

Given `frame_to_token` (B, N) from `dtw_align_hf.alignment.align` (token index per speech frame, -1 on padding):

- token level (DTW-Align's default): unit j is token j; its speech counterpart is the mean of the frames assigned to
  it (its DTW segment). Mixed length = M (transcript length), mask = transcript mask.
- frame level: unit n is frame n; its text counterpart is the embedding of its aligned token. Mixed length = N,
  mask = speech frame mask.

Interpolation: `mixed = lam * text_unit + (1 - lam) * speech_unit` (paper). Discrete: each unit is replaced by its
text counterpart with probability p (CMOT/STEMM). Both are differentiable with respect to speech and text.
"""

from dataclasses import dataclass

import torch


@dataclass
class MixupOutput:
    mixed: torch.Tensor  # (B, U, D) mixed sequence, U = M (token level) or N (frame level)
    attention_mask: torch.Tensor  # (B, U) bool, True on real units
    text_share: torch.Tensor  # (B,) float32: expected share of text in the real units (lam, or replaced share)


def sample_mixup_ratio(
    batch_size: int,
    *,
    schedule: str = "constant",
    ratio: float = 0.5,
    ratio_min: float = 0.0,
    ratio_max: float = 1.0,
    beta_alpha: float = 1.0,
    progress: float = 0.0,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The text weight lam of interpolation mixup, one per sample.

    Args:
        schedule (`str`): `"constant"` -> `ratio`; `"uniform"` -> U(ratio_min, ratio_max) per sample; `"beta"` ->
            ratio_min + (ratio_max - ratio_min) * Beta(beta_alpha, beta_alpha) per sample; `"linear"` -> from
            `ratio_max` at `progress=0` to `ratio_min` at `progress=1`.
        progress (`float`): share of training done, in [0, 1] (only `"linear"` reads it).

    Returns:
        `torch.Tensor` of shape `(batch_size,)`, float32, on `device`.
    """
    if schedule == "constant":
        return torch.full((batch_size,), float(ratio), device=device)
    if schedule == "linear":
        progress = min(max(float(progress), 0.0), 1.0)
        return torch.full((batch_size,), ratio_max + (ratio_min - ratio_max) * progress, device=device)
    if schedule == "uniform":
        unit = torch.rand(batch_size, generator=generator, device="cpu" if generator is None else generator.device)
    elif schedule == "beta":
        # Beta(a, a) via two Gammas so that an optional generator is honoured.
        shape = torch.full((batch_size,), float(beta_alpha))
        unit = torch._standard_gamma(shape, generator=generator)
        unit = unit / (unit + torch._standard_gamma(shape, generator=generator))
    else:
        raise ValueError(f"Unknown mixup ratio schedule {schedule!r}; use constant, uniform, beta or linear.")
    return (ratio_min + (ratio_max - ratio_min) * unit).to(device=device, dtype=torch.float32)


def segment_means(
    speech: torch.Tensor, frame_to_token: torch.Tensor, num_tokens: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of the speech frames assigned to each token.

    Args:
        speech (`torch.Tensor` of shape `(B, N, D)`): speech frames.
        frame_to_token (`torch.Tensor` of shape `(B, N)`): token index per frame, -1 on frames to ignore.
        num_tokens (`int`): M.

    Returns:
        `(means, counts)` of shapes `(B, M, D)` and `(B, M)`; tokens with no frame get a zero mean and count 0.
    """
    b, n, d = speech.shape
    keep = frame_to_token >= 0
    # Route ignored frames to an extra slot M that is dropped afterwards.
    index = torch.where(keep, frame_to_token, torch.full_like(frame_to_token, num_tokens)).clamp(max=num_tokens)
    sums = speech.new_zeros(b, num_tokens + 1, d).scatter_add(1, index.unsqueeze(-1).expand(b, n, d), speech)
    counts = speech.new_zeros(b, num_tokens + 1).scatter_add(1, index, keep.to(speech.dtype))
    sums, counts = sums[:, :num_tokens], counts[:, :num_tokens]
    return sums / counts.clamp(min=1).unsqueeze(-1), counts


def _units(
    speech: torch.Tensor,
    text: torch.Tensor,
    frame_to_token: torch.Tensor,
    speech_mask: torch.Tensor,
    text_mask: torch.Tensor,
    level: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(speech_unit, text_unit, mask, has_partner) for the chosen level."""
    if level == "token":
        means, counts = segment_means(speech, frame_to_token, text.size(1))
        has_partner = (counts > 0) & text_mask
        # A token that received no frame (possible with nn/cmot, never with dtw) keeps its text embedding.
        speech_unit = torch.where(has_partner.unsqueeze(-1), means, text)
        return speech_unit, text, text_mask, has_partner
    if level == "frame":
        has_partner = (frame_to_token >= 0) & speech_mask
        index = frame_to_token.clamp(min=0).unsqueeze(-1).expand(-1, -1, text.size(-1))
        text_unit = torch.where(has_partner.unsqueeze(-1), text.gather(1, index), speech)
        return speech, text_unit, speech_mask, has_partner
    raise ValueError(f"Unknown mixup level {level!r}; use 'token' or 'frame'.")


def mix(
    speech: torch.Tensor,
    text: torch.Tensor,
    frame_to_token: torch.Tensor,
    speech_mask: torch.Tensor,
    text_mask: torch.Tensor,
    *,
    kind: str = "interpolation",
    level: str = "token",
    ratio: torch.Tensor | float = 0.5,
    prob: float = 0.2,
    generator: torch.Generator | None = None,
) -> MixupOutput:
    """Mix speech and text along an alignment.

    Args:
        speech (`torch.Tensor` of shape `(B, N, D)`): speech embeddings (adapter outputs) or ST encoder outputs.
        text (`torch.Tensor` of shape `(B, M, D)`): transcript embeddings or MT encoder outputs.
        frame_to_token (`torch.Tensor` of shape `(B, N)`, long): aligned token per frame, -1 on padding.
        speech_mask (`torch.Tensor` of shape `(B, N)`), text_mask (`(B, M)`): True on real frames / tokens.
        kind (`str`): `"interpolation"` or `"discrete"`.
        level (`str`): `"token"` (mixed length M) or `"frame"` (mixed length N).
        ratio (`float` or `torch.Tensor` of shape `(B,)`): text weight lam of interpolation mixup.
        prob (`float`): replacement probability of discrete mixup.

    Returns:
        [`MixupOutput`].
    """
    speech_mask, text_mask = speech_mask.bool(), text_mask.bool()
    speech_unit, text_unit, mask, has_partner = _units(speech, text, frame_to_token, speech_mask, text_mask, level)
    real = mask.to(torch.float32)
    if kind == "interpolation":
        lam = torch.as_tensor(ratio, dtype=speech.dtype, device=speech.device).reshape(-1, 1, 1)
        lam = lam.expand(speech.size(0), 1, 1)
        mixed = lam * text_unit + (1.0 - lam) * speech_unit
        text_share = lam.reshape(-1).float()
    elif kind == "discrete":
        draw = torch.rand(mask.shape, generator=generator, device="cpu" if generator is None else generator.device)
        replace = (draw.to(mask.device) < prob) & has_partner
        mixed = torch.where(replace.unsqueeze(-1), text_unit, speech_unit)
        text_share = (replace.float() * real).sum(1) / real.sum(1).clamp(min=1)
    else:
        raise ValueError(f"Unknown mixup kind {kind!r}; use 'interpolation' or 'discrete'.")
    mixed = mixed * mask.unsqueeze(-1).to(mixed.dtype)
    return MixupOutput(mixed=mixed, attention_mask=mask, text_share=text_share)


__all__ = ["MixupOutput", "mix", "sample_mixup_ratio", "segment_means"]
