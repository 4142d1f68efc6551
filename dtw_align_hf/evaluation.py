"""Alignment accuracy of a trained DTW-Align model against reference word timings, with plots.

For each utterance the model's adapter outputs (speech frames) are aligned to its transcript-token embeddings with the
model's alignment method (or another one), and each token's frames are compared with the reference time span of the
word it belongs to (`dtw_align_hf.metrics.alignment_accuracy`). `run_finetune_st.py` calls `evaluate_alignment` at
the end of training when the test set has timings; `tools/eval_alignment.py` is its command line; `run_demo.py`
compares the methods with it. Not imported by the model, so it may use anything the package depends on.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import torch


def frames_per_second(model) -> float:
    """Adapter frames per second of audio (HuBERT base: 50 Hz / 4 = 12.5 Hz)."""
    rate = int(getattr(model.config, "sampling_rate", 16000))
    strides = getattr(model.config.speech_config, "conv_stride", None) or (5, 2, 2, 2, 2, 2, 2)
    adapter = int(model.config.adapter_stride) ** int(model.config.adapter_num_layers)
    return rate / (math.prod(strides) * adapter)


def reference_timings_for(data_args, split: str | None = None) -> dict[str, list[dict[str, Any]]] | None:
    """Reference word timings of a split (default: the test split): the demo corpus's own, or for the test split
    `--reference_timings` (JSONL)."""
    from dtw_align_hf.data.timings import read_timings

    split = split or data_args.test_split
    if split == data_args.test_split and getattr(data_args, "reference_timings", None):
        return read_timings(data_args.reference_timings)
    if getattr(data_args, "dataset", None) == "demo" and split:
        from dtw_align_hf.data.demo import load_demo_timings

        sizes = {"train": data_args.demo_train_size, "dev": data_args.demo_eval_size, "test": data_args.demo_test_size}
        return load_demo_timings(
            split,
            cache_dir=data_args.cache_dir,
            seed=data_args.demo_seed,
            split_sizes=sizes,
            text=getattr(data_args, "demo_text", "ding"),
            speech=getattr(data_args, "demo_speech", "steady"),
        )
    return None


@torch.no_grad()
def align_rows(model, processor, rows: list[dict[str, Any]], method: str):
    """Processor -> the model's speech and transcript embeddings -> `align`, for a list of decoded rows.

    The one route every evaluation here (and `tools/eval_alignment.py`) takes, with the model's own alignment settings
    (backend, window, similarity corrections). Returns `(batch, speech, text, frame_mask, text_mask, out)`:
    the processor's batch on the model's device, `(B, N, D)` / `(B, M, D)` embeddings, the `(B, N)` long frame mask,
    the `(B, M)` bool token mask and the `AlignmentOutput`.
    """
    from dtw_align_hf.alignment import align

    cfg = model.config
    batch = processor(
        audio=[r["audio"] for r in rows], text=[r["transcript"] for r in rows], sampling_rate=processor.sampling_rate
    )
    batch = {k: v.to(model.device) for k, v in batch.items()}
    speech, frame_mask = model.speech_embeddings(batch[model.main_input_name], batch["attention_mask"])
    text = model.embed_text(batch["input_ids"])
    text_mask = batch["text_attention_mask"].bool()
    out = align(
        speech,
        text,
        frame_mask.bool(),
        text_mask,
        method=method,
        backend=cfg.alignment_backend,
        window=cfg.alignment_window,
        normalization=getattr(cfg, "alignment_normalization", "none"),
        diagonal_prior=getattr(cfg, "alignment_diagonal_prior", 0.0),
    )
    return batch, speech, text, frame_mask, text_mask, out


def _token_spans(tokenizer, ids: torch.Tensor, words: list[dict[str, Any]], rate: float):
    """`(tokens, spans)` of one transcript's real token ids against its reference words; spans is None when the
    timings split the sentence into other words than the transcript's pieces do."""
    from dtw_align_hf.metrics import word_index_from_pieces, words_to_token_spans

    tokens = tokenizer.convert_ids_to_tokens(ids.tolist())
    word_index = word_index_from_pieces(tokens, special_tokens=tokenizer.all_special_tokens)
    if 1 + max((w for w in word_index if w is not None), default=-1) != len(words):
        return tokens, None
    return tokens, words_to_token_spans(words, word_index, rate)


