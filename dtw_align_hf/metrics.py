"""Evaluation: translation quality (sacrebleu BLEU / chrF, paired bootstrap) and alignment accuracy.

Alignment accuracy scores a frame -> token map (`AlignmentOutput.frame_to_token`) against reference timings, e.g. the
word timings written by `data/demo.py` (CONTRACTS.md: JSONL, `{"id", "words": [{"word", "start", "end"}, ...]}`, seconds
from the start of the audio) or NeMo Forced Aligner output, as the paper uses.

Frames and time: frame n of the aligned sequence covers [n / frame_rate, (n + 1) / frame_rate) seconds and its centre is
(n + 0.5) / frame_rate (frame_rate = 12.5 frames/s for HuBERT's 50 Hz followed by a stride-4 adapter). A frame is inside
a reference span [start, end) (seconds) when its centre is; a span is therefore the half-open frame range
[ceil(start * fr - 0.5), ceil(end * fr - 0.5)). A word shorter than a frame that would get no frame this way gets the
one frame that contains its midpoint, so every reference span has >= 1 frame.
"""

import math
import os
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch


Span = tuple[float, float]
_NO_SPAN = (-1, -1)


# ----------------------------------------------------------------------------------------------------------------------
# translation quality
# ----------------------------------------------------------------------------------------------------------------------
def _check_corpus(hypotheses: Sequence[str], references: Sequence[str], names=("hypotheses", "references")) -> None:
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise TypeError(f"`{names[0]}` and `{names[1]}` must be lists of strings (one sentence each), not a string.")
    if len(hypotheses) != len(references):
        raise ValueError(
            f"`{names[0]}` has {len(hypotheses)} sentences but `{names[1]}` has {len(references)}; they must be aligned "
            "line by line."
        )
    if len(hypotheses) == 0:
        raise ValueError(f"`{names[0]}` is empty: there is nothing to score.")


def translation_metrics(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, Any]:
    """Corpus BLEU and chrF with sacrebleu's defaults, on detokenised text (one reference per sentence).

    BLEU: 13a tokenisation, mixed case, exponential smoothing; chrF: character 6-grams, beta 2 (chrF2), no word
    n-grams. Report the signatures with the scores so they can be compared across papers.

    Args:
        hypotheses (`list[str]`): system outputs, detokenised, one per test sentence.
        references (`list[str]`): reference translations, same order.

    Returns:
        `dict`: `{"bleu": float, "chrf": float, "bleu_signature": str, "chrf_signature": str}` (scores in 0-100).
    """
    from sacrebleu.metrics import BLEU, CHRF

    _check_corpus(hypotheses, references)
    hyps = [str(h) for h in hypotheses]
    refs = [[str(r) for r in references]]
    bleu, chrf = BLEU(), CHRF()
    return {
        "bleu": float(bleu.corpus_score(hyps, refs).score),
        "chrf": float(chrf.corpus_score(hyps, refs).score),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }


@contextmanager
def _sacrebleu_seed(seed: int | None):
    # sacrebleu's PairedTest reads its RNG seed from the SACREBLEU_SEED environment variable only
    old = os.environ.get("SACREBLEU_SEED")
    os.environ["SACREBLEU_SEED"] = "None" if seed is None else str(int(seed))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SACREBLEU_SEED", None)
        else:
            os.environ["SACREBLEU_SEED"] = old


