"""Tests for `dtw_align_hf.alignment` (DTW): independent oracles, backend agreement, edge cases, input checks.

Oracles are never the code under test: a plain-Python O(N*M) dynamic programme written here, a brute force over all
monotonic paths for tiny sizes, and librosa's `sequence.dtw` with the equivalent step pattern.
"""

import itertools
import logging
import math
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from dtw_align_hf import alignment
from dtw_align_hf.alignment import ALIGNMENT_METHODS, AlignmentOutput, align, available_backends, cosine_similarity
from dtw_align_hf.import_utils import is_numba_available, is_triton_available


require_numba = pytest.mark.skipif(not is_numba_available(), reason="needs numba (extra cpu-kernels)")
require_triton = pytest.mark.skipif(not is_triton_available(), reason="needs triton (extra gpu)")
CPU_BACKENDS = ["torch"] + (["numba"] if is_numba_available() else [])


# ----------------------------------------------------------------------------------------------------------------------
# oracles
# ----------------------------------------------------------------------------------------------------------------------
def dp_oracle(S: list[list[float]]) -> tuple[list[int], float]:
    """Plain-Python DTW-Align DP (no band, no vectorisation): the path and its optimal score.

    D[0][0] = S[0][0]; D[0][m>0] = -inf; D[n][m] = S[n][m] + max(D[n-1][m], D[n-1][m-1]); backtrack from the last cell,
    advancing (to m-1) when D[n-1][m-1] >= D[n-1][m] (the documented tie rule).
    """
    N, M = len(S), len(S[0])
    D = [[-math.inf] * M for _ in range(N)]
    D[0][0] = S[0][0]
    for n in range(1, N):
        for m in range(M):
            stay = D[n - 1][m]
            adv = D[n - 1][m - 1] if m > 0 else -math.inf
            D[n][m] = S[n][m] + max(stay, adv)
    path = [0] * N
    m = M - 1
    for n in range(N - 1, 0, -1):
        path[n] = m
        if m > 0 and D[n - 1][m - 1] >= D[n - 1][m]:
            m -= 1
    path[0] = m
    return path, D[N - 1][M - 1]


def brute_force_best(S: list[list[float]]) -> float:
    """Best score over every monotonic path (each token a non-empty contiguous run of frames), by enumeration."""
    N, M = len(S), len(S[0])
    best = -math.inf
    for cuts in itertools.combinations(range(1, N), M - 1):
        bounds = (0, *cuts, N)
        score = sum(S[n][m] for m in range(M) for n in range(bounds[m], bounds[m + 1]))
        best = max(best, score)
    return best


def path_score(S: list[list[float]], path: list[int]) -> float:
    return sum(S[n][m] for n, m in enumerate(path))


def assert_valid_path(path: list[int], M: int) -> None:
    assert path[0] == 0 and path[-1] == M - 1
    assert all(b - a in (0, 1) for a, b in itertools.pairwise(path))


def random_batch(rng: random.Random, max_n: int = 30, D: int = 8, integer: bool = False):
    """A padded batch with random lengths (some infeasible, some empty), as torch tensors + masks."""
    B = rng.randint(1, 5)
    N = rng.randint(1, max_n)
    M = rng.randint(1, N + 3)
    g = torch.Generator().manual_seed(rng.randint(0, 2**31))
    speech = torch.randn(B, N, D, generator=g)
    text = torch.randn(B, M, D, generator=g)
    nlen = torch.tensor([rng.randint(0, N) for _ in range(B)])
    mlen = torch.tensor([rng.randint(0, M) for _ in range(B)])
    nlen[0], mlen[0] = N, min(M, N)  # at least one full-length feasible sample
    speech_mask = torch.arange(N) < nlen[:, None]
    text_mask = torch.arange(M) < mlen[:, None]
    similarity = torch.randint(-2, 3, (B, N, M), generator=g).float() if integer else None
    return speech, text, speech_mask, text_mask, similarity


