"""Tests for `align`'s options and contracts beyond the DP itself: similarity normalisations, the diagonal prior,
non-finite inputs for every method, padding that never leaks, no host-device synchronisation, the import graph.

Oracles are written here in plain Python (lists, float64): the normalisations and the prior from their definitions,
the DP from `tests/test_alignment.py`.
"""

import ast
import math
import random
from pathlib import Path

import pytest
import torch

from dtw_align_hf import alignment
from dtw_align_hf.alignment import (
    ALIGNMENT_METHODS,
    SIMILARITY_NORMALIZATIONS,
    align,
    cosine_similarity,
    diagonal_penalty,
    normalize_similarity,
)
from dtw_align_hf.import_utils import is_numba_available
from tests.test_alignment import assert_valid_path, dp_oracle, path_score


CPU_BACKENDS = ["torch"] + (["numba"] if is_numba_available() else [])
CORRECTIONS = [(norm, 0.0) for norm in SIMILARITY_NORMALIZATIONS] + [("none", 0.7), ("token_center", 2.0)]


# ----------------------------------------------------------------------------------------------------------------------
# plain-Python oracles of the corrections (one sample, real part only)
# ----------------------------------------------------------------------------------------------------------------------
def oracle_normalize(S: list[list[float]], normalization: str, k: int = 10, eps: float = 1e-6) -> list[list[float]]:
    N, M = len(S), len(S[0])
    if normalization == "none":
        return [row[:] for row in S]
    cols = [[S[n][m] for n in range(N)] for m in range(M)]
    if normalization in ("token_center", "token_zscore"):
        mean = [sum(c) / N for c in cols]
        std = [math.sqrt(sum((x - mu) ** 2 for x in c) / N) for c, mu in zip(cols, mean, strict=True)]
        if normalization == "token_center":
            return [[S[n][m] - mean[m] for m in range(M)] for n in range(N)]
        return [[(S[n][m] - mean[m]) / max(std[m], eps) for m in range(M)] for n in range(N)]
    assert normalization == "csls"
    r_token = [sum(sorted(c, reverse=True)[:k]) / min(k, N) for c in cols]
    r_frame = [sum(sorted(row, reverse=True)[:k]) / min(k, M) for row in S]
    return [[2 * S[n][m] - r_frame[n] - r_token[m] for m in range(M)] for n in range(N)]


def oracle_prior(N: int, M: int) -> list[list[float]]:
    return [[abs((n + 0.5) / N - (m + 0.5) / M) for m in range(M)] for n in range(N)]


def oracle_corrected(S: list[list[float]], normalization: str, prior: float, k: int = 10) -> list[list[float]]:
    T = oracle_normalize(S, normalization, k)
    P = oracle_prior(len(S), len(S[0]))
    return [[T[n][m] - prior * P[n][m] for m in range(len(S[0]))] for n in range(len(S))]


def padded_batch(seed: int, B: int = 4, N: int = 24, M: int = 9, D: int = 8, garbage: float = 50.0):
    """Random embeddings with random right padding; padded positions hold large garbage (it must never matter)."""
    g = torch.Generator().manual_seed(seed)
    speech, text = torch.randn(B, N, D, generator=g), torch.randn(B, M, D, generator=g)
    nlen = torch.randint(M, N + 1, (B,), generator=g)
    mlen = torch.randint(1, M + 1, (B,), generator=g)
    nlen[0], mlen[0] = N, M
    sm, tm = torch.arange(N) < nlen[:, None], torch.arange(M) < mlen[:, None]
    speech = torch.where(sm[..., None], speech, garbage * torch.randn(B, N, D, generator=g))
    text = torch.where(tm[..., None], text, garbage * torch.randn(B, M, D, generator=g))
    return speech, text, sm, tm


# ----------------------------------------------------------------------------------------------------------------------
# the corrections against their definitions
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("normalization", SIMILARITY_NORMALIZATIONS)
def test_normalize_similarity_matches_its_definition_per_sample(normalization):
    speech, text, sm, tm = padded_batch(0)
    S = cosine_similarity(speech, text, sm, tm)
    out = normalize_similarity(S, sm, tm, normalization=normalization, csls_k=4)
    assert out.dtype == torch.float32 and out.shape == S.shape
    for b in range(S.shape[0]):
        nb, mb = int(sm[b].sum()), int(tm[b].sum())
        ref = torch.tensor(oracle_normalize(S[b, :nb, :mb].double().tolist(), normalization, k=4), dtype=torch.float64)
        torch.testing.assert_close(out[b, :nb, :mb].double(), ref, atol=2e-6, rtol=1e-5)
        assert out[b, nb:].eq(0).all() and out[b, :, mb:].eq(0).all()  # padding stays 0