def paired_bootstrap(
    hyps_a: Sequence[str],
    hyps_b: Sequence[str],
    references: Sequence[str],
    n_samples: int = 1000,
    seed: int | None = 12345,
) -> dict[str, Any]:
    """Paired bootstrap resampling (Koehn, 2004) of system B against baseline A, for BLEU and chrF.

    Runs sacrebleu's own implementation (`sacrebleu.significance.PairedTest`, `test_type="bs"`, the method of Moses'
    `bootstrap-hypothesis-difference-significance.pl`): the same `n_samples` resamples of sentence indices are scored
    for both systems from sufficient statistics; the p-value is the share of resamples whose (mean-centred) absolute
    score difference exceeds the observed one, with +1 smoothing. It is two-sided: a small p-value says the systems
    differ, the sign of `delta` says which is better. One correction: for two identical outputs sacrebleu's strict
    ">" gives p = 1 / (n_samples + 1), which reads as significant; we report p = 1.0 there.

    Args:
        hyps_a (`list[str]`): baseline outputs. hyps_b (`list[str]`): outputs of the system under test.
        references (`list[str]`): one reference per sentence, same order.
        n_samples (`int`): bootstrap resamples (sacrebleu's default 1000).
        seed (`int` or None): RNG seed (sacrebleu's default 12345); None draws fresh entropy.

    Returns:
        `dict`: for each of `"bleu"` and `"chrf"` a dict `{"baseline", "system", "delta", "p_value", "baseline_mean",
        "baseline_ci", "system_mean", "system_ci"}` (scores 0-100, `*_ci` the half-width of the 95% bootstrap interval),
        plus `"bleu_signature"`, `"chrf_signature"` (with seed and resample count), `"n_samples"`, `"seed"`,
        `"num_sentences"` and `"method"`.
    """
    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.significance import PairedTest

    _check_corpus(hyps_a, references, ("hyps_a", "references"))
    _check_corpus(hyps_b, references, ("hyps_b", "references"))
    if n_samples < 1:
        raise ValueError(f"`n_samples` must be >= 1, got {n_samples}.")
    systems = [("baseline", [str(h) for h in hyps_a]), ("system", [str(h) for h in hyps_b])]
    refs = [[str(r) for r in references]]
    with _sacrebleu_seed(seed):
        test = PairedTest(systems, {"bleu": BLEU(), "chrf": CHRF()}, refs, test_type="bs", n_samples=n_samples)
        signatures, scores = test()
    result: dict[str, Any] = {
        "method": "paired bootstrap resampling (sacrebleu.significance.PairedTest, test_type='bs')",
        "n_samples": int(n_samples),
        "seed": seed,
        "num_sentences": len(references),
    }
    for metric_name in scores:
        if metric_name == "System":
            continue
        key = "bleu" if metric_name.lower().startswith("bleu") else "chrf"
        base, system = scores[metric_name]
        result[key] = {
            "baseline": float(base.score),
            "system": float(system.score),
            "delta": float(system.score - base.score),
            "p_value": 1.0 if systems[0][1] == systems[1][1] else float(system.p_value),
            "baseline_mean": float(base.mean),
            "baseline_ci": float(base.ci),
            "system_mean": float(system.mean),
            "system_ci": float(system.ci),
        }
        result[f"{key}_signature"] = str(signatures[metric_name])
    return result


# ----------------------------------------------------------------------------------------------------------------------
# alignment accuracy
# ----------------------------------------------------------------------------------------------------------------------
def seconds_to_frame_span(start: float, end: float, frame_rate: float) -> tuple[int, int]:
    """Half-open frame range [first, last + 1) of the frames whose centre lies in [start, end) seconds.

    A span that would hold no frame (a word shorter than a frame) gets the frame containing its midpoint.
    """
    if frame_rate <= 0:
        raise ValueError(f"`frame_rate` must be positive (frames per second), got {frame_rate}.")
    if end < start:
        raise ValueError(f"A reference span ends before it starts: ({start}, {end}) seconds.")
    # round away float noise (0.04 s * 12.5 frames/s - 0.5 = 1e-17) before ceil
    first = math.ceil(round(start * frame_rate - 0.5, 9))
    stop = math.ceil(round(end * frame_rate - 0.5, 9))
    first = max(first, 0)
    if stop <= first:
        first = max(math.floor(0.5 * (start + end) * frame_rate), 0)
        stop = first + 1
    return first, stop


