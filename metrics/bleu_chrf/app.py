"""Hub Space of the `bleu_chrf` metric: paste system outputs and references, one sentence a line.

evaluate's own `evaluate.utils.launch_gradio_widget` builds its form with `gr.inputs` / `gr.outputs`, which gradio
removed in 4.0, so this app builds the same form with today's components. Run locally: `python app.py`.
"""

from pathlib import Path

import evaluate
import gradio as gr


HERE = Path(__file__).resolve().parent
# the script by file name: in a Space the folder is named after the Space repo, not after the metric
MODULE = evaluate.load(str(HERE / "bleu_chrf.py"))
EXAMPLE_PREDICTIONS = "the cat sat on the mat\na dog barked loudly"
EXAMPLE_REFERENCES = "the cat sat on the mat\nthe dog barked loudly"


def compute(predictions_text: str, references_text: str) -> dict:
    """Corpus BLEU and chrF of the pasted lines (line i of the outputs against line i of the references)."""
    predictions, references = predictions_text.splitlines(), references_text.splitlines()
    try:
        return MODULE.compute(predictions=predictions, references=references)
    except (ValueError, TypeError) as err:
        raise gr.Error(str(err)) from err


def build_demo() -> gr.Interface:
    return gr.Interface(
        fn=compute,
        inputs=[
            gr.Textbox(label="system outputs, one sentence a line", lines=6, value=EXAMPLE_PREDICTIONS),
            gr.Textbox(label="references, one sentence a line", lines=6, value=EXAMPLE_REFERENCES),
        ],
        outputs=gr.JSON(label="bleu_chrf"),
        title="BLEU and chrF (sacrebleu, with signatures)",
        description=MODULE.description,
        article=MODULE.inputs_description,
    )


if __name__ == "__main__":
    build_demo().launch()
