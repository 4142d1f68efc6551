"""Loss terms of DTW-Align training: label-smoothed cross-entropy, symmetric KL, the auxiliary CTC, the weighted total.

Every token loss is a *sum* over target tokens divided by a denominator the caller passes (`num_items_in_batch`
from the Trainer when given, else the number of target tokens in the batch), as fairseq divides by `sample_size`.
That keeps gradient accumulation and multi-process training equal to one large batch.
"""

import torch
import torch.nn.functional as F


IGNORE_INDEX = -100


def shift_labels_right(labels: torch.Tensor, decoder_start_token_id: int, pad_token_id: int) -> torch.Tensor:
    """Teacher-forcing decoder inputs `(B, L)`: `labels` shifted right behind `decoder_start_token_id`, -100 -> pad.

    The one implementation behind `DTWAlignForSpeechTranslation.prepare_decoder_input_ids_from_labels` (stage 2) and
    `DataCollatorTextTranslation` (stage 1).
    """
    shifted = labels.new_zeros(labels.shape)
    shifted[:, 1:] = labels[:, :-1].clone()
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == IGNORE_INDEX, pad_token_id)


def label_smoothed_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, epsilon: float = 0.1, ignore_index: int = IGNORE_INDEX
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fairseq's label-smoothed cross-entropy, summed over the non-ignored target tokens.

    `loss = (1 - eps - eps / (V - 1)) * nll + eps / (V - 1) * sum_v(-log p_v)`: the target keeps probability `1 - eps`
    and every other class gets `eps / (V - 1)` (fairseq `label_smoothed_nll_loss`, the criterion CMOT uses).
    `torch.nn.functional.cross_entropy(label_smoothing=eps)` spreads `eps / V` over all classes instead.

    Args:
        logits (`torch.Tensor` of shape `(B, L, V)`): decoder logits, any float dtype (computed in float32).
        labels (`torch.Tensor` of shape `(B, L)`): target token ids, `ignore_index` on padding.
        epsilon (`float`): smoothing mass.

    Returns:
        `(loss, nll)`: two scalar float32 tensors, sums over the target tokens (not averaged).
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} disagree on (B, L).")
    vocab = logits.size(-1)
    lprobs = F.log_softmax(logits.float(), dim=-1)
    mask = labels != ignore_index
    target = labels.masked_fill(~mask, 0).unsqueeze(-1)
    nll = -lprobs.gather(-1, target).squeeze(-1)
    nll = (nll * mask).sum()
    if epsilon == 0.0:
        return nll, nll.detach()
    smooth = -(lprobs.sum(-1) * mask).sum()
    eps_i = epsilon / (vocab - 1)
    loss = (1.0 - epsilon - eps_i) * nll + eps_i * smooth
    return loss, nll.detach()


def symmetric_kl(logits_p: torch.Tensor, logits_q: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """`0.5 * [KL(P || Q) + KL(Q || P)]` per target position, summed over the vocabulary and the masked positions.

    CMOT's `kl_s`/`kl_t` (no stop-gradient on either side). CMOT also sums over padded target positions; we sum over
    real target tokens only (`mask`), so the term does not depend on how much padding a batch has.

    Args:
        logits_p, logits_q (`torch.Tensor` of shape `(B, L, V)`): two decoder outputs for the same targets.
        mask (`torch.Tensor` of shape `(B, L)`, *optional*): `True` on positions to count.

    Returns:
        A scalar float32 tensor (a sum, not an average).
    """
    lp = F.log_softmax(logits_p.float(), dim=-1)
    lq = F.log_softmax(logits_q.float(), dim=-1)
    kl = 0.5 * ((lp.exp() * (lp - lq)).sum(-1) + (lq.exp() * (lq - lp)).sum(-1))
    if mask is not None:
        kl = kl * mask.to(kl.dtype)
    return kl.sum()


def ctc_targets(
    input_ids: torch.Tensor, text_mask: torch.Tensor, exclude_ids: tuple[int | None, ...] = ()
) -> tuple[torch.Tensor, torch.Tensor]:
    """CTC targets from transcript ids: the real tokens minus `exclude_ids` (BOS / EOS / pad), moved to the front.

    Args:
        input_ids (`torch.Tensor` of shape `(B, M)`): transcript ids.
        text_mask (`torch.Tensor` of shape `(B, M)`): `True` on real tokens.
        exclude_ids: token ids never used as targets (`None` entries are ignored).

    Returns:
        `(targets, lengths)`: `(B, M)` ids with each sample's kept tokens first, in order (the rest is filler that
        `F.ctc_loss` does not read), and `(B,)` kept-token counts.
    """
    keep = text_mask.bool()
    for token_id in exclude_ids:
        if token_id is not None:
            keep = keep & input_ids.ne(token_id)
    # a stable sort on "dropped" keeps the order of the kept tokens and moves them to the front
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
    return input_ids.gather(1, order), keep.sum(-1)


def ctc_loss_sum(
    logits: torch.Tensor, frame_lengths: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """CTC negative log-likelihood summed over the batch; the blank is the last class.

    Args:
        logits (`torch.Tensor` of shape `(B, N, C)`): frame logits, blank at index `C - 1` (computed in float32).
        frame_lengths (`torch.Tensor` of shape `(B,)`): real frames per sample.
        targets (`torch.Tensor` of shape `(B, S)`), target_lengths (`(B,)`): from [`ctc_targets`].

    Returns:
        `(loss, feasible)`: a scalar float32 sum (not averaged) and a `(B,)` bool mask of the samples that have enough
        frames for their targets (`frames >= tokens + adjacent repeats`). Infeasible samples contribute 0
        (`zero_infinity=True`) instead of an infinite loss.
    """
    lprobs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # (N, B, C), the layout ctc_loss takes
    frame_lengths, target_lengths = frame_lengths.long(), target_lengths.long()
    loss = F.ctc_loss(
        lprobs, targets.long(), frame_lengths, target_lengths,
        blank=logits.size(-1) - 1, reduction="sum", zero_infinity=True,
    )  # fmt: skip
    position = torch.arange(targets.size(1), device=targets.device)
    repeats = (targets[:, 1:] == targets[:, :-1]) & (position[None, 1:] < target_lengths[:, None])
    feasible = frame_lengths >= target_lengths + repeats.sum(-1)
    return loss, feasible


def weighted_total(terms: dict[str, torch.Tensor | None], weights: dict[str, float]) -> torch.Tensor:
    """`sum_k weights[k] * terms[k]` over the terms that were computed (not `None`) and have a non-zero weight.

    A term with weight 0 is left out of the graph, so a logged-only term (CMOT's mixup CE) costs no backward.
    """
    total = None
    for name, value in terms.items():
        weight = float(weights.get(name, 0.0))
        if value is None or weight == 0.0:
            continue
        total = weight * value if total is None else total + weight * value
    if total is None:
        raise ValueError(f"No loss term was computed with a non-zero weight (terms {list(terms)}, weights {weights}).")
    return total


__all__ = [
    "IGNORE_INDEX",
    "ctc_loss_sum",
    "ctc_targets",
    "label_smoothed_cross_entropy",
    "shift_labels_right",
    "symmetric_kl",
    "weighted_total",
]