def test_csls_k_larger_than_the_sample_uses_every_real_neighbour():
    speech, text, sm, tm = padded_batch(1, N=6, M=5)
    S = cosine_similarity(speech, text, sm, tm)
    out = normalize_similarity(S, sm, tm, normalization="csls", csls_k=50)
    for b in range(S.shape[0]):
        nb, mb = int(sm[b].sum()), int(tm[b].sum())
        ref = torch.tensor(oracle_normalize(S[b, :nb, :mb].double().tolist(), "csls", k=50), dtype=torch.float64)
        torch.testing.assert_close(out[b, :nb, :mb].double(), ref, atol=2e-6, rtol=1e-5)


def test_zscore_of_a_constant_token_is_zero_not_nan():
    S = torch.ones(1, 5, 2)
    S[0, :, 1] = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    out = normalize_similarity(S, normalization="token_zscore")
    assert torch.isfinite(out).all() and out[0, :, 0].eq(0).all()
    torch.testing.assert_close(out[0, :, 1].mean(), torch.tensor(0.0), atol=1e-6, rtol=0)


def test_diagonal_penalty_matches_its_definition_and_masks_padding():
    sm = torch.tensor([[1] * 7, [1] * 4 + [0] * 3])
    tm = torch.tensor([[1] * 3, [1, 1, 0]])
    P = diagonal_penalty(sm, tm)
    assert P.shape == (2, 7, 3) and P.dtype == torch.float32
    torch.testing.assert_close(P[0].double(), torch.tensor(oracle_prior(7, 3), dtype=torch.float64), atol=1e-7, rtol=0)
    torch.testing.assert_close(
        P[1, :4, :2].double(), torch.tensor(oracle_prior(4, 2), dtype=torch.float64), atol=1e-7, rtol=0
    )
    assert P[1, 4:].eq(0).all() and P[1, :, 2:].eq(0).all()


# ----------------------------------------------------------------------------------------------------------------------
# align() with the corrections: the DP oracle on the corrected matrix, every backend, padding never leaks
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize(("normalization", "prior"), CORRECTIONS)
def test_dtw_on_the_corrected_similarity_is_optimal(backend, normalization, prior):
    for seed in range(6):
        speech, text, sm, tm = padded_batch(seed)
        out = align(speech, text, sm, tm, backend=backend, normalization=normalization, diagonal_prior=prior)
        S = cosine_similarity(speech, text, sm, tm)
        for b in range(speech.shape[0]):
            nb, mb = int(sm[b].sum()), int(tm[b].sum())
            raw = S[b, :nb, :mb].double().tolist()
            T = oracle_corrected(raw, normalization, prior)
            path = out.frame_to_token[b, :nb].tolist()
            assert_valid_path(path, mb)
            _, best = dp_oracle(T)
            assert path_score(T, path) == pytest.approx(best, abs=1e-4)
            # the score is the uncorrected similarity along the path (comparable across corrections)
            assert out.score[b].item() == pytest.approx(path_score(raw, path), abs=1e-4)


@pytest.mark.parametrize(("normalization", "prior"), CORRECTIONS)
def test_nn_and_cmot_take_the_best_token_of_the_corrected_similarity(normalization, prior):
    speech, text, sm, tm = padded_batch(7)
    S = cosine_similarity(speech, text, sm, tm)
    nn = align(speech, text, sm, tm, method="nn", normalization=normalization, diagonal_prior=prior)
    cmot = align(speech, text, sm, tm, method="cmot", window=2, normalization=normalization, diagonal_prior=prior)
    for b in range(speech.shape[0]):
        nb, mb = int(sm[b].sum()), int(tm[b].sum())
        T = oracle_corrected(S[b, :nb, :mb].double().tolist(), normalization, prior)
        for n in range(nb):
            assert T[n][nn.frame_to_token[b, n]] == pytest.approx(max(T[n]), abs=1e-5)
            if normalization == "none" and prior == 0:
                continue  # uncorrected, CMOT keeps its released L2 cost (tests/test_alignment_cmot.py)
            # corrected, CMOT takes the best token of the corrected similarity in its window around the diagonal,
            # [floor(c - 2), ceil(c + 2)) with c = n * mb / nb
            c = n * mb / nb
            lo, hi = max(0, math.floor(c - 2)), min(mb, math.ceil(c + 2))
            assert lo <= cmot.frame_to_token[b, n] < hi
            assert T[n][cmot.frame_to_token[b, n]] == pytest.approx(max(T[n][lo:hi]), abs=1e-5)


