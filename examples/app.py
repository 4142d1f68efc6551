"""DTW-Align speech translation in the browser: upload or record speech, read the translation, and, given the
transcript, see how the model aligns speech frames to transcript tokens.

A Gradio app in the layout of a Hugging Face Space (`app.py`, `README.md` with the Space front matter,
`requirements.txt`, all in `examples/`). The model comes from `--model`, else the `DTW_ALIGN_HF_MODEL` environment
variable, else the demo's output `runs/demo/finetune_st_whisper` (run `make demo` first); a Hub id works too.

    pip install -e ".[app]"
    python examples/app.py                                   # http://127.0.0.1:7860
    python examples/app.py --model you/dtw-align-en-de --port 7861
    DTW_ALIGN_HF_MODEL=runs/x python examples/app.py

The alignment is the one the model trains with (`config.alignment`, DTW if it trained without one): the adapter's
speech embeddings against the transcript's token embeddings (`model.speech_embeddings`, `model.embed_text`,
`dtw_align_hf.alignment.align`), drawn by `dtw_align_hf.plotting.plot_alignment`, as `evaluation.py` does, with the
reference-free statistics of `dtw_align_hf.metrics.alignment_statistics`.

`translate_and_align` is the whole computation and needs no gradio; `build_app` wraps it in a page.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch


DEFAULT_MODEL = "runs/demo/finetune_st_whisper"
MODEL_ENV = "DTW_ALIGN_HF_MODEL"


def resolve_model_path(cli_value: str | None = None) -> str:
    """`--model`, else `$DTW_ALIGN_HF_MODEL`, else the demo's `runs/demo/finetune_st_whisper`."""
    return cli_value or os.environ.get(MODEL_ENV) or DEFAULT_MODEL


@lru_cache(maxsize=2)
def load_model(path: str):
    """The model (eval mode) and its processor, from a folder or a Hub id."""
    from dtw_align_hf import DTWAlignForSpeechTranslation, DTWAlignProcessor

    if not Path(path).exists() and path.count("/") != 1:
        raise FileNotFoundError(
            f"No model at {path!r}. Run `make demo` (it writes {DEFAULT_MODEL}), or pass `--model <folder or Hub id>` "
            f"or set {MODEL_ENV}."
        )
    model = DTWAlignForSpeechTranslation.from_pretrained(path).eval()
    return model, DTWAlignProcessor.from_pretrained(path)


