import pytest
import torch
import torch.nn.functional as F

from dtw_align_hf.losses import label_smoothed_cross_entropy, symmetric_kl, weighted_total


def _logits_labels(b=2, length=5, vocab=11):
    logits = torch.randn(b, length, vocab)
    labels = torch.randint(0, vocab, (b, length))
    labels[1, 3:] = -100
    return logits, labels


def test_no_smoothing_is_summed_cross_entropy():
    logits, labels = _logits_labels()
    loss, nll = label_smoothed_cross_entropy(logits, labels, epsilon=0.0)
    expected = F.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1), ignore_index=-100, reduction="sum")
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(nll, expected)


def test_smoothing_matches_an_explicit_target_distribution():
    logits, labels = _logits_labels()
    eps, vocab = 0.1, logits.size(-1)
    # Independent oracle: target prob 1 - eps, every other class eps / (V - 1) (fairseq's form).
    expected = torch.tensor(0.0)
    for b in range(labels.size(0)):
        for t in range(labels.size(1)):
            if labels[b, t] == -100:
                continue
            q = torch.full((vocab,), eps / (vocab - 1))
            q[labels[b, t]] = 1 - eps
            expected = expected - (q * torch.log_softmax(logits[b, t].double(), -1).float()).sum()
    loss, nll = label_smoothed_cross_entropy(logits, labels, epsilon=eps)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    assert nll < loss or torch.isclose(nll, loss)


def test_padding_is_ignored():
    logits, labels = _logits_labels()
    loss, _ = label_smoothed_cross_entropy(logits, labels)
    logits2 = logits.clone()
    logits2[1, 3:] = 1000 * torch.randn_like(logits2[1, 3:])
    torch.testing.assert_close(label_smoothed_cross_entropy(logits2, labels)[0], loss)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="disagree"):
        label_smoothed_cross_entropy(torch.randn(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))


def test_symmetric_kl():
    p, q = torch.randn(2, 4, 7), torch.randn(2, 4, 7)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]).bool()
    assert symmetric_kl(p, p, mask).abs() < 1e-6
    torch.testing.assert_close(symmetric_kl(p, q, mask), symmetric_kl(q, p, mask))
    lp, lq = torch.log_softmax(p, -1), torch.log_softmax(q, -1)
    kl_pq = F.kl_div(lq, lp, log_target=True, reduction="none").sum(-1)  # KL(P || Q)
    kl_qp = F.kl_div(lp, lq, log_target=True, reduction="none").sum(-1)
    expected = (0.5 * (kl_pq + kl_qp) * mask).sum()
    torch.testing.assert_close(symmetric_kl(p, q, mask), expected)
    assert symmetric_kl(p, q) > symmetric_kl(p, q, mask)


def test_weighted_total():
    a, b = torch.tensor(2.0, requires_grad=True), torch.tensor(3.0, requires_grad=True)
    total = weighted_total({"st": a, "mt": b, "mix": None, "kl": b}, {"st": 1.0, "mt": 0.5, "mix": 1.0, "kl": 0.0})
    torch.testing.assert_close(total, torch.tensor(3.5))
    with pytest.raises(ValueError, match="No loss term"):
        weighted_total({"st": a}, {"st": 0.0})