@torch.no_grad()
def evaluate_alignment(
    model,
    processor,
    dataset,
    timings: dict[str, list[dict[str, Any]]],
    *,
    method: str | None = None,
    max_samples: int | None = 200,
    batch_size: int = 8,
    plot_dir: str | Path | None = None,
    num_plots: int = 4,
) -> dict[str, Any]:
    """Align speech and transcript embeddings of `dataset` and score against `timings`.

    Args:
        model (`DTWAlignForSpeechTranslation`): trained model (eval mode is set here).
        processor (`DTWAlignProcessor`): its processor.
        dataset: examples in the CONTRACTS schema (`id`, `audio` decoded, `transcript`).
        timings (`dict`): `{id: [{"word", "start", "end"}, ...]}` in seconds.
        method (`str`, *optional*): alignment method (default: the model's, `dtw` if it trained without one).
        max_samples (`int`, *optional*): score at most this many utterances.
        plot_dir (`str`, *optional*): write `num_plots` PNGs (similarity, path, reference spans) there.

    Returns:
        `{"token_accuracy", "frame_accuracy", "num_samples", "skipped", "method", "reference", "plots"}`;
        accuracies are means over utterances, in [0, 1].
    """
    from dtw_align_hf.alignment import cosine_similarity
    from dtw_align_hf.metrics import alignment_accuracy

    model.eval()
    cfg = model.config
    method = method or (cfg.alignment if cfg.alignment != "none" else "dtw")
    rate = frames_per_second(model)
    tokenizer = processor.tokenizer
    all_f2t, all_spans = [], []
    skipped, plots = 0, []
    n = len(dataset) if max_samples is None else min(len(dataset), max_samples)
    for start in range(0, n, batch_size):
        rows = [dataset[i] for i in range(start, min(n, start + batch_size))]
        rows = [r for r in rows if r.get("audio") is not None and r["id"] in timings]
        skipped += min(n, start + batch_size) - start - len(rows)
        if not rows:
            continue
        batch, speech, text, frame_mask, text_mask, out = align_rows(model, processor, rows, method)
        similarity = None
        for b, row in enumerate(rows):
            n_frames, n_tokens = int(frame_mask[b].sum()), int(text_mask[b].sum())
            tokens, spans = _token_spans(tokenizer, batch["input_ids"][b, :n_tokens], timings[row["id"]], rate)
            if spans is None:
                skipped += 1  # the reference timings split the sentence into other words than the transcript
                continue
            f2t = out.frame_to_token[b, :n_frames].cpu()
            all_f2t.append(f2t.numpy())
            all_spans.append(spans)
            if plot_dir is not None and len(plots) < num_plots:
                from dtw_align_hf.plotting import plot_alignment

                if similarity is None:
                    similarity = cosine_similarity(speech, text, frame_mask.bool(), text_mask)
                Path(plot_dir).mkdir(parents=True, exist_ok=True)
                path = Path(plot_dir) / f"{row['id']}.png"
                plot_alignment(
                    similarity[b, :n_frames, :n_tokens].float().cpu(),
                    f2t,
                    str(path),
                    reference_spans=spans,
                    tokens=tokens,
                    title=f"{row['id']} ({method})",
                    frame_rate=rate,
                )
                plots.append(str(path))
    # micro-averaged over every scored token / frame (metrics.alignment_accuracy)
    result = (
        dict(alignment_accuracy(all_f2t, all_spans)) if all_f2t else {"token_accuracy": None, "frame_accuracy": None}
    )
    result.update(
        {
            "num_samples": len(all_f2t),
            "skipped": skipped,
            "method": method,
            "frames_per_second": rate,
            "reference": "reference word timings",
            "plots": plots,
        }
    )
    if plot_dir is not None and plots:
        result["plot_dir"] = str(plot_dir)
    return result


