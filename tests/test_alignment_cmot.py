"""Tests for the baselines behind `align`: CMOT's windowed nearest neighbour (loop and vectorised), nn, uniform."""

import math

import pytest
import torch

from dtw_align_hf.alignment import align, cosine_similarity
from dtw_align_hf.alignment_cmot import cmot_align_loop, cmot_align_vectorised, nn_align, uniform_align


def released_cmot_transcription(speech, text, speech_pad, text_pad, window=10):
    """A direct transcription of CMOT's released `get_ot_matrix` control flow (ictnlp/CMOT,
    `label_smoothed_cross_entropy_otmix.py`; L2 cost, window on): whole-batch broadcast distance, 6e4 sentinels, a
    Python double loop that fills the window mask, then argmin over tokens. Padding masks are True at padding."""
    B, N, _ = speech.shape
    M = text.shape[1]
    dist = (speech.unsqueeze(2) - text.unsqueeze(1)).norm(dim=-1)  # B x N x M via B x N x M x D
    dist = dist.masked_fill(speech_pad.unsqueeze(-1), 6e4).masked_fill(text_pad.unsqueeze(1), 6e4)
    n_len = (~speech_pad).sum(-1).float()
    m_len = (~text_pad).sum(-1).float()
    mask = torch.zeros_like(dist)
    for b in range(B):
        r = n_len[b] / m_len[b]
        for n in range(N):
            c = n / r
            lo = max(0, math.floor(c - window))
            hi = min(M, math.ceil(c + window))
            mask[b, n, lo:hi] = 1
    mask = mask.masked_fill(speech_pad.unsqueeze(-1), 0).masked_fill(text_pad.unsqueeze(1), 0)
    dist = dist.masked_fill(mask == 0, 6e4)
    return dist.argmin(-1)


def _batch(seed, B=4, N=70, M=30, D=16):
    g = torch.Generator().manual_seed(seed)
    speech, text = torch.randn(B, N, D, generator=g), torch.randn(B, M, D, generator=g)
    nlen = torch.randint(1, N + 1, (B,), generator=g)
    mlen = torch.randint(1, M + 1, (B,), generator=g)
    nlen[0], mlen[0] = N, M
    return speech, text, nlen, mlen


@pytest.mark.parametrize("seed", range(6))
def test_loop_and_vectorised_match_the_released_algorithm(seed):
    speech, text, nlen, mlen = _batch(seed)
    N, M = speech.shape[1], text.shape[1]
    speech_pad = torch.arange(N) >= nlen[:, None]
    text_pad = torch.arange(M) >= mlen[:, None]
    ref = released_cmot_transcription(speech, text, speech_pad, text_pad)
    ref = torch.where(speech_pad, -1, ref)  # padded frames: our contract says -1
    loop = cmot_align_loop(speech, text, nlen, mlen)
    vec = cmot_align_vectorised(speech, text, nlen, mlen)
    assert torch.equal(loop, ref)
    assert torch.equal(vec, ref)
    via_align = align(speech, text, ~speech_pad, ~text_pad, method="cmot", backend="loop")
    assert torch.equal(via_align.frame_to_token, ref)
    assert torch.equal(align(speech, text, ~speech_pad, ~text_pad, method="ot").frame_to_token, ref)


def test_window_bounds_restrict_the_choice():
    # tokens on a line, every frame far beyond the last one: the nearest token is the last token of the window
    text = torch.stack([torch.arange(8.0), torch.zeros(8)], -1).unsqueeze(0)
    speech = torch.tensor([100.0, 0.0]).expand(1, 16, 2).clone()
    nlen, mlen = torch.tensor([16]), torch.tensor([8])
    out = cmot_align_vectorised(speech, text, nlen, mlen, window=2)
    # frame n: centre c = n / 2, window [floor(c - 2), ceil(c + 2)); the best reachable token is the window's last
    expected = [min(8, math.ceil(n / 2 + 2)) - 1 for n in range(16)]
    assert out[0].tolist() == expected
    assert torch.equal(cmot_align_loop(speech, text, nlen, mlen, window=2), out)