# ----------------------------------------------------------------------------------------------------------------------
# against the oracles
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_matches_plain_python_dp_on_random_padded_batches(backend):
    rng = random.Random(0)
    checked = 0
    for _ in range(60):
        speech, text, sm, tm, _ = random_batch(rng)
        out = align(speech, text, sm, tm, backend=backend)
        S = cosine_similarity(speech, text, sm, tm)
        for b in range(speech.shape[0]):
            nb, mb = int(sm[b].sum()), int(tm[b].sum())
            f2t = out.frame_to_token[b]
            if nb == 0 or mb == 0 or nb < mb:
                assert not out.valid[b] and bool((f2t == -1).all()) and out.score[b] == float("-inf")
                continue
            assert out.valid[b]
            path = f2t[:nb].tolist()
            assert bool((f2t[nb:] == -1).all())
            assert_valid_path(path, mb)
            S_b = S[b, :nb, :mb].double().tolist()
            _, best = dp_oracle(S_b)
            assert path_score(S_b, path) == pytest.approx(best, abs=1e-5)
            assert out.score[b].item() == pytest.approx(best, abs=1e-4)
            checked += 1
    assert checked > 60


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_same_path_as_oracle_on_tie_heavy_integer_similarities(backend):
    """Integer similarities are exact in float32 and float64, so the tie rule decides, and must match the oracle."""
    rng = random.Random(1)
    for _ in range(60):
        speech, text, sm, tm, sim = random_batch(rng, integer=True)
        out = align(speech, text, sm, tm, backend=backend, similarity=sim)
        for b in range(speech.shape[0]):
            nb, mb = int(sm[b].sum()), int(tm[b].sum())
            if nb == 0 or mb == 0 or nb < mb:
                continue
            path, best = dp_oracle(sim[b, :nb, :mb].tolist())
            assert out.frame_to_token[b, :nb].tolist() == path
            assert out.score[b].item() == best


def test_brute_force_optimum_on_tiny_inputs():
    rng = random.Random(2)
    for _ in range(40):
        N = rng.randint(1, 8)
        M = rng.randint(1, N)
        sim = torch.tensor([[rng.uniform(-1, 1) for _ in range(M)] for _ in range(N)]).unsqueeze(0)
        out = align(torch.zeros(1, N, 2), torch.zeros(1, M, 2), similarity=sim, backend="torch")
        S = sim[0].double().tolist()
        path = out.frame_to_token[0].tolist()
        assert_valid_path(path, M)
        assert path_score(S, path) == pytest.approx(brute_force_best(S), abs=1e-5)


def test_matches_librosa_dtw_with_equivalent_step_pattern():
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(3)
    for _ in range(15):
        N = int(rng.integers(2, 60))
        M = int(rng.integers(1, N + 1))
        f = torch.from_numpy(rng.standard_normal((1, N, 16)).astype(np.float32))
        e = torch.from_numpy(rng.standard_normal((1, M, 16)).astype(np.float32))
        out = align(f, e, backend="torch")
        S = cosine_similarity(f, e)[0].double().numpy()
        # steps (1, 1) = advance one token, (1, 0) = stay; cost = -similarity, no additive weights
        D, wp = librosa.sequence.dtw(
            C=-S,
            step_sizes_sigma=np.array([[1, 1], [1, 0]]),
            weights_add=np.zeros(2),
            weights_mul=np.ones(2),
            backtrack=True,
        )
        wp = wp[::-1]
        assert len(wp) == N and [int(n) for n, _ in wp] == list(range(N))
        librosa_path = [int(m) for _, m in wp]
        assert -D[-1, -1] == pytest.approx(out.score[0].item(), abs=1e-4)
        assert out.frame_to_token[0].tolist() == librosa_path  # continuous random data: no exact ties


@require_numba
@pytest.mark.parametrize("parallel", [False, True])
def test_numba_agrees_with_torch_path_for_path(parallel, monkeypatch):
    from dtw_align_hf import alignment_numba

    # the serial and the prange-parallel compilation of the kernel (chosen by batch size) must both agree
    monkeypatch.setattr(alignment_numba, "PARALLEL_MIN_CELLS", 0 if parallel else 1 << 62)
    rng = random.Random(4)
    for i in range(80):
        speech, text, sm, tm, sim = random_batch(rng, max_n=50, integer=i % 2 == 0)
        a = align(speech, text, sm, tm, backend="torch", similarity=sim)
        b = align(speech, text, sm, tm, backend="numba", similarity=sim)
        assert torch.equal(a.frame_to_token, b.frame_to_token)
        assert torch.equal(a.valid, b.valid)
        assert torch.equal(a.score, b.score)


