"""Hub Space of the `dtw_alignment_accuracy` metric: paste frame -> token alignments and reference spans as JSON.

evaluate's own `evaluate.utils.launch_gradio_widget` builds its form with `gr.inputs` / `gr.outputs`, which gradio
removed in 4.0, so this app builds the same form with today's components. Run locally: `python app.py`.
"""

import json
from pathlib import Path

import evaluate
import gradio as gr


HERE = Path(__file__).resolve().parent
# the script by file name: in a Space the folder is named after the Space repo, not after the metric
MODULE = evaluate.load(str(HERE / "dtw_alignment_accuracy.py"))
EXAMPLE_PREDICTIONS = "[[0, 0, 1, 1, 1, 2], [0, 1, 1, 1]]"
EXAMPLE_REFERENCES = "[[[0, 2], [2, 4], [4, 6]], [[0, 1], [1, 4]]]"


def compute(predictions_json: str, references_json: str, frame_rate: float = 0.0, rule: str = "majority") -> dict:
    """Score the pasted alignments; `frame_rate` 0 means the spans are frame indices."""
    try:
        predictions, references = json.loads(predictions_json), json.loads(references_json)
    except json.JSONDecodeError as err:
        raise gr.Error(f"Predictions and references must be JSON lists: {err}") from err
    try:
        return MODULE.compute(predictions=predictions, references=references, frame_rate=frame_rate or None, rule=rule)
    except (ValueError, TypeError) as err:
        raise gr.Error(str(err)) from err


def build_demo() -> gr.Interface:
    return gr.Interface(
        fn=compute,
        inputs=[
            gr.Textbox(
                label="predictions: per utterance, the token of each frame (-1: none)", value=EXAMPLE_PREDICTIONS
            ),
            gr.Textbox(label="references: per utterance, one [start, end) span per token", value=EXAMPLE_REFERENCES),
            gr.Number(label="frame_rate (frames/s; 0 = spans are frame indices)", value=0),
            gr.Radio(["majority", "all"], value="majority", label="rule"),
        ],
        outputs=gr.JSON(label="dtw_alignment_accuracy"),
        title="DTW-Align alignment accuracy",
        description=MODULE.description,
        article=MODULE.inputs_description,
    )


if __name__ == "__main__":
    build_demo().launch()
