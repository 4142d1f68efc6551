"""The `evaluate` modules in metrics/: loaded offline from their folders, scored against sacrebleu and our functions.

`evaluate.load("metrics/<name>")` reads `metrics/<name>/<name>.py`; a socket guard proves nothing is fetched.
"""

import importlib.util
import socket
import textwrap
from pathlib import Path

import pytest
import sacrebleu

from dtw_align_hf.metrics import alignment_accuracy, translation_metrics


evaluate = pytest.importorskip("evaluate")

REPO = Path(__file__).resolve().parents[1]
METRICS = REPO / "metrics"
HYPS = ["the cat sat on the mat .", "a dog barked loudly", "it is raining today", "hello world"]
REFS = ["the cat sat on the mat .", "the dog barked loudly", "it is raining today", "hello , world"]


@pytest.fixture
def offline(monkeypatch):
    """No network: any connection attempt fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def load(name):
    return evaluate.load(str(METRICS / name))


def test_bleu_chrf_module_matches_sacrebleu(offline):
    metric = load("bleu_chrf")
    out = metric.compute(predictions=HYPS, references=REFS)
    assert out["bleu"] == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score)
    assert out["chrf"] == pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS]).score)
    assert out == translation_metrics(HYPS, REFS)
    assert out["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
    # streaming: batches added one by one give the corpus score
    for h, r in zip(HYPS, REFS, strict=True):
        metric.add(prediction=h, reference=r)
    assert metric.compute() == out


def test_alignment_accuracy_module_matches_our_function(offline):
    metric = load("dtw_alignment_accuracy")
    f2t = [[0, 0, 1, 1, 1, 2, -1], [0, 0, 0, 1]]
    spans = [[(0, 2), (2, 4), (4, 6)], [(0, 2), (-1, -1)]]
    out = metric.compute(predictions=f2t, references=spans)
    # by hand: sample 0 tokens 0 (2/2 in), 1 (2/3 in), 2 (1/1 in) right; sample 1 token 0 (2/3 in) right, token 1 unscored
    assert out["token_accuracy"] == pytest.approx(4 / 4) and out["num_tokens"] == 4
    assert out["frame_accuracy"] == pytest.approx((2 + 2 + 1 + 2) / (6 + 3))
    expected = alignment_accuracy(f2t, spans)
    assert out == {k: expected[k] for k in out}
    strict = metric.compute(predictions=f2t, references=spans, rule="all")
    assert strict["token_accuracy"] == pytest.approx(2 / 4)
    # spans in seconds with a frame rate
    seconds = [[(0.0, 0.16), (0.16, 0.32), (0.32, 0.48)], [(0.0, 0.16), (-1, -1)]]
    assert metric.compute(predictions=f2t, references=seconds, frame_rate=12.5) == out


def test_modules_plug_into_evaluate_combine(offline, tmp_path):
    # a second text metric with the same inputs, written here (what a user's own module looks like)
    script = tmp_path / "exact" / "exact.py"
    script.parent.mkdir()
    script.write_text(
        textwrap.dedent(
            """
            import datasets
            import evaluate


            class Exact(evaluate.Metric):
                def _info(self):
                    return evaluate.MetricInfo(
                        description="share of exact matches", citation="", inputs_description="",
                        features=datasets.Features(
                            {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
                        ),
                    )

                def _compute(self, predictions, references):
                    return {"exact": sum(p == r for p, r in zip(predictions, references)) / len(predictions)}
            """
        )
    )
    combined = evaluate.combine([load("bleu_chrf"), evaluate.load(str(script.parent))])
    out = combined.compute(predictions=HYPS, references=REFS)
    assert out["bleu"] == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score)
    assert out["chrf"] == pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS]).score)
    assert out["exact"] == pytest.approx(2 / 4)


@pytest.mark.parametrize("name", ["bleu_chrf", "dtw_alignment_accuracy"])
def test_space_layout(name):
    folder = METRICS / name
    assert {"app.py", f"{name}.py", "README.md", "requirements.txt"} <= {p.name for p in folder.iterdir()}
    front = folder.joinpath("README.md").read_text(encoding="utf-8").split("---")[1]
    for key in ("sdk: gradio", "app_file: app.py", "- evaluate", "- metric"):
        assert key in front
    requirements = folder.joinpath("requirements.txt").read_text(encoding="utf-8")
    assert "evaluate" in requirements and "dtw-align-hf" in requirements


def _import_app(name):
    spec = importlib.util.spec_from_file_location(f"{name}_space_app", METRICS / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # importing gradio alone takes about 5 s
def test_space_apps_compute_and_build(offline):
    gr = pytest.importorskip("gradio")
    bleu_app = _import_app("bleu_chrf")
    assert bleu_app.compute("\n".join(HYPS), "\n".join(REFS)) == translation_metrics(HYPS, REFS)
    with pytest.raises(gr.Error, match="number of predictions"):
        bleu_app.compute("one line", "one\ntwo")
    align_app = _import_app("dtw_alignment_accuracy")
    out = align_app.compute(align_app.EXAMPLE_PREDICTIONS, align_app.EXAMPLE_REFERENCES, 0, "majority")
    assert out["num_tokens"] == 5 and out["token_accuracy"] == pytest.approx(1.0)
    with pytest.raises(gr.Error, match="JSON"):
        align_app.compute("[[0, 1]", "[]", 0, "majority")
    for app in (bleu_app, align_app):
        assert isinstance(app.build_demo(), gr.Interface)