@pytest.mark.slow
@require_triton
def test_triton_kernel_in_interpreter_agrees_with_torch():
    """Triton's CPU interpreter must be switched on before triton is imported: run in a subprocess."""
    code = textwrap.dedent(
        """
        import random, torch
        from dtw_align_hf.alignment import align
        rng = random.Random(5)
        for i in range(40):
            B, N = rng.randint(1, 4), rng.randint(1, 40)
            M = rng.randint(1, N + 3)
            g = torch.Generator().manual_seed(i)
            f, e = torch.randn(B, N, 8, generator=g), torch.randn(B, M, 8, generator=g)
            sim = torch.randint(-2, 3, (B, N, M), generator=g).float() if i % 2 else None
            sm = torch.arange(N) < torch.randint(0, N + 1, (B,), generator=g)[:, None]
            tm = torch.arange(M) < torch.randint(0, M + 1, (B,), generator=g)[:, None]
            a = align(f, e, sm, tm, backend="torch", similarity=sim)
            b = align(f, e, sm, tm, backend="triton", similarity=sim)
            assert torch.equal(a.frame_to_token, b.frame_to_token), (i, a.frame_to_token, b.frame_to_token)
        out = align(torch.ones(1, 9, 4), torch.ones(1, 4, 4), backend="triton").frame_to_token
        assert out[0].tolist() == [0, 0, 0, 0, 0, 0, 1, 2, 3], out
        print("ok")
        """
    )
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    res = subprocess.run(
        [sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-3000:]


# ----------------------------------------------------------------------------------------------------------------------
# edge cases
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_single_token_takes_every_frame(backend):
    out = align(torch.randn(2, 7, 4), torch.randn(2, 1, 4), backend=backend)
    assert out.frame_to_token.tolist() == [[0] * 7, [0] * 7]
    assert out.valid.all() and out.monotonic.all() and (out.token_coverage == 1).all()


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_as_many_frames_as_tokens_is_the_diagonal(backend):
    out = align(torch.randn(3, 6, 4), torch.randn(3, 6, 4), backend=backend)
    assert out.frame_to_token.tolist() == [list(range(6))] * 3


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_fewer_frames_than_tokens_is_invalid(backend):
    speech, text = torch.randn(2, 5, 4), torch.randn(2, 6, 4)
    text_mask = torch.tensor([[1] * 6, [1] * 3 + [0] * 3])
    out = align(speech, text, None, text_mask, backend=backend)
    assert out.valid.tolist() == [False, True]
    assert out.frame_to_token[0].tolist() == [-1] * 5
    assert out.score[0] == float("-inf") and out.token_coverage[0] == 0 and not out.monotonic[0]
    assert out.frame_to_token[1, 0] == 0 and out.frame_to_token[1, -1] == 2


def test_strict_raises_with_sample_index_and_lengths():
    speech, text = torch.randn(3, 5, 4), torch.randn(3, 6, 4)
    text_mask = torch.tensor([[1] * 4 + [0] * 2, [1] * 6, [1] * 2 + [0] * 4])
    with pytest.raises(ValueError, match=r"sample 1 \(5 speech frames, 6 text tokens\).*fewer speech frames"):
        align(speech, text, None, text_mask, strict=True)
    speech_mask = torch.tensor([[1] * 5, [1] * 5, [0] * 5])
    with pytest.raises(ValueError, match=r"sample 2 \(0 speech frames, 2 text tokens\) is empty"):
        align(speech, text[:, :4], speech_mask, text_mask[:, :4], strict=True)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_all_equal_similarities_follow_the_tie_rule(backend):
    """Ties advance: token 0 takes frames 0..N-M, every later token one frame."""
    out = align(torch.ones(2, 9, 4), torch.ones(2, 4, 4), backend=backend)
    assert out.frame_to_token.tolist() == [[0, 0, 0, 0, 0, 0, 1, 2, 3]] * 2
    sim = torch.zeros(1, 5, 3)
    out = align(torch.zeros(1, 5, 2), torch.zeros(1, 3, 2), similarity=sim, backend=backend)
    assert out.frame_to_token.tolist() == [[0, 0, 0, 1, 2]]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_half_precision_inputs(dtype, backend):
    g = torch.Generator().manual_seed(6)
    speech, text = torch.randn(2, 30, 16, generator=g), torch.randn(2, 8, 16, generator=g)
    out = align(speech.to(dtype), text.to(dtype), backend=backend)
    ref = align(speech.to(dtype).float(), text.to(dtype).float(), backend=backend)
    assert out.score.dtype == torch.float32
    assert torch.equal(out.frame_to_token, ref.frame_to_token)  # computed in float32 from the same values
    assert out.valid.all()


def test_similarity_stays_float32_under_autocast():
    speech, text = torch.randn(2, 20, 16), torch.randn(2, 5, 16)
    ref = cosine_similarity(speech, text)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        S = cosine_similarity(speech, text)
        out = align(speech, text)
    assert S.dtype == torch.float32 and torch.equal(S, ref)
    assert torch.equal(out.frame_to_token, align(speech, text).frame_to_token)


def test_zero_vectors_do_not_give_nan():
    speech, text = torch.randn(2, 6, 4), torch.randn(2, 3, 4)
    speech[0, 2] = 0
    text[1, 1] = 0
    S = cosine_similarity(speech, text)
    assert torch.isfinite(S).all() and S[0, 2].eq(0).all() and S[1, :, 1].eq(0).all()
    out = align(speech, text)
    assert out.valid.all() and torch.isfinite(out.score).all()
    out = align(torch.zeros(1, 4, 3), torch.zeros(1, 2, 3))
    assert out.frame_to_token.tolist() == [[0, 0, 0, 1]] and out.score.item() == 0


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_empty_batch_and_empty_axes(backend):
    out = align(torch.zeros(0, 5, 4), torch.zeros(0, 3, 4), backend=backend)
    assert isinstance(out, AlignmentOutput)
    assert out.frame_to_token.shape == (0, 5) and out.score.shape == (0,) and out.valid.shape == (0,)
    out = align(torch.zeros(2, 0, 4), torch.zeros(2, 3, 4), backend=backend)
    assert out.frame_to_token.shape == (2, 0) and not out.valid.any()
    out = align(torch.zeros(2, 3, 4), torch.zeros(2, 0, 4), backend=backend)
    assert out.frame_to_token.tolist() == [[-1] * 3] * 2 and not out.valid.any()


def test_non_finite_similarity_marks_the_sample_invalid(caplog):
    speech, text = torch.randn(2, 6, 4), torch.randn(2, 3, 4)
    speech[1, 3, 0] = float("nan")
    out = align(speech, text)
    assert out.valid.tolist() == [True, False] and out.frame_to_token[1].eq(-1).all()
    with pytest.raises(ValueError, match="sample 1 .* NaN or inf"):
        align(speech, text, strict=True)
    sim = torch.zeros(3, 6, 3)
    sim[0, 1, 1], sim[1, 2, 0] = float("inf"), float("-inf")
    sim[2, 5, 2] = float("inf")
    out = align(speech[:1].expand(3, 6, 4), text[:1].expand(3, 3, 4), similarity=sim)
    assert out.valid.tolist() == [False, False, False]
    padded = align(speech[:1], text[:1], torch.tensor([[1, 1, 1, 1, 1, 0]]), similarity=sim[2:])
    assert padded.valid.tolist() == [True]  # the inf sits on a padded frame


def test_no_gradient_and_output_on_input_device():
    speech = torch.randn(2, 6, 4, requires_grad=True)
    text = torch.randn(2, 3, 4, requires_grad=True)
    out = align(speech, text)
    assert not out.score.requires_grad
    for t in (out.frame_to_token, out.score, out.valid, out.token_coverage, out.monotonic):
        assert t.device == speech.device
    assert out.frame_to_token.dtype == torch.long and out.valid.dtype == torch.bool
    assert out.token_coverage.dtype == torch.float32


def test_timing_only_when_asked(monkeypatch):
    calls = []
    monkeypatch.setattr(alignment, "_synchronize", lambda device: calls.append(device))
    speech, text = torch.randn(2, 6, 4), torch.randn(2, 3, 4)
    for method in ALIGNMENT_METHODS:
        assert align(speech, text, method=method).seconds is None
    assert calls == []  # no synchronisation (and no clock) without timed=True
    out = align(speech, text, timed=True)
    assert isinstance(out.seconds, float) and out.seconds >= 0 and len(calls) == 2


def test_cosine_similarity_masks_padding_and_matches_definition():
    speech, text = torch.randn(2, 5, 8), torch.randn(2, 4, 8)
    sm = torch.tensor([[1, 1, 1, 0, 0], [1] * 5])
    tm = torch.tensor([[1] * 4, [1, 1, 0, 0]])
    S = cosine_similarity(speech, text, sm, tm)
    ref = torch.nn.functional.cosine_similarity(speech.unsqueeze(2), text.unsqueeze(1), dim=-1)
    assert S.dtype == torch.float32 and S.shape == (2, 5, 4)
    torch.testing.assert_close(S[0, :3], ref[0, :3], atol=1e-6, rtol=1e-5)
    assert S[0, 3:].eq(0).all() and S[1, :, 2:].eq(0).all()


def test_precomputed_similarity_is_used():
    sim = torch.zeros(1, 6, 3)
    sim[0, :2, 0] = sim[0, 2:5, 1] = sim[0, 5, 2] = 1
    out = align(torch.randn(1, 6, 4), torch.randn(1, 3, 4), similarity=sim)
    assert out.frame_to_token.tolist() == [[0, 0, 1, 1, 1, 2]] and out.score.item() == 6


# ----------------------------------------------------------------------------------------------------------------------
# input checks, registry, fallback
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"speech": torch.randn(5, 4)}, r"`speech` must have shape \(B, length, D\), got \(5, 4\)"),
        ({"text": torch.randn(3, 3, 4)}, "same batch size"),
        ({"text": torch.randn(2, 3, 5)}, "same embedding width D"),
        ({"speech": torch.randint(0, 3, (2, 5, 4))}, "floating-point"),
        ({"speech_mask": torch.ones(2, 4)}, r"`speech_mask` must have shape \(2, 5\)"),
        ({"speech_mask": torch.tensor([[1, 1, 0, 1, 1], [1] * 5])}, "sample 0 has padding before real positions"),
        ({"text_mask": torch.full((2, 3), 2)}, "bool or integer 0/1"),
        ({"text_mask": torch.ones(2, 3) * 0.5}, "bool or integer 0/1"),
        ({"similarity": torch.randn(2, 5, 4)}, r"`similarity` must have shape \(B, N, M\) = \(2, 5, 3\)"),
        ({"method": "sinkhorn"}, "Unknown alignment method 'sinkhorn'"),
        ({"backend": "cuda"}, "Unknown alignment backend 'cuda'"),
        ({"backend": "loop"}, "Unknown DTW backend 'loop'"),
        ({"normalization": "zscore"}, "Unknown similarity normalization 'zscore'"),
        ({"normalization": "csls", "csls_k": 0}, "`csls_k` must be an integer >= 1"),
        ({"diagonal_prior": -0.5}, "`diagonal_prior` must be a finite number >= 0"),
        ({"diagonal_prior": float("nan")}, "`diagonal_prior` must be a finite number >= 0"),
        ({"diagonal_prior": float("inf")}, "`diagonal_prior` must be a finite number >= 0"),
        ({"diagonal_prior": True}, "`diagonal_prior` must be a finite number >= 0"),
        ({"window": -1, "method": "cmot"}, "`window` must be an integer >= 0"),
    ],
)
def test_bad_inputs_raise_clear_errors(kwargs, match):
    args = {"speech": torch.randn(2, 5, 4), "text": torch.randn(2, 3, 4), **kwargs}
    speech, text = args.pop("speech"), args.pop("text")
    with pytest.raises(ValueError, match=match):
        align(speech, text, **args)


