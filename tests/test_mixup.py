import pytest
import torch

from dtw_align_hf.mixup import mix, sample_mixup_ratio, segment_means


def _streams(b=2, n=9, m=4, d=6):
    speech = torch.randn(b, n, d, requires_grad=True)
    text = torch.randn(b, m, d, requires_grad=True)
    # sample 0: 9 frames over 4 tokens; sample 1: 6 real frames over 3 real tokens
    f2t = torch.tensor([[0, 0, 1, 1, 1, 2, 3, 3, 3], [0, 1, 1, 2, 2, 2, -1, -1, -1]])
    speech_mask = torch.tensor([[1] * 9, [1] * 6 + [0] * 3]).bool()
    text_mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]).bool()
    return speech, text, f2t, speech_mask, text_mask


def test_segment_means_match_a_loop():
    speech, _, f2t, _, _ = _streams()
    means, counts = segment_means(speech, f2t, 4)
    for b in range(2):
        for j in range(4):
            frames = [n for n in range(9) if f2t[b, n] == j]
            assert counts[b, j] == len(frames)
            if frames:
                torch.testing.assert_close(means[b, j], speech[b, frames].mean(0))
            else:
                assert means[b, j].abs().sum() == 0


def test_token_level_interpolation_endpoints():
    speech, text, f2t, sm, tm = _streams()
    means, _ = segment_means(speech, f2t, 4)
    out0 = mix(speech, text, f2t, sm, tm, kind="interpolation", level="token", ratio=0.0)
    out1 = mix(speech, text, f2t, sm, tm, kind="interpolation", level="token", ratio=1.0)
    assert out0.mixed.shape == (2, 4, 6) and torch.equal(out0.attention_mask, tm)
    torch.testing.assert_close(out0.mixed[0], means[0])
    torch.testing.assert_close(out0.mixed[1, :3], means[1, :3])
    torch.testing.assert_close(out1.mixed[tm], text[tm])
    assert out0.mixed[1, 3].abs().sum() == 0  # padded token zeroed
    half = mix(speech, text, f2t, sm, tm, kind="interpolation", level="token", ratio=torch.tensor([0.5, 0.25]))
    torch.testing.assert_close(half.mixed[0], 0.5 * text[0] + 0.5 * means[0])
    torch.testing.assert_close(half.text_share, torch.tensor([0.5, 0.25]))


def test_frame_level_interpolation_endpoints():
    speech, text, f2t, sm, tm = _streams()
    out0 = mix(speech, text, f2t, sm, tm, kind="interpolation", level="frame", ratio=0.0)
    out1 = mix(speech, text, f2t, sm, tm, kind="interpolation", level="frame", ratio=1.0)
    assert out0.mixed.shape == (2, 9, 6) and torch.equal(out0.attention_mask, sm)
    torch.testing.assert_close(out0.mixed[sm], speech[sm])
    for b in range(2):
        for n in range(9):
            if sm[b, n]:
                torch.testing.assert_close(out1.mixed[b, n], text[b, f2t[b, n]])


def test_discrete_mixup_probabilities():
    speech, text, f2t, sm, tm = _streams()
    keep = mix(speech, text, f2t, sm, tm, kind="discrete", level="frame", prob=0.0)
    torch.testing.assert_close(keep.mixed[sm], speech[sm])
    assert keep.text_share.sum() == 0
    replace = mix(speech, text, f2t, sm, tm, kind="discrete", level="frame", prob=1.0)
    torch.testing.assert_close(replace.mixed, mix(speech, text, f2t, sm, tm, level="frame", ratio=1.0).mixed)
    torch.testing.assert_close(replace.text_share, torch.ones(2))
    big = torch.randn(1, 4000, 2)
    f2t_big = torch.zeros(1, 4000, dtype=torch.long)
    out = mix(
        big,
        torch.randn(1, 1, 2),
        f2t_big,
        torch.ones(1, 4000).bool(),
        torch.ones(1, 1).bool(),
        kind="discrete",
        level="frame",
        prob=0.2,
    )
    assert abs(out.text_share.item() - 0.2) < 0.03


def test_tokens_without_frames_keep_their_text():
    speech, text, _, sm, tm = _streams()
    f2t = torch.tensor([[0, 0, 0, 0, 3, 3, 3, 3, 3], [0, 0, 0, 0, 0, 0, -1, -1, -1]])  # tokens 1, 2 get nothing
    out = mix(speech, text, f2t, sm, tm, kind="interpolation", level="token", ratio=0.0)
    torch.testing.assert_close(out.mixed[0, 1], text[0, 1])
    torch.testing.assert_close(out.mixed[0, 2], text[0, 2])
    torch.testing.assert_close(out.mixed[0, 0], speech[0, :4].mean(0))


def test_gradients_reach_both_streams():
    speech, text, f2t, sm, tm = _streams()
    for level in ("token", "frame"):
        speech.grad = text.grad = None
        mix(speech, text, f2t, sm, tm, kind="interpolation", level=level, ratio=0.5).mixed.sum().backward()
        assert speech.grad.abs().sum() > 0 and text.grad.abs().sum() > 0
        assert speech.grad[1, 6:].abs().sum() == 0  # padded frames get nothing


def test_unknown_kind_and_level():
    speech, text, f2t, sm, tm = _streams()
    with pytest.raises(ValueError, match="kind"):
        mix(speech, text, f2t, sm, tm, kind="cutmix")
    with pytest.raises(ValueError, match="level"):
        mix(speech, text, f2t, sm, tm, level="word")


def test_ratio_schedules():
    torch.testing.assert_close(sample_mixup_ratio(3, schedule="constant", ratio=0.3), torch.full((3,), 0.3))
    uni = sample_mixup_ratio(1000, schedule="uniform", ratio_min=0.2, ratio_max=0.6)
    assert uni.min() >= 0.2 and uni.max() <= 0.6 and abs(uni.mean().item() - 0.4) < 0.02
    beta = sample_mixup_ratio(1000, schedule="beta", ratio_min=0.0, ratio_max=1.0, beta_alpha=0.5)
    assert beta.min() >= 0.0 and beta.max() <= 1.0 and abs(beta.mean().item() - 0.5) < 0.05
    g = torch.Generator().manual_seed(3)
    a = sample_mixup_ratio(4, schedule="uniform", generator=g)
    g = torch.Generator().manual_seed(3)
    torch.testing.assert_close(a, sample_mixup_ratio(4, schedule="uniform", generator=g))
    start = sample_mixup_ratio(2, schedule="linear", ratio_min=0.1, ratio_max=0.9, progress=0.0)
    mid = sample_mixup_ratio(2, schedule="linear", ratio_min=0.1, ratio_max=0.9, progress=0.5)
    end = sample_mixup_ratio(2, schedule="linear", ratio_min=0.1, ratio_max=0.9, progress=2.0)
    torch.testing.assert_close(start, torch.full((2,), 0.9))
    torch.testing.assert_close(mid, torch.full((2,), 0.5))
    torch.testing.assert_close(end, torch.full((2,), 0.1))
    with pytest.raises(ValueError, match="schedule"):
        sample_mixup_ratio(2, schedule="cosine")
