"""Corpus BLEU and chrF with sacrebleu's defaults and signatures, as one `evaluate` metric.

Computed by `dtw_align_hf.metrics.translation_metrics` (sacrebleu's Python API), so scores and signatures are the
ones the DTW-Align run scripts write to `results.json` and the model card. Offline: `evaluate.load("metrics/bleu_chrf")`
(a local folder; unlike `evaluate.load("sacrebleu")`, nothing is fetched from the Hub).
"""

import datasets
import evaluate

from dtw_align_hf.metrics import translation_metrics


_CITATION = """\
@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores",
    author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
    year = "2018",
    publisher = "Association for Computational Linguistics",
    url = "https://www.aclweb.org/anthology/W18-6319",
    pages = "186--191",
}
"""

_DESCRIPTION = """\
Corpus BLEU (13a tokenisation, mixed case, exponential smoothing) and chrF2 (character 6-grams, beta 2, no word
n-grams) on detokenised text with one reference per sentence, with their sacrebleu signatures, as reported by
dtw-align-hf runs.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[str]`): detokenised system outputs, one per sentence.
    references (`list[str]`): one reference translation per sentence, same order.

Returns:
    bleu, chrf (0-100), bleu_signature, chrf_signature.

Examples:
    >>> metric = evaluate.load("metrics/bleu_chrf")
    >>> metric.compute(predictions=["the cat sat on the mat"], references=["the cat sat on the mat"])["chrf"]
    100.0
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class BleuChrf(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=["https://github.com/mjpost/sacrebleu"],
        )

    def _compute(self, predictions, references):
        return translation_metrics(list(predictions), list(references))