@pytest.mark.parametrize("method", ["dtw", "nn", "cmot", "uniform"])
@pytest.mark.parametrize(("normalization", "prior"), CORRECTIONS)
def test_padded_batch_gives_the_same_path_as_each_sample_alone(method, normalization, prior):
    """Padding (filled with large garbage here) must not enter any statistic: same path alone and in a batch."""
    speech, text, sm, tm = padded_batch(8)
    kwargs = {"method": method, "normalization": normalization, "diagonal_prior": prior}
    for backend in CPU_BACKENDS if method == "dtw" else ["auto"]:
        batch = align(speech, text, sm, tm, backend=backend, **kwargs)
        for b in range(speech.shape[0]):
            nb, mb = int(sm[b].sum()), int(tm[b].sum())
            alone = align(speech[b : b + 1, :nb], text[b : b + 1, :mb], backend=backend, **kwargs)
            assert torch.equal(batch.frame_to_token[b, :nb], alone.frame_to_token[0])
            assert batch.frame_to_token[b, nb:].eq(-1).all()
            assert batch.score[b].item() == pytest.approx(alone.score.item(), abs=1e-5)


@pytest.mark.skipif(len(CPU_BACKENDS) < 2, reason="needs numba (extra cpu-kernels)")
@pytest.mark.parametrize(("normalization", "prior"), CORRECTIONS)
def test_backends_agree_path_for_path_on_corrected_similarities(normalization, prior):
    rng = random.Random(9)
    for _ in range(10):
        seed = rng.randint(0, 10**6)
        speech, text, sm, tm = padded_batch(seed, B=rng.randint(1, 5), N=rng.randint(10, 40), M=rng.randint(1, 10))
        kwargs = {"normalization": normalization, "diagonal_prior": prior}
        ref = align(speech, text, sm, tm, backend="torch", **kwargs)
        out = align(speech, text, sm, tm, backend="numba", **kwargs)
        assert torch.equal(ref.frame_to_token, out.frame_to_token) and torch.equal(ref.score, out.score)


def test_token_centring_undoes_a_planted_hub_token():
    """A token similar to every frame (a hub: a horizontal stripe in the plot) absorbs the frames of its neighbours;
    subtracting each token's mean over the frames restores the planted path."""
    truth = [0] * 4 + [1] * 4 + [2] * 4
    S = torch.zeros(1, 12, 3)
    S[0, torch.arange(12), torch.tensor(truth)] = 1.0
    S[0, :, 1] += 1.5  # the hub
    speech, text = torch.zeros(1, 12, 2), torch.zeros(1, 3, 2)
    plain = align(speech, text, similarity=S).frame_to_token[0].tolist()
    assert plain == [0] + [1] * 10 + [2]
    for normalization in ("token_center", "token_zscore", "csls"):
        fixed = align(speech, text, similarity=S, normalization=normalization, csls_k=4).frame_to_token[0].tolist()
        assert fixed == truth, normalization


@pytest.mark.parametrize(("N", "M"), [(13, 5), (40, 7), (9, 9), (30, 1)])
def test_a_strong_diagonal_prior_gives_the_length_proportional_path(N, M):
    """With S negligible next to w * P, each frame takes the token whose centre is nearest its own centre:
    m = floor((n + 0.5) * M / N) (M odd: no ties)."""
    g = torch.Generator().manual_seed(N)
    out = align(torch.randn(2, N, 4, generator=g), torch.randn(2, M, 4, generator=g), diagonal_prior=1e4)
    expected = [math.floor((n + 0.5) * M / N) for n in range(N)]
    assert out.frame_to_token.tolist() == [expected, expected]


