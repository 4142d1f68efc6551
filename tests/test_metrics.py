"""Tests for `dtw_align_hf.metrics`: sacrebleu wrappers against sacrebleu itself, alignment accuracy by hand."""

import math

import numpy as np
import pytest
import torch

from dtw_align_hf.alignment import align
from dtw_align_hf.metrics import (
    alignment_accuracy,
    paired_bootstrap,
    seconds_to_frame_span,
    translation_metrics,
    word_index_from_pieces,
    words_to_token_spans,
)


HYPS = ["the cat sat on the mat .", "a dog barked loudly", "it is raining today", "hello world"]
HYPS_B = ["the cat sat on a mat .", "a dog barked", "it rains today", "hello world !"]
REFS = ["the cat sat on the mat .", "the dog barked loudly", "it is raining today", "hello , world"]


# ----------------------------------------------------------------------------------------------------------------------
# translation metrics
# ----------------------------------------------------------------------------------------------------------------------
def test_translation_metrics_match_sacrebleu_called_directly():
    sacrebleu = pytest.importorskip("sacrebleu")
    out = translation_metrics(HYPS, REFS)
    assert out["bleu"] == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score)
    assert out["chrf"] == pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS]).score)
    bleu = sacrebleu.BLEU()
    bleu.corpus_score(HYPS, [REFS])
    assert out["bleu_signature"] == str(bleu.get_signature())
    assert out["chrf_signature"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0")
    assert set(out) == {"bleu", "chrf", "bleu_signature", "chrf_signature"}
    assert translation_metrics(REFS, REFS)["bleu"] == pytest.approx(100.0)


def test_translation_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="has 2 sentences but `references` has 1"):
        translation_metrics(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty"):
        translation_metrics([], [])
    with pytest.raises(TypeError, match="lists of strings"):
        translation_metrics("a b", "a b")


def test_paired_bootstrap_matches_sacrebleu_paired_test():
    pytest.importorskip("sacrebleu")
    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.significance import PairedTest

    out = paired_bootstrap(HYPS, HYPS_B, REFS, n_samples=200, seed=7)
    assert out["bleu"]["baseline"] == pytest.approx(BLEU().corpus_score(HYPS, [REFS]).score)
    assert out["bleu"]["system"] == pytest.approx(BLEU().corpus_score(HYPS_B, [REFS]).score)
    assert out["bleu"]["delta"] == pytest.approx(out["bleu"]["system"] - out["bleu"]["baseline"])
    assert 0 < out["bleu"]["p_value"] <= 1 and 0 < out["chrf"]["p_value"] <= 1
    assert "bs:200" in out["bleu_signature"] and "seed:7" in out["bleu_signature"]
    # same seed -> same result; direct PairedTest with the same seed -> same p-value
    assert paired_bootstrap(HYPS, HYPS_B, REFS, n_samples=200, seed=7) == out
    import os

    os.environ["SACREBLEU_SEED"] = "7"
    try:
        _, scores = PairedTest(
            [("a", HYPS), ("b", HYPS_B)], {"bleu": BLEU(), "chrf": CHRF()}, [REFS], test_type="bs", n_samples=200
        )()
    finally:
        del os.environ["SACREBLEU_SEED"]
    assert scores["BLEU"][1].p_value == pytest.approx(out["bleu"]["p_value"])
    assert "SACREBLEU_SEED" not in os.environ
    # sacrebleu gives identical systems p = 1 / (n + 1) (its statistic is a strict ">"); we report 1.0
    same = paired_bootstrap(HYPS, list(HYPS), REFS, n_samples=100)
    assert same["bleu"]["delta"] == 0 and same["bleu"]["p_value"] == 1.0 and same["chrf"]["p_value"] == 1.0


# ----------------------------------------------------------------------------------------------------------------------
# alignment accuracy
# ----------------------------------------------------------------------------------------------------------------------
def test_token_and_frame_accuracy_hand_computed():
    # 3 tokens, reference spans [0, 2), [2, 4), [4, 6) frames
    spans = [(0, 2), (2, 4), (4, 6)]
    f2t = [0, 0, 0, 1, 2, 2]
    # token 0: frames 0,1,2 -> 2 of 3 inside: majority yes, all no; token 1: frame 3 inside; token 2: 4,5 inside
    out = alignment_accuracy(f2t, spans)
    assert out["token_accuracy"] == pytest.approx(1.0) and out["frame_accuracy"] == pytest.approx(5 / 6)
    assert out["num_tokens"] == 3 and out["num_frames"] == 6 and out["unaligned_tokens"] == 0
    strict = alignment_accuracy(f2t, spans, rule="all")
    assert strict["token_accuracy"] == pytest.approx(2 / 3) and strict["frame_accuracy"] == pytest.approx(5 / 6)
    # exactly half inside is not a majority
    half = alignment_accuracy([0, 0, 0, 0, 1, 2], [(0, 2), (4, 5), (5, 6)])
    assert half["token_accuracy"] == pytest.approx(2 / 3)


def test_unaligned_tokens_count_as_wrong_and_padding_is_skipped():
    # batch of two; sample 0 leaves token 1 without a frame (CMOT-style), sample 1 is padded and invalid
    f2t = torch.tensor([[0, 0, 2, 2, -1, -1], [-1, -1, -1, -1, -1, -1]])
    refs = [[(0, 2), (2, 3), (3, 4)], [(0, 3), (3, 6)]]
    out = alignment_accuracy(f2t, refs)
    # sample 0: token 0 ok, token 1 unaligned, token 2 frames 2 (out), 3 (in): 1 of 2 -> not a majority
    assert out["num_tokens"] == 5 and out["unaligned_tokens"] == 3
    assert out["token_accuracy"] == pytest.approx(1 / 5)
    assert out["num_frames"] == 4 and out["frame_accuracy"] == pytest.approx(3 / 4)


def test_per_word_references_in_seconds():
    # frame rate 10 fps: frame n covers [0.1 n, 0.1 n + 0.1), centre 0.1 n + 0.05
    words = [{"word": "Das", "start": 0.0, "end": 0.3}, {"word": "Haus", "start": 0.3, "end": 0.6}]
    pieces = ["▁Das", "▁Ha", "us", "</s>"]
    word_index = word_index_from_pieces(pieces)
    assert word_index == [0, 1, 1, None]
    spans = words_to_token_spans(words, word_index, frame_rate=10)
    assert spans == [(0, 3), (3, 6), (3, 6), (-1, -1)]
    f2t = np.array([0, 0, 0, 1, 2, 2])
    out = alignment_accuracy(f2t, words, token_word_index=word_index, frame_rate=10)
    assert out["token_accuracy"] == 1.0 and out["frame_accuracy"] == 1.0 and out["num_tokens"] == 3
    late = alignment_accuracy([0, 0, 1, 1, 2, 3], words, token_word_index=word_index, frame_rate=10)
    # frame 2 goes to "▁Ha" (word 1, frames 3-5): token 1 has 1 of 2 frames inside; frame 5 goes to </s> (no word)
    assert late["num_frames"] == 5 and late["frame_accuracy"] == pytest.approx(4 / 5)
    assert late["token_accuracy"] == pytest.approx(2 / 3)
    # the same references per token in seconds, and per word in frames
    per_token = alignment_accuracy(f2t, [(0.0, 0.3), (0.3, 0.6), (0.3, 0.6), (-1, -1)], frame_rate=10)
    assert per_token == out
    frames_words = alignment_accuracy(f2t, [(0, 3), (3, 6)], token_word_index=word_index)
    assert frames_words == out


def test_seconds_to_frames_uses_frame_centres():
    assert seconds_to_frame_span(0.05, 0.21, 12.5) == (1, 3)  # centres 0.12 and 0.20 s
    assert seconds_to_frame_span(0.0, 0.08, 12.5) == (0, 1)
    assert seconds_to_frame_span(0.30, 0.31, 12.5) == (3, 4)  # shorter than a frame: the midpoint's frame
    with pytest.raises(ValueError, match="ends before it starts"):
        seconds_to_frame_span(1.0, 0.5, 12.5)
    with pytest.raises(ValueError, match="frame_rate"):
        seconds_to_frame_span(0.0, 0.5, 0)


def test_dtw_beats_uniform_on_a_planted_alignment():
    # frames are noisy copies of their token along a known path; DTW should recover it
    g = torch.Generator().manual_seed(0)
    text = torch.randn(1, 6, 32, generator=g)
    lengths = [3, 1, 5, 2, 4, 5]
    truth = torch.repeat_interleave(torch.arange(6), torch.tensor(lengths))
    speech = text[0, truth].unsqueeze(0) + 0.3 * torch.randn(1, len(truth), 32, generator=g)
    bounds = np.cumsum([0, *lengths])
    spans = [(int(bounds[m]), int(bounds[m + 1])) for m in range(6)]
    dtw = alignment_accuracy(align(speech, text).frame_to_token, [spans])
    uniform = alignment_accuracy(align(speech, text, method="uniform").frame_to_token, [spans])
    assert dtw["token_accuracy"] == 1.0 and dtw["frame_accuracy"] == 1.0
    assert uniform["frame_accuracy"] < 1.0


def test_alignment_accuracy_input_checks():
    with pytest.raises(ValueError, match="has 1 samples but `frame_to_token` has 2"):
        alignment_accuracy([[0, 1], [0, 1]], [[(0, 1), (1, 2)]])
    with pytest.raises(ValueError, match="assigns token 2, but the reference has only 2 tokens"):
        alignment_accuracy([0, 1, 2], [(0, 1), (1, 3)])
    with pytest.raises(ValueError, match="maps to word 2"):
        words_to_token_spans([(0.0, 0.1)], [0, 2], 12.5)
    with pytest.raises(ValueError, match="Unknown rule"):
        alignment_accuracy([0], [(0, 1)], rule="some")
    empty = alignment_accuracy([-1, -1], [(-1, -1)])
    assert math.isnan(empty["token_accuracy"]) and math.isnan(empty["frame_accuracy"])


# ----------------------------------------------------------------------------------------------------------------------
# alignment statistics without references
# ----------------------------------------------------------------------------------------------------------------------
def test_alignment_statistics_hand_computed():
    from dtw_align_hf.metrics import alignment_statistics

    f2t = [
        [0, 0, 1, 1, 1, 2, -1, -1],  # 3 tokens, monotonic; runs 2, 3, 1 -> longest 3 of 6 frames
        [0, 2, 1, 1, 3, 3, 3, 3],  # 5 tokens (token 4 uncovered), goes back 2 -> 1; longest run 4 of 8
        [-1, -1, -1, -1, -1, -1, -1, -1],  # invalid sample with 2 tokens: nothing assigned
    ]
    out = alignment_statistics(torch.tensor(f2t), num_tokens=torch.tensor([3, 5, 2]))
    s0, s1, s2 = out["per_sample"]
    assert s0 == {
        "num_tokens": 3,
        "num_frames": 6,
        "covered_tokens": 3,
        "coverage": 1.0,
        "frames_per_token_mean": 2.0,
        "frames_per_token_min": 1,
        "frames_per_token_max": 3,
        "monotonic": True,
        "longest_segment_share": 0.5,
    }
    assert s1["covered_tokens"] == 4 and s1["coverage"] == pytest.approx(0.8)
    assert s1["monotonic"] is False and s1["longest_segment_share"] == pytest.approx(0.5)
    assert (s1["frames_per_token_min"], s1["frames_per_token_max"]) == (0, 4)
    assert s1["frames_per_token_mean"] == pytest.approx(8 / 5)
    assert s2["coverage"] == 0.0 and s2["monotonic"] is None and s2["longest_segment_share"] is None
    assert out["num_samples"] == 3 and out["unaligned_samples"] == 1
    assert out["num_tokens"] == 10 and out["num_frames"] == 14
    assert out["coverage"] == pytest.approx(7 / 10)  # micro: (3 + 4 + 0) covered of 10 tokens
    assert out["monotonic"] == pytest.approx(0.5)  # of the two aligned samples
    assert out["frames_per_token_mean"] == pytest.approx(14 / 10)
    assert (out["frames_per_token_min"], out["frames_per_token_max"]) == (0, 4)
    assert out["longest_segment_share"] == pytest.approx(0.5)


def test_alignment_statistics_one_sample_and_inferred_token_count():
    from dtw_align_hf.metrics import alignment_statistics

    # a padding frame in the middle breaks a run: [1, 1] and [1] are two segments of token 1
    out = alignment_statistics(np.array([0, 1, 1, -1, 1, 2, 2, 2]))
    assert out["num_samples"] == 1 and out["num_tokens"] == 3  # inferred: highest index + 1
    assert out["longest_segment_share"] == pytest.approx(3 / 7)
    assert out["monotonic"] == 1.0 and out["coverage"] == 1.0
    # a trailing uncovered token is only seen with num_tokens
    assert alignment_statistics([0, 0, 1], num_tokens=3)["coverage"] == pytest.approx(2 / 3)


def test_alignment_statistics_of_dtw_cover_every_token():
    from dtw_align_hf.metrics import alignment_statistics

    torch.manual_seed(0)
    speech, text = torch.randn(2, 30, 8), torch.randn(2, 6, 8)
    speech_mask = torch.ones(2, 30, dtype=torch.bool)
    speech_mask[1, 20:] = False
    text_mask = torch.ones(2, 6, dtype=torch.bool)
    text_mask[1, 4:] = False
    out = align(speech, text, speech_mask, text_mask, method="dtw", backend="torch")
    stats = alignment_statistics(out.frame_to_token, num_tokens=text_mask.sum(-1))
    assert stats["coverage"] == 1.0 and stats["monotonic"] == 1.0 and stats["frames_per_token_min"] >= 1
    assert stats["num_frames"] == 50 and stats["frames_per_token_mean"] == pytest.approx(50 / 10)


def test_alignment_statistics_input_checks():
    from dtw_align_hf.metrics import alignment_statistics

    with pytest.raises(ValueError, match="num_tokens"):
        alignment_statistics([[0, 1], [0, 0]], num_tokens=[2])
    with pytest.raises(ValueError, match="assigns token 3"):
        alignment_statistics([0, 3], num_tokens=2)