def word_index_from_pieces(pieces: Sequence[str], special_tokens: Sequence[str] = ()) -> list[int | None]:
    """Word index of each SentencePiece piece: a piece starting with "▁" starts a new whitespace-separated word.

    Special tokens (e.g. `"</s>"`, given in `special_tokens`, or any `<...>` piece) belong to no word (None).
    Punctuation pieces without "▁" stay in the current word, as whitespace splitting of the transcript does.

    Example: `["▁Hal", "lo", ",", "▁Welt", "</s>"]` -> `[0, 0, 0, 1, None]`.
    """
    out: list[int | None] = []
    word = -1
    for piece in pieces:
        if piece in special_tokens or (piece.startswith("<") and piece.endswith(">") and len(piece) > 2):
            out.append(None)
            continue
        if piece.startswith("▁") or word < 0:
            word += 1
        out.append(word)
    return out


def words_to_token_spans(
    words: Sequence[Mapping[str, Any] | Sequence[float]],
    token_word_index: Sequence[int | None],
    frame_rate: float,
) -> list[tuple[int, int]]:
    """Reference frame span of every token, from word timings in seconds.

    Args:
        words (`list`): word timings of one utterance, each `{"word": str, "start": float, "end": float}` (the
            CONTRACTS.md format; NeMo Forced Aligner's word CTM converts directly) or a `(start, end)` pair, seconds.
        token_word_index (`list[int | None]`): for each transcript token, the index of its word in `words` (see
            `word_index_from_pieces`); None or -1 for tokens outside any word (special tokens).
        frame_rate (`float`): frames per second of the aligned speech sequence (12.5 for HuBERT + a stride-4 adapter).

    Returns:
        `list[tuple[int, int]]`: per token, the half-open frame range `[start, end)` of its word (frames whose centre
        lies inside the word); `(-1, -1)` for tokens without a word, which `alignment_accuracy` leaves out.
    """
    spans = []
    for w in words:
        start, end = (w["start"], w["end"]) if isinstance(w, Mapping) else (w[0], w[1])
        spans.append(seconds_to_frame_span(float(start), float(end), frame_rate))
    out = []
    for t, idx in enumerate(token_word_index):
        if idx is None or idx < 0:
            out.append(_NO_SPAN)
        elif idx >= len(spans):
            raise ValueError(
                f"Token {t} maps to word {idx}, but the reference has only {len(spans)} words; the transcript and the "
                "reference timings must split into the same words (check `token_word_index`)."
            )
        else:
            out.append(spans[idx])
    return out


def _as_rows(frame_to_token) -> list[np.ndarray]:
    if isinstance(frame_to_token, torch.Tensor):
        frame_to_token = frame_to_token.detach().cpu().numpy()
    if isinstance(frame_to_token, np.ndarray):
        if frame_to_token.ndim == 1:
            return [frame_to_token.astype(np.int64)]
        if frame_to_token.ndim == 2:
            return [row.astype(np.int64) for row in frame_to_token]
        raise ValueError(f"`frame_to_token` must have shape (N,) or (B, N), got {frame_to_token.shape}.")
    rows = list(frame_to_token)
    if rows and np.ndim(rows[0]) == 0:
        return [np.asarray(rows, dtype=np.int64)]
    return [np.asarray(r, dtype=np.int64) for r in rows]