# ----------------------------------------------------------------------------------------------------------------------
# non-finite inputs: every method agrees (issue 11, item 11)
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", [*ALIGNMENT_METHODS, "ot"])
@pytest.mark.parametrize("where", ["speech_nan", "speech_inf", "text_nan", "text_inf"])
def test_non_finite_embeddings_are_invalid_for_every_method(method, where):
    g = torch.Generator().manual_seed(10)
    speech, text = torch.randn(3, 8, 4, generator=g), torch.randn(3, 3, 4, generator=g)
    bad = float("nan") if where.endswith("nan") else float("inf")
    if where.startswith("speech"):
        speech[1, 5, 2] = bad
    else:
        text[1, 2, 0] = bad
    out = align(speech, text, method=method)
    assert out.valid.tolist() == [True, False, True]
    assert out.frame_to_token[1].eq(-1).all() and out.score[1].item() == float("-inf")
    assert torch.isfinite(out.score[[0, 2]]).all()
    assert out.token_coverage[1] == 0 and not out.monotonic[1]
    with pytest.raises(ValueError, match=r"sample 1 \(8 speech frames, 3 text tokens\) has NaN or inf"):
        align(speech, text, method=method, strict=True)


@pytest.mark.parametrize("method", ALIGNMENT_METHODS)
def test_non_finite_values_on_padding_are_ignored_by_every_method(method):
    speech, text = torch.randn(2, 8, 4), torch.randn(2, 3, 4)
    speech[0, 7] = float("nan")
    text[1, 2] = float("inf")
    sm = torch.tensor([[1] * 7 + [0], [1] * 8])
    tm = torch.tensor([[1, 1, 1], [1, 1, 0]])
    out = align(speech, text, sm, tm, method=method)
    assert out.valid.all() and torch.isfinite(out.score).all()


# ----------------------------------------------------------------------------------------------------------------------
# no host-device synchronisation in the non-timed path
# ----------------------------------------------------------------------------------------------------------------------
class _SyncCounter:
    """Patches the Tensor methods that copy a device value to the host; counts (or forbids) their calls."""

    NAMES = ("__bool__", "item", "tolist", "__int__", "__float__", "__index__", "cpu", "numpy")

    def __init__(self, monkeypatch):
        self.calls: list[str] = []
        for name in self.NAMES:
            original = getattr(torch.Tensor, name)

            def counted(self_, *args, _name=name, _original=original, **kwargs):
                self.calls.append(_name)
                return _original(self_, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, counted)


@pytest.mark.parametrize("method", ALIGNMENT_METHODS)
@pytest.mark.parametrize("normalization", SIMILARITY_NORMALIZATIONS)
def test_align_makes_no_host_sync_except_the_one_mask_check(monkeypatch, method, normalization):
    speech, text, sm, tm = padded_batch(11)
    kwargs = {"method": method, "backend": "torch", "normalization": normalization, "diagonal_prior": 0.5}
    counter = _SyncCounter(monkeypatch)
    align(speech, text, **kwargs)
    assert counter.calls == []
    align(speech, text, sm, tm, **kwargs)
    assert counter.calls == ["__bool__"]  # one check of both masks (needed for its error message)


# ----------------------------------------------------------------------------------------------------------------------
# the import graph of the alignment files
# ----------------------------------------------------------------------------------------------------------------------
def test_alignment_files_import_flat_siblings_without_a_cycle():
    """The model ships these files for `trust_remote_code`: single-dot relative imports of flat siblings only, and
    no import cycle (the baselines never import `alignment.py`)."""
    package = Path(alignment.__file__).parent
    graph = {}
    for path in sorted(package.glob("alignment*.py")):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1 and node.module and "." not in node.module, (path.name, node.module)
                assert (package / f"{node.module}.py").is_file(), (path.name, node.module)
                deps.add(node.module)
        graph[path.stem] = deps
    assert "alignment" not in graph["alignment_cmot"] and "alignment" not in graph["alignment_utils"]

    def reaches(start, target, seen=()):
        return any(d == target or (d not in seen and reaches(d, target, (*seen, d))) for d in graph.get(start, ()))

    assert not any(reaches(name, name) for name in graph)