def read_audio(audio, sampling_rate: int) -> np.ndarray:
    """A file path, or gradio's `(rate, samples)` tuple (int16 or float, mono or channels last) -> float32 mono at
    `sampling_rate`, resampled with `scipy.signal.resample_poly` when needed."""
    from math import gcd

    if audio is None:
        raise ValueError("No audio: upload a file or record from the microphone.")
    if isinstance(audio, (str, Path)):
        import soundfile as sf

        samples, rate = sf.read(str(audio), dtype="float32", always_2d=False)
    else:
        rate, samples = audio
        samples = np.asarray(samples)
        if np.issubdtype(samples.dtype, np.integer):
            samples = samples.astype(np.float32) / float(np.iinfo(samples.dtype).max + 1)
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:  # (samples, channels)
        samples = samples.mean(axis=1)
    if samples.size == 0:
        raise ValueError("The audio is empty.")
    if int(rate) != sampling_rate:
        from scipy.signal import resample_poly

        g = gcd(int(rate), sampling_rate)
        samples = resample_poly(samples, sampling_rate // g, int(rate) // g).astype(np.float32)
    return samples


@torch.no_grad()
def translate_and_align(
    audio, transcript: str | None, model_path: str | None = None, plot_dir: str | Path | None = None
) -> tuple[str, str | None, dict[str, Any] | None]:
    """Translate `audio`; with a transcript, also align it to the speech and plot the alignment.

    Args:
        audio: a file path or a `(sampling_rate, samples)` tuple (what `gr.Audio` gives).
        transcript (`str`, *optional*): the source-language transcript of the audio.
        model_path (`str`, *optional*): folder or Hub id (default: `resolve_model_path()`).
        plot_dir (`str`, *optional*): where the PNG goes (default: a temporary folder).

    Returns:
        `(translation, plot_png_path or None, statistics or None)`; the statistics are
        `alignment_statistics`' figures for this utterance (coverage, monotonic, frames per token, longest segment).
    """
    from dtw_align_hf.alignment import align, cosine_similarity
    from dtw_align_hf.evaluation import frames_per_second
    from dtw_align_hf.metrics import alignment_statistics
    from dtw_align_hf.plotting import plot_alignment

    model, processor = load_model(resolve_model_path(model_path))
    wav = read_audio(audio, processor.sampling_rate)
    inputs = processor(audio=wav, sampling_rate=processor.sampling_rate)
    ids = model.generate(
        inputs[model.main_input_name], attention_mask=inputs["attention_mask"], **processor.generation_kwargs()
    )
    translation = processor.batch_decode(ids)[0]
    transcript = (transcript or "").strip()
    if not transcript:
        return translation, None, None

    batch = processor(audio=wav, sampling_rate=processor.sampling_rate, text=[transcript])
    speech, frame_mask = model.speech_embeddings(batch[model.main_input_name], batch["attention_mask"])
    text = model.embed_text(batch["input_ids"])
    text_mask = batch["text_attention_mask"].bool()
    method = model.config.alignment if model.config.alignment != "none" else "dtw"
    out = align(speech, text, frame_mask.bool(), text_mask, method=method)
    n_frames, n_tokens = int(frame_mask[0].sum()), int(text_mask[0].sum())
    f2t = out.frame_to_token[0, :n_frames]
    similarity = cosine_similarity(speech, text, frame_mask.bool(), text_mask)[0, :n_frames, :n_tokens]
    tokens = processor.tokenizer.convert_ids_to_tokens(batch["input_ids"][0, :n_tokens].tolist())
    plot_dir = Path(plot_dir) if plot_dir is not None else Path(tempfile.mkdtemp(prefix="dtw_align_app_"))
    path = plot_dir / "alignment.png"
    plot_alignment(
        similarity, f2t, path, tokens=tokens, title=f"{method} alignment", frame_rate=frames_per_second(model)
    )
    stats = alignment_statistics(f2t[None], num_tokens=[n_tokens])
    stats.pop("per_sample")
    stats = {
        k: stats[k]
        for k in (
            "coverage",
            "monotonic",
            "frames_per_token_mean",
            "frames_per_token_min",
            "frames_per_token_max",
            "longest_segment_share",
            "num_frames",
            "num_tokens",
        )
    }
    stats["method"] = method
    return translation, str(path), stats


def build_app(model_path: str | None = None):
    """The page: audio (upload or microphone) and an optional transcript in; translation, plot, statistics out."""
    import gradio as gr

    model_path = resolve_model_path(model_path)
    load_model(model_path)  # fail at start-up, with the fix in the message, rather than at the first click

    def run(audio, transcript):
        try:
            return translate_and_align(audio, transcript, model_path)
        except ValueError as err:  # bad audio: the processor's and the model's messages name the fix
            raise gr.Error(str(err)) from err

    with gr.Blocks(title="DTW-Align speech translation") as app:
        gr.Markdown(
            "# DTW-Align speech translation\n"
            f"Model: `{model_path}`. Upload or record speech; add its transcript to see the alignment of speech "
            "frames to transcript tokens ([DTW-Align](https://arxiv.org/abs/2509.18987))."
        )
        with gr.Row():
            audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Speech", elem_id="audio")
            transcript = gr.Textbox(label="Transcript (optional)", lines=3, elem_id="transcript")
        button = gr.Button("Translate", variant="primary", elem_id="translate")
        translation = gr.Textbox(label="Translation", elem_id="translation", interactive=False)
        plot = gr.Image(label="Alignment", type="filepath", elem_id="alignment-plot", interactive=False)
        stats = gr.JSON(label="Alignment statistics", elem_id="alignment-stats")
        button.click(run, inputs=[audio, transcript], outputs=[translation, plot, stats])
    return app


# No web fonts: the page also renders on machines without internet access.
def theme():
    import gradio as gr

    return gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["monospace"])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help=f"folder or Hub id (default: ${MODEL_ENV} or {DEFAULT_MODEL})")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve other machines")
    parser.add_argument("--port", type=int, default=None, help="default 7860 (or $GRADIO_SERVER_PORT)")
    args = parser.parse_args(argv)
    build_app(args.model).launch(server_name=args.host, server_port=args.port, theme=theme())


if __name__ == "__main__":
    main()