def alignment_accuracy(
    frame_to_token,
    reference_spans: Sequence,
    *,
    token_word_index: Sequence[Sequence[int | None]] | None = None,
    frame_rate: float | None = None,
    rule: str = "majority",
) -> dict[str, Any]:
    """How well a frame -> token alignment matches reference timings, at token level and at frame level.

    Definitions (micro-averaged over every scored token / frame of the batch):

    - **token accuracy**: the share of tokens whose assigned frames fall inside the token's reference span (its word's
      span when references are per word). With `rule="majority"` (default) a token is correct when it got >= 1 frame
      and strictly more than half of its frames lie inside the span; with `rule="all"`, every one of its frames must.
      A token that got no frame (possible with CMOT / nn alignments) counts as wrong.
    - **frame accuracy**: the share of assigned frames whose token's reference span contains the frame (i.e. the
      frame's centre lies inside the word's time span).

    Tokens without a reference span (`(-1, -1)`, e.g. special tokens) are left out of both figures, and so are the
    frames assigned to them; frames marked -1 (padding, invalid samples) are not scored, but the tokens of an invalid
    sample are (they got no frame, so they count as wrong).

    Relation to the paper: DTW-Align reports "the share of tokens whose assigned frames fall inside the reference span
    of their word", against NeMo Forced Aligner word timings (26% CMOT, 45% DTW-Align). Our token accuracy with
    per-word references is that quantity; the paper does not say how a token partly inside its word is counted, so
    `rule` makes the choice explicit (`"all"` is the strict reading, `"majority"` ours). Figures are comparable with
    the paper's only for the same data, frame rate and reference aligner.

    Args:
        frame_to_token (`torch.Tensor`, `np.ndarray` or nested list, shape `(B, N)` or `(N,)`):
            The token index of each frame, -1 where unassigned (as in `AlignmentOutput.frame_to_token`).
        reference_spans (`list`):
            Per sample (a single sample's list when `frame_to_token` is 1-D), either one `(start, end)` per token, or,
            with `token_word_index`, one per word (either a `(start, end)` pair or a `{"word", "start", "end"}` dict).
            Frame indices (half-open `[start, end)`) by default; seconds when `frame_rate` is given, converted with the
            frame-centre rule of the module docstring.
        token_word_index (`list[list[int | None]]`, *optional*):
            Per sample, the word index of each token (None / -1: no word), making `reference_spans` per word.
        frame_rate (`float`, *optional*):
            Frames per second of the aligned sequence when the spans are in seconds (12.5 for HuBERT + stride 4).
        rule (`str`, *optional*, defaults to `"majority"`): `"majority"` or `"all"` (token level, see above).

    Returns:
        `dict`: `token_accuracy` and `frame_accuracy` (0-1, NaN when nothing was scored), `num_tokens`, `num_frames`
        (how many were scored), `unaligned_tokens` (scored tokens that got no frame) and `rule`.
    """
    if rule not in ("majority", "all"):
        raise ValueError(f"Unknown rule {rule!r}; choose 'majority' or 'all'.")
    rows = _as_rows(frame_to_token)
    if len(rows) == 1 and len(reference_spans) and _is_span(reference_spans[0]):
        reference_spans = [reference_spans]  # one sample given without a batch level
        if token_word_index is not None and len(token_word_index) and not isinstance(token_word_index[0], Sequence):
            token_word_index = [token_word_index]
    if len(reference_spans) != len(rows):
        raise ValueError(
            f"`reference_spans` has {len(reference_spans)} samples but `frame_to_token` has {len(rows)}; give one list "
            "of spans per sample."
        )
    if token_word_index is not None and len(token_word_index) != len(rows):
        raise ValueError(f"`token_word_index` has {len(token_word_index)} samples, `frame_to_token` {len(rows)}.")

    tokens_ok = tokens_total = frames_ok = frames_total = unaligned = 0
    for b, (f2t, refs) in enumerate(zip(rows, reference_spans, strict=True)):
        spans = _token_spans(refs, None if token_word_index is None else token_word_index[b], frame_rate)
        M = len(spans)
        if f2t.size and f2t.max() >= M:
            raise ValueError(
                f"Sample {b}: `frame_to_token` assigns token {int(f2t.max())}, but the reference has only {M} tokens; "
                "give one span per token (or per word with `token_word_index`)."
            )
        frames = np.arange(len(f2t))
        assigned = f2t >= 0
        starts = np.array([s for s, _ in spans], dtype=np.int64).reshape(-1)
        ends = np.array([e for _, e in spans], dtype=np.int64).reshape(-1)
        has_ref = starts >= 0
        tok = np.where(assigned, f2t, 0)
        inside = assigned & (frames >= starts[tok]) & (frames < ends[tok]) if M else assigned & False
        scored = assigned & has_ref[tok] if M else assigned & False
        frames_ok += int((inside & scored).sum())
        frames_total += int(scored.sum())
        count = np.bincount(f2t[assigned], minlength=M)[:M]
        count_in = np.bincount(f2t[inside & scored], minlength=M)[:M]
        good = (count_in * 2 > count) if rule == "majority" else (count_in == count)
        good &= count > 0
        tokens_ok += int((good & has_ref).sum())
        tokens_total += int(has_ref.sum())
        unaligned += int(((count == 0) & has_ref).sum())
    return {
        "token_accuracy": tokens_ok / tokens_total if tokens_total else float("nan"),
        "frame_accuracy": frames_ok / frames_total if frames_total else float("nan"),
        "num_tokens": tokens_total,
        "num_frames": frames_total,
        "unaligned_tokens": unaligned,
        "rule": rule,
    }