def test_methods_and_alias_accepted():
    speech, text = torch.randn(2, 12, 4), torch.randn(2, 5, 4)
    for method in (*ALIGNMENT_METHODS, "ot"):
        out = align(speech, text, method=method)
        assert out.frame_to_token.shape == (2, 12) and out.valid.all()


def test_explicit_missing_backend_names_the_extra(monkeypatch):
    monkeypatch.setitem(alignment._BACKEND_AVAILABLE, "numba", lambda: False)
    monkeypatch.setitem(alignment._BACKEND_AVAILABLE, "triton", lambda: False)
    with pytest.raises(ImportError, match=r"pip install dtw-align-hf\[cpu-kernels\]"):
        align(torch.randn(1, 4, 2), torch.randn(1, 2, 2), backend="numba")
    with pytest.raises(ImportError, match=r"pip install dtw-align-hf\[gpu\]"):
        align(torch.randn(1, 4, 2), torch.randn(1, 2, 2), backend="triton")


def test_triton_backend_refuses_cpu_tensors_without_interpreter(monkeypatch):
    pytest.importorskip("triton")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="runs on CUDA tensors"):
        align(torch.randn(1, 4, 2), torch.randn(1, 2, 2), backend="triton")


def _patch_broken_kernel(monkeypatch, error: BaseException, kernel_errors=(RuntimeError,)):
    def broken(*args):
        raise error

    monkeypatch.setattr(alignment, "_auto_backend", lambda device, num_tokens=0: "numba")
    monkeypatch.setitem(alignment._BACKEND_AVAILABLE, "numba", lambda: True)
    monkeypatch.setitem(alignment._DTW_BACKEND_LOADERS, "numba", lambda: (broken, kernel_errors))


