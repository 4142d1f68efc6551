"""Tests for `dtw_align_hf.plotting.plot_alignment`."""

import pytest
import torch

from dtw_align_hf.alignment import align, cosine_similarity
from dtw_align_hf.plotting import plot_alignment


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _example():
    g = torch.Generator().manual_seed(0)
    text = torch.randn(1, 5, 16, generator=g)
    truth = torch.tensor([0, 0, 1, 2, 2, 2, 3, 4, 4])
    speech = text[0, truth].unsqueeze(0) + 0.5 * torch.randn(1, len(truth), 16, generator=g)
    return speech, text


def test_writes_a_readable_png_with_path_references_and_labels(tmp_path):
    speech, text = _example()
    out = align(speech, text)
    spans = [(0, 2), (2, 3), (3, 6), (6, 7), (-1, -1)]
    target = tmp_path / "plots" / "alignment.png"
    fig = plot_alignment(
        cosine_similarity(speech, text)[0],
        out.frame_to_token[0],
        target,
        reference_spans=spans,
        tokens=["▁a", "b", "▁c", "d", "</s>"],
        title="test",
        frame_rate=12.5,
    )
    data = target.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["▁a", "b", "▁c", "d", "</s>"]
    assert len(ax.patches) == 4  # one box per token with a reference span
    (line,) = ax.get_lines()
    assert list(line.get_ydata()) == out.frame_to_token[0].tolist()


def test_batch_of_one_and_padding_are_accepted(tmp_path):
    speech, text = _example()
    mask = torch.arange(9) < 7
    out = align(speech, text, mask.unsqueeze(0))
    fig = plot_alignment(cosine_similarity(speech, text), out.frame_to_token, tmp_path / "a.png")
    assert fig.axes[0].get_xlim() == (-0.5, 6.5)  # padded frames cropped
    assert plot_alignment(cosine_similarity(speech, text)[0], out.frame_to_token[0]) is not None  # no file


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="index the batch first"):
        plot_alignment(torch.zeros(2, 9, 5), torch.zeros(2, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="3 token labels for a similarity with 2 tokens"):
        plot_alignment(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), tokens=["a", "b", "c"])