def _is_span(x) -> bool:
    if isinstance(x, Mapping):
        return True
    numbers = (int, float, np.integer, np.floating)
    return isinstance(x, Sequence | np.ndarray) and len(x) == 2 and all(isinstance(v, numbers) for v in x)


def _token_spans(refs, word_index, frame_rate) -> list[tuple[int, int]]:
    if word_index is not None:
        if frame_rate is None:
            words = [(r["start"], r["end"]) if isinstance(r, Mapping) else tuple(r) for r in refs]
            out = []
            for idx in word_index:
                if idx is None or idx < 0:
                    out.append(_NO_SPAN)
                elif idx >= len(words):
                    raise ValueError(f"Token maps to word {idx}, but the reference has only {len(words)} words.")
                else:
                    out.append((int(words[idx][0]), int(words[idx][1])))
            return out
        return words_to_token_spans(refs, word_index, frame_rate)
    out = []
    for r in refs:
        start, end = (r["start"], r["end"]) if isinstance(r, Mapping) else (r[0], r[1])
        if start is None or start < 0:
            out.append(_NO_SPAN)
        elif frame_rate is not None:
            out.append(seconds_to_frame_span(float(start), float(end), frame_rate))
        else:
            out.append((int(start), int(end)))
    return out


# ----------------------------------------------------------------------------------------------------------------------
# alignment statistics without references
# ----------------------------------------------------------------------------------------------------------------------
def alignment_statistics(frame_to_token, num_tokens=None) -> dict[str, Any]:
    """Properties of a frame -> token alignment that need no reference timings.

    Per utterance, over its assigned frames (frame_to_token >= 0; -1 marks padding and invalid samples) and its
    `M` transcript tokens:

    - **coverage**: share of the M tokens that got >= 1 frame (DTW guarantees 1.0; CMOT's rule and `nn` do not);
    - **monotonic**: whether the token index never decreases from one assigned frame to the next;
    - **frames per token**: frames of each token; mean (= assigned frames / M), min and max over the M tokens (a
      token without a frame counts 0);
    - **longest segment share**: length of the longest run of consecutive frames on one token, divided by the
      assigned frames: near 1/M for an even split, near 1 when one token absorbs the utterance (the failure the
      README's example plot shows).

    Batch figures: `coverage` and `frames_per_token_mean` are micro-averaged (over all tokens of all samples),
    `frames_per_token_min`/`max` are the extremes over all tokens, `monotonic` is the share of samples that are
    monotonic and `longest_segment_share` the mean over samples. Samples without any assigned frame (invalid: DTW
    with fewer frames than tokens) count in `coverage` (their tokens are uncovered) and in `unaligned_samples`, and
    are left out of `monotonic` and `longest_segment_share`.

    Args:
        frame_to_token (`torch.Tensor`, `np.ndarray` or nested list, shape `(B, N)` or `(N,)`):
            The token of each frame, -1 where unassigned (`AlignmentOutput.frame_to_token`).
        num_tokens (`int` or `Sequence[int]`, *optional*):
            Transcript tokens per sample (`text_mask.sum(-1)`). Without it, M = the highest assigned index + 1, so
            tokens after the last assigned one are not seen as uncovered: pass it for a true coverage.

    Returns:
        `dict`: `num_samples`, `unaligned_samples`, `num_tokens`, `num_frames` (assigned), `coverage`, `monotonic`,
        `frames_per_token_mean`, `frames_per_token_min`, `frames_per_token_max`, `longest_segment_share` (NaN where
        nothing could be measured), and `per_sample`: one dict per sample with `num_tokens`, `num_frames`,
        `covered_tokens`, `coverage`, `monotonic`, `frames_per_token_mean`/`min`/`max`, `longest_segment_share`.
    """
    rows = _as_rows(frame_to_token)
    if num_tokens is None:
        counts = [int(r.max()) + 1 if r.size and r.max() >= 0 else 0 for r in rows]
    elif isinstance(num_tokens, (int, np.integer)):
        counts = [int(num_tokens)] * len(rows)
    else:
        if isinstance(num_tokens, torch.Tensor):
            num_tokens = num_tokens.detach().cpu().tolist()
        counts = [int(m) for m in num_tokens]
        if len(counts) != len(rows):
            raise ValueError(
                f"`num_tokens` has {len(counts)} entries but `frame_to_token` has {len(rows)} samples; give one "
                "token count per sample (e.g. `text_mask.sum(-1)`)."
            )
    per_sample = []
    for b, (f2t, m) in enumerate(zip(rows, counts, strict=True)):
        if m < 0:
            raise ValueError(f"Sample {b}: `num_tokens` must be >= 0, got {m}.")
        assigned = f2t[f2t >= 0]
        if assigned.size and assigned.max() >= m:
            raise ValueError(
                f"Sample {b}: `frame_to_token` assigns token {int(assigned.max())}, but `num_tokens` is {m}; pass the "
                "transcript's token count (`text_mask.sum(-1)`)."
            )
        per_token = np.bincount(assigned, minlength=m)[:m] if m else np.zeros(0, dtype=np.int64)
        stats: dict[str, Any] = {
            "num_tokens": m,
            "num_frames": int(assigned.size),
            "covered_tokens": int((per_token > 0).sum()),
            "coverage": float((per_token > 0).mean()) if m else float("nan"),
            "frames_per_token_mean": assigned.size / m if m else float("nan"),
            "frames_per_token_min": int(per_token.min()) if m else None,
            "frames_per_token_max": int(per_token.max()) if m else None,
        }
        if assigned.size:
            stats["monotonic"] = bool((np.diff(assigned) >= 0).all())
            # runs of consecutive frames (in frame order, padding frames break a run) on the same token
            idx = np.nonzero(f2t >= 0)[0]
            breaks = (np.diff(idx) != 1) | (np.diff(assigned) != 0)
            bounds = np.concatenate(([0], np.nonzero(breaks)[0] + 1, [assigned.size]))
            stats["longest_segment_share"] = float(np.diff(bounds).max() / assigned.size)
        else:
            stats["monotonic"] = None
            stats["longest_segment_share"] = None
        per_sample.append(stats)

    total_tokens = sum(s["num_tokens"] for s in per_sample)
    total_frames = sum(s["num_frames"] for s in per_sample)
    covered = sum(s["covered_tokens"] for s in per_sample)
    aligned = [s for s in per_sample if s["num_frames"]]
    mins = [s["frames_per_token_min"] for s in per_sample if s["frames_per_token_min"] is not None]
    maxs = [s["frames_per_token_max"] for s in per_sample if s["frames_per_token_max"] is not None]
    nan = float("nan")
    return {
        "num_samples": len(per_sample),
        "unaligned_samples": len(per_sample) - len(aligned),
        "num_tokens": total_tokens,
        "num_frames": total_frames,
        "coverage": covered / total_tokens if total_tokens else nan,
        "monotonic": sum(s["monotonic"] for s in aligned) / len(aligned) if aligned else nan,
        "frames_per_token_mean": total_frames / total_tokens if total_tokens else nan,
        "frames_per_token_min": min(mins) if mins else nan,
        "frames_per_token_max": max(maxs) if maxs else nan,
        "longest_segment_share": float(np.mean([s["longest_segment_share"] for s in aligned])) if aligned else nan,
        "per_sample": per_sample,
    }


__all__ = [
    "alignment_accuracy",
    "alignment_statistics",
    "paired_bootstrap",
    "seconds_to_frame_span",
    "translation_metrics",
    "word_index_from_pieces",
    "words_to_token_spans",
]