def test_auto_falls_back_to_torch_with_one_warning(monkeypatch, caplog):
    _patch_broken_kernel(monkeypatch, RuntimeError("kernel exploded (test_auto_falls_back)"))
    speech, text = torch.randn(2, 8, 4), torch.randn(2, 3, 4)
    with caplog.at_level(logging.WARNING):
        out = align(speech, text)
    assert torch.equal(out.frame_to_token, align(speech, text, backend="torch").frame_to_token)
    assert "falling back to a slower torch" in caplog.text and "kernel exploded" in caplog.text


def test_auto_fallback_is_narrow_a_bug_propagates(monkeypatch):
    """Only the kernel's own failure types fall back; any other error (a bug) is raised, never hidden."""
    _patch_broken_kernel(monkeypatch, TypeError("a bug in the caller (test_auto_fallback_is_narrow)"))
    with pytest.raises(TypeError, match="a bug in the caller"):
        align(torch.randn(2, 8, 4), torch.randn(2, 3, 4))
    _patch_broken_kernel(monkeypatch, ValueError("bad value"))
    with pytest.raises(ValueError, match="bad value"):
        align(torch.randn(2, 8, 4), torch.randn(2, 3, 4))


@require_numba
def test_numba_kernel_errors_include_numbas_typing_errors(monkeypatch, caplog):
    from numba.core.errors import TypingError

    from dtw_align_hf.alignment_numba import KERNEL_ERRORS

    assert issubclass(TypingError, KERNEL_ERRORS) and issubclass(RuntimeError, KERNEL_ERRORS)
    _patch_broken_kernel(monkeypatch, TypingError("cannot type (test)"), KERNEL_ERRORS)
    speech, text = torch.randn(2, 8, 4), torch.randn(2, 3, 4)
    with caplog.at_level(logging.WARNING):
        out = align(speech, text)
    assert torch.equal(out.frame_to_token, align(speech, text, backend="torch").frame_to_token)
    assert "TypingError" in caplog.text


def test_available_backends_and_auto_choice():
    assert available_backends("cpu")[-1] == "torch"
    expected = "numba" if is_numba_available() else "torch"
    assert alignment._auto_backend(torch.device("cpu")) == expected
