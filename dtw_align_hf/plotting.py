"""`plot_alignment`: the similarity matrix of one utterance with its alignment path and reference spans, as a PNG.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend change, works headless).
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def plot_alignment(
    similarity,
    frame_to_token,
    path: str | Path | None = None,
    *,
    reference_spans: Sequence[tuple[float, float]] | None = None,
    tokens: Sequence[str] | None = None,
    title: str | None = None,
    frame_rate: float | None = None,
    dpi: int = 120,
):
    """Draw one utterance's similarity matrix, its frame -> token path and (optionally) reference spans.

    Frames run along the x axis, tokens up the y axis (token 0 at the bottom), so a monotonic alignment is a staircase
    from the lower left to the upper right. Trailing frames marked -1 (padding) are cropped.

    Args:
        similarity (`torch.Tensor` or `np.ndarray` of shape `(N, M)` or `(1, N, M)`):
            Frame x token similarity, e.g. `cosine_similarity(speech, text)[b]`.
        frame_to_token (`torch.Tensor` or `np.ndarray` of shape `(N,)` or `(1, N)`):
            The token of each frame (`AlignmentOutput.frame_to_token[b]`), -1 where unassigned.
        path (`str` or `Path`, *optional*): where to write the PNG (folders are created). None: only return the figure.
        reference_spans (`list[tuple]`, *optional*):
            Per token, its reference frame range `[start, end)` (e.g. from `metrics.words_to_token_spans`); drawn as
            outlined boxes in the token's row. `(-1, -1)` entries are skipped.
        tokens (`list[str]`, *optional*): token strings for the y-axis labels (one per token).
        title (`str`, *optional*): figure title.
        frame_rate (`float`, *optional*): frames per second; adds a seconds axis on top.
        dpi (`int`): resolution of the PNG.

    Returns:
        `matplotlib.figure.Figure`: the figure (also written to `path` when given).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    S = _to_numpy(similarity).astype(np.float32)
    f2t = _to_numpy(frame_to_token).astype(np.int64)
    if S.ndim == 3 and S.shape[0] == 1:
        S = S[0]
    if f2t.ndim == 2 and f2t.shape[0] == 1:
        f2t = f2t[0]
    if S.ndim != 2 or f2t.ndim != 1 or f2t.shape[0] != S.shape[0]:
        raise ValueError(
            f"`similarity` must be (N, M) and `frame_to_token` (N,) for one utterance, got {S.shape} and {f2t.shape}; "
            "index the batch first, e.g. plot_alignment(sim[b], out.frame_to_token[b])."
        )
    assigned = np.nonzero(f2t >= 0)[0]
    N = int(assigned[-1]) + 1 if assigned.size else S.shape[0]
    M = S.shape[1]
    if tokens is not None:
        if len(tokens) > M:
            raise ValueError(f"Got {len(tokens)} token labels for a similarity with {M} tokens.")
        M = len(tokens)
    S, f2t = S[:N, :M], f2t[:N]

    width = min(max(6.0, 0.05 * N + 2.5), 24.0)
    height = min(max(3.5, 0.22 * M + 1.5), 16.0)
    fig = Figure(figsize=(width, height), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(S.T, origin="lower", aspect="auto", interpolation="nearest", cmap="viridis")
    fig.colorbar(im, ax=ax, label="cosine similarity", fraction=0.04, pad=0.01)

    if reference_spans is not None:
        for m, (start, end) in enumerate(list(reference_spans)[:M]):
            if start is None or start < 0:
                continue
            ax.add_patch(
                Rectangle(
                    (start - 0.5, m - 0.5),
                    end - start,
                    1.0,
                    facecolor="none",
                    edgecolor="white",
                    linestyle="--",
                    linewidth=1.4,
                    label="reference" if m == 0 else None,
                )
            )
    frames = np.nonzero(f2t >= 0)[0]
    if frames.size:
        ax.plot(frames, f2t[frames], color="red", linewidth=1.5, marker=".", markersize=3, label="alignment")
    if tokens is not None:
        ax.set_yticks(range(M))
        ax.set_yticklabels(list(tokens), fontsize=max(5, min(9, int(300 / max(M, 1)))))
    ax.set_xlim(-0.5, N - 0.5)
    ax.set_ylim(-0.5, M - 0.5)
    ax.set_xlabel("speech frame")
    ax.set_ylabel("text token")
    if frame_rate:
        top = ax.secondary_xaxis("top", functions=(lambda x: x / frame_rate, lambda s: s * frame_rate))
        top.set_xlabel("seconds")
    handles, _ = ax.get_legend_handles_labels()
    if handles:  # outside the axes, so it never hides the path
        fig.legend(loc="outside lower center", ncols=len(handles), fontsize=8, facecolor="lightgray")
    if title:
        ax.set_title(title)
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png")
    return fig


__all__ = ["plot_alignment"]