@torch.no_grad()
def compare_alignment_options(
    model,
    processor,
    dataset,
    timings: dict[str, list[dict[str, Any]]],
    options: dict[str, dict[str, Any]],
    *,
    max_samples: int | None = 200,
    batch_size: int = 8,
) -> dict[str, dict[str, Any]]:
    """Token and frame accuracy of several alignment settings on the same embeddings, against `timings`.

    Each utterance's speech and transcript embeddings are computed once (the route of `align_rows`) and aligned with
    every entry of `options` (`{name: align keyword arguments}`, e.g. `{"method": "dtw", "normalization":
    "token_center", "diagonal_prior": 0.5}`; `backend` and `window` default to the model's). Utterances whose
    reference words do not match the transcript's words are skipped for every option alike, so the figures are
    paired. Returns `{name: {"token_accuracy", "frame_accuracy", "num_samples"}}`.
    """
    from dtw_align_hf.alignment import align
    from dtw_align_hf.metrics import alignment_accuracy

    model.eval()
    cfg = model.config
    rate = frames_per_second(model)
    tokenizer = processor.tokenizer
    paths: dict[str, list] = {name: [] for name in options}
    spans_all: list = []
    n = len(dataset) if max_samples is None else min(len(dataset), max_samples)
    for start in range(0, n, batch_size):
        rows = [dataset[i] for i in range(start, min(n, start + batch_size))]
        rows = [r for r in rows if r.get("audio") is not None and r["id"] in timings]
        if not rows:
            continue
        batch, speech, text, frame_mask, text_mask, _ = align_rows(model, processor, rows, "uniform")
        keep, spans = [], []
        for b, row in enumerate(rows):
            _, row_spans = _token_spans(
                tokenizer, batch["input_ids"][b, : int(text_mask[b].sum())], timings[row["id"]], rate
            )
            if row_spans is not None:
                keep.append(b)
                spans.append(row_spans)
        if not keep:
            continue
        spans_all.extend(spans)
        lengths = frame_mask.sum(-1).tolist()
        for name, kwargs in options.items():
            kwargs = {"backend": cfg.alignment_backend, "window": cfg.alignment_window, **kwargs}
            out = align(speech, text, frame_mask.bool(), text_mask, **kwargs)
            paths[name].extend(out.frame_to_token[b, : int(lengths[b])].cpu().numpy() for b in keep)
    results = {}
    for name in options:
        if paths[name]:
            acc = alignment_accuracy(paths[name], spans_all)
            results[name] = {
                "token_accuracy": float(acc["token_accuracy"]),
                "frame_accuracy": float(acc["frame_accuracy"]),
                "num_samples": len(paths[name]),
            }
        else:
            results[name] = {"token_accuracy": None, "frame_accuracy": None, "num_samples": 0}
    return results


@torch.no_grad()
def plot_alignments(
    model, processor, dataset, plot_dir: str | Path, *, num_plots: int = 4, method: str | None = None
) -> dict[str, Any]:
    """Plot the alignment of the first `num_plots` usable utterances of `dataset`, without reference timings.

    The plot-only path of `evaluate_alignment` for corpora without word timings (manifests, MuST-C, CoVoST 2): the
    similarity matrix and the model's frame -> token path, no accuracy. Returns `{"plots", "plot_dir", "method",
    "num_samples", "reference": None, "token_accuracy": None}`.
    """
    from dtw_align_hf.alignment import cosine_similarity
    from dtw_align_hf.plotting import plot_alignment

    model.eval()
    cfg = model.config
    method = method or (cfg.alignment if cfg.alignment != "none" else "dtw")
    rate = frames_per_second(model)
    plots: list[str] = []
    for i, row in enumerate(itertools.islice(iter(dataset), 4 * num_plots)):  # map-style or streamed
        if len(plots) >= num_plots:
            break
        if row.get("audio") is None or not str(row.get("transcript") or "").strip():
            continue
        try:
            batch, speech, text, frame_mask, text_mask, out = align_rows(model, processor, [row], method)
        except ValueError:  # audio the processor rejects (too long, NaN): the test evaluation counted it
            continue
        n_frames, n_tokens = int(frame_mask[0].sum()), int(text_mask[0].sum())
        similarity = cosine_similarity(speech, text, frame_mask.bool(), text_mask)
        Path(plot_dir).mkdir(parents=True, exist_ok=True)
        path = Path(plot_dir) / f"{row.get('id', i)}.png"
        plot_alignment(
            similarity[0, :n_frames, :n_tokens].float().cpu(),
            out.frame_to_token[0, :n_frames].cpu(),
            str(path),
            tokens=processor.tokenizer.convert_ids_to_tokens(batch["input_ids"][0, :n_tokens].tolist()),
            title=f"{row.get('id', i)} ({method}, no reference timings)",
            frame_rate=rate,
        )
        plots.append(str(path))
    result = {"plots": plots, "method": method, "num_samples": len(plots), "reference": None, "token_accuracy": None}
    if plots:
        result["plot_dir"] = str(plot_dir)
    return result


__all__ = ["align_rows", "evaluate_alignment", "frames_per_second", "plot_alignments", "reference_timings_for"]
