"""GPU tests for the alignment (Triton kernel == torch reference, path for path). Run with `pytest -m gpu`.

They skip cleanly on machines without CUDA or without Triton.
"""

import random

import pytest
import torch

from dtw_align_hf import alignment
from dtw_align_hf.alignment import align
from dtw_align_hf.import_utils import is_numba_available, is_triton_available


pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    pytest.mark.skipif(not is_triton_available(), reason="needs triton (extra gpu)"),
]


def _batch(rng: random.Random, max_n: int, max_m: int, D: int = 32, integer: bool = False):
    B = rng.randint(1, 8)
    N = rng.randint(1, max_n)
    M = rng.randint(1, min(max_m, N + 3))
    g = torch.Generator().manual_seed(rng.randint(0, 2**31))
    speech, text = torch.randn(B, N, D, generator=g), torch.randn(B, M, D, generator=g)
    nlen = torch.tensor([rng.randint(0, N) for _ in range(B)])
    mlen = torch.tensor([rng.randint(0, M) for _ in range(B)])
    nlen[0], mlen[0] = N, min(M, N)
    sm, tm = torch.arange(N) < nlen[:, None], torch.arange(M) < mlen[:, None]
    sim = torch.randint(-2, 3, (B, N, M), generator=g).float() if integer else None
    return speech, text, sm, tm, sim


def test_triton_agrees_with_torch_path_for_path():
    rng = random.Random(0)
    for i in range(60):
        speech, text, sm, tm, sim = _batch(rng, max_n=300, max_m=140, integer=i % 3 == 0)
        cpu = align(speech, text, sm, tm, backend="torch", similarity=sim)
        args = [t.cuda() if t is not None else None for t in (speech, text, sm, tm, sim)]
        gpu_torch = align(*args[:4], backend="torch", similarity=args[4])
        gpu_triton = align(*args[:4], backend="triton", similarity=args[4])
        assert gpu_triton.frame_to_token.is_cuda
        assert torch.equal(gpu_triton.frame_to_token.cpu(), gpu_torch.frame_to_token.cpu())
        assert torch.equal(gpu_triton.valid.cpu(), cpu.valid)
        if sim is not None:  # exact similarities: CPU and GPU must agree too
            assert torch.equal(gpu_triton.frame_to_token.cpu(), cpu.frame_to_token)


def test_triton_on_the_benchmark_shapes_and_many_tokens():
    for B, N, M, D in [(16, 400, 40, 512), (32, 1000, 100, 768), (2, 1500, 700, 64)]:
        g = torch.Generator(device="cuda").manual_seed(B)
        speech = torch.randn(B, N, D, device="cuda", generator=g)
        text = torch.randn(B, M, D, device="cuda", generator=g)
        sim = alignment.cosine_similarity(speech, text)
        a = align(speech, text, backend="torch", similarity=sim)
        b = align(speech, text, backend="triton", similarity=sim)
        assert torch.equal(a.frame_to_token, b.frame_to_token) and b.valid.all() and b.monotonic.all()
        if is_numba_available():
            c = align(speech, text, backend="numba", similarity=sim)
            assert torch.equal(a.frame_to_token, c.frame_to_token)


def test_auto_picks_triton_on_cuda_and_handles_half_precision():
    assert alignment._auto_backend(torch.device("cuda")) == "triton"
    speech = torch.randn(4, 120, 64, device="cuda")
    text = torch.randn(4, 30, 64, device="cuda")
    for dtype in (torch.float16, torch.bfloat16):
        out = align(speech.to(dtype), text.to(dtype))
        ref = align(speech.to(dtype), text.to(dtype), backend="torch")
        assert torch.equal(out.frame_to_token, ref.frame_to_token) and out.score.dtype == torch.float32


def test_tie_rule_and_edge_cases_on_gpu():
    out = align(torch.ones(2, 9, 4, device="cuda"), torch.ones(2, 4, 4, device="cuda"), backend="triton")
    assert out.frame_to_token.tolist() == [[0, 0, 0, 0, 0, 0, 1, 2, 3]] * 2
    out = align(torch.randn(2, 5, 4, device="cuda"), torch.randn(2, 6, 4, device="cuda"), backend="triton")
    assert not out.valid.any() and out.frame_to_token.eq(-1).all()
    out = align(torch.zeros(0, 5, 4, device="cuda"), torch.zeros(0, 3, 4, device="cuda"), backend="triton")
    assert out.frame_to_token.shape == (0, 5)
    out = align(torch.randn(3, 7, 4, device="cuda"), torch.randn(3, 1, 4, device="cuda"), backend="triton")
    assert out.frame_to_token.eq(0).all()


@pytest.mark.parametrize(
    ("normalization", "prior"), [("token_center", 0.0), ("token_zscore", 0.0), ("csls", 0.0), ("none", 0.7)]
)
def test_triton_agrees_with_torch_on_corrected_similarities(normalization, prior):
    """The corrections run in torch before dispatch: Triton sees the same matrix and picks the same paths."""
    rng = random.Random(1)
    for _ in range(15):
        speech, text, sm, tm, _ = _batch(rng, max_n=200, max_m=60)
        args = [t.cuda() for t in (speech, text, sm, tm)]
        kwargs = {"normalization": normalization, "diagonal_prior": prior}
        gpu_torch = align(*args, backend="torch", **kwargs)
        gpu_triton = align(*args, backend="triton", **kwargs)
        assert torch.equal(gpu_triton.frame_to_token, gpu_torch.frame_to_token)
        assert torch.equal(gpu_triton.valid, gpu_torch.valid)


def test_timing_is_opt_in_on_cuda():
    speech, text = torch.randn(2, 50, 16, device="cuda"), torch.randn(2, 10, 16, device="cuda")
    assert align(speech, text).seconds is None
    out = align(speech, text, timed=True)
    assert isinstance(out.seconds, float) and out.seconds > 0