def test_cosine_cost_variant_and_precomputed_similarity():
    speech, text, nlen, mlen = _batch(7)
    loop = cmot_align_loop(speech, text, nlen, mlen, cost="cosine")
    vec = cmot_align_vectorised(speech, text, nlen, mlen, cost="cosine")
    assert torch.equal(loop, vec)
    sim = cosine_similarity(speech, text)
    assert torch.equal(cmot_align_vectorised(speech, text, nlen, mlen, similarity=sim), vec)
    with pytest.raises(ValueError, match="Unknown CMOT cost"):
        cmot_align_vectorised(speech, text, nlen, mlen, cost="l1")


def test_coverage_and_monotonicity_are_reported():
    text = torch.eye(4).unsqueeze(0)
    # every frame looks like token 0: CMOT gives every frame token 0, three tokens get no frame
    out = align(text[:, :1].expand(1, 8, 4).clone(), text, method="cmot")
    assert out.frame_to_token[0].tolist() == [0] * 8
    assert out.token_coverage.item() == pytest.approx(0.25) and out.monotonic.item()
    # frames that alternate between tokens go backwards: not monotonic
    speech = text[:, [1, 0, 1, 0, 2, 3, 2, 3]]
    out = align(speech, text, method="cmot")
    assert out.frame_to_token[0].tolist() == [1, 0, 1, 0, 2, 3, 2, 3]
    assert out.token_coverage.item() == 1.0 and not out.monotonic.item()
    # DTW on the same input: full coverage, monotonic by construction
    dtw = align(speech, text)
    assert dtw.token_coverage.item() == 1.0 and dtw.monotonic.item()
    assert out.score.item() == pytest.approx(8.0) and out.valid.item()


def test_nn_takes_the_most_similar_real_token():
    sim = torch.tensor([[[0.1, 0.9, 0.5], [0.8, 0.2, 0.95], [0.3, 0.3, 0.1]]])
    nlen, mlen = torch.tensor([3]), torch.tensor([2])
    assert nn_align(sim, nlen, mlen).tolist() == [[1, 0, 0]]  # token 2 is padding; ties take the first index
    out = align(
        torch.randn(1, 3, 2), torch.randn(1, 3, 2), None, torch.tensor([[1, 1, 0]]), method="nn", similarity=sim
    )
    assert out.frame_to_token.tolist() == [[1, 0, 0]]
    assert out.score.item() == pytest.approx(0.9 + 0.8 + 0.3)


def test_uniform_is_length_proportional():
    out = uniform_align(torch.tensor([5, 4, 0]), torch.tensor([2, 4, 3]), 6)
    assert out.tolist() == [[0, 0, 0, 1, 1, -1], [0, 1, 2, 3, -1, -1], [-1] * 6]
    res = align(
        torch.randn(2, 10, 4), torch.randn(2, 4, 4), None, torch.tensor([[1] * 4, [1, 1, 0, 0]]), method="uniform"
    )
    assert res.frame_to_token[1].tolist() == [0] * 5 + [1] * 5
    assert res.monotonic.all() and (res.token_coverage == 1).all()


def test_baselines_handle_padding_and_empty_samples():
    speech, text = torch.randn(3, 6, 4), torch.randn(3, 3, 4)
    sm = torch.tensor([[1] * 6, [1] * 2 + [0] * 4, [0] * 6])
    tm = torch.tensor([[1] * 3, [1] * 3, [1] * 3])
    for method in ("cmot", "nn", "uniform"):
        out = align(speech, text, sm, tm, method=method)
        assert out.valid.tolist() == [True, True, False]  # N_b < M_b is fine for the baselines, empty is not
        assert out.frame_to_token[1, 2:].eq(-1).all() and out.frame_to_token[2].eq(-1).all()
        assert out.score[2] == float("-inf")
    with pytest.raises(ValueError, match="choose 'auto'/'torch' \\(vectorised\\) or 'loop'"):
        align(speech, text, method="cmot", backend="numba")
