"""tools/: checkpoint averaging against a hand-computed average, paired bootstrap comparison, alignment accuracy."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from dtw_align_hf.alignment import align
from dtw_align_hf.evaluation import evaluate_alignment, frames_per_second
from dtw_align_hf.testing_utils import synthetic_audio
from tools import average_checkpoints as avg
from tools import compare_systems


def make_checkpoint(path, step_value, extra_file=True):
    path.mkdir(parents=True)
    save_file(
        {
            "w": torch.full((2, 3), float(step_value)),
            "half": torch.tensor([step_value, 1.0], dtype=torch.bfloat16),
            "count": torch.tensor([step_value * 3], dtype=torch.int64),
        },
        str(path / "model.safetensors"),
    )
    (path / "config.json").write_text(json.dumps({"step": step_value}))
    if extra_file:
        (path / "optimizer.pt").write_bytes(b"x")
        (path / "trainer_state.json").write_text("{}")


def test_average_last_checkpoints(tmp_path):
    for step, value in ((100, 1.0), (200, 2.0), (300, 4.0), (1000, 9.0)):
        make_checkpoint(tmp_path / f"checkpoint-{step}", value)
    (tmp_path / "checkpoint-final").mkdir()  # not a numbered checkpoint: ignored
    (tmp_path / "checkpoint-2000").mkdir()  # an incomplete save (no weights): skipped
    (tmp_path / ".tmp-checkpoint-3000").mkdir()  # a save in progress: never matches
    chosen = avg.last_checkpoints(tmp_path, 3)
    assert [c.name for c in chosen] == ["checkpoint-200", "checkpoint-300", "checkpoint-1000"]  # numeric order

    out = avg.main(["--inputs", str(tmp_path), "--num_checkpoints", "3", "--output", str(tmp_path / "avg")])
    state = load_file(str(out / "model.safetensors"))
    expected = (2.0 + 4.0 + 9.0) / 3  # by hand
    torch.testing.assert_close(state["w"], torch.full((2, 3), expected))
    assert state["half"].dtype == torch.bfloat16
    torch.testing.assert_close(state["half"].float(), torch.tensor([expected, 1.0]), atol=0.05, rtol=0)
    assert state["count"].dtype == torch.int64 and int(state["count"]) == (6 + 12 + 27) // 3
    assert json.loads((out / "config.json").read_text()) == {"step": 9.0}  # the newest checkpoint's files
    assert not (out / "optimizer.pt").exists() and not (out / "trainer_state.json").exists()


def test_average_rejects_mismatched_checkpoints(tmp_path):
    make_checkpoint(tmp_path / "a", 1.0)
    (tmp_path / "b").mkdir()
    save_file({"other": torch.zeros(1)}, str(tmp_path / "b" / "model.safetensors"))
    with pytest.raises(ValueError, match="different parameters"):
        avg.average_checkpoints([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    with pytest.raises(FileNotFoundError):
        avg.last_checkpoints(tmp_path / "a", 2)


def test_averaged_model_loads(tmp_path, make_model):
    model = make_model()
    for i in range(2):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01 * (i + 1))
        model.save_pretrained(tmp_path / f"checkpoint-{i + 1}")
    out = avg.average_checkpoints(avg.last_checkpoints(tmp_path, 2), tmp_path / "avg")
    from dtw_align_hf import DTWAlignForSpeechTranslation

    loaded = DTWAlignForSpeechTranslation.from_pretrained(out)
    a = DTWAlignForSpeechTranslation.from_pretrained(tmp_path / "checkpoint-1").state_dict()
    b = DTWAlignForSpeechTranslation.from_pretrained(tmp_path / "checkpoint-2").state_dict()
    for name, value in loaded.state_dict().items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (a[name] + b[name]) / 2)


def test_compare_systems(tmp_path):
    refs = [f"the cat number {i} sat on the mat" for i in range(30)]
    good = list(refs)
    bad = [f"a dog {i}" for i in range(30)]
    (tmp_path / "base").mkdir()
    (tmp_path / "sys").mkdir()
    (tmp_path / "base" / "test_hypotheses.txt").write_text("\n".join(bad) + "\n")
    (tmp_path / "sys" / "test_hypotheses.txt").write_text("\n".join(good) + "\n")
    (tmp_path / "sys" / "test_references.txt").write_text("\n".join(refs) + "\n")
    result = compare_systems.main(
        [
            "--baseline",
            str(tmp_path / "base"),
            "--system",
            str(tmp_path / "sys"),
            "--n_samples",
            "200",
            "--json",
            str(tmp_path / "cmp.json"),
        ]
    )
    assert json.loads((tmp_path / "cmp.json").read_text())
    assert result  # the structure is metrics.paired_bootstrap's
    with pytest.raises(ValueError, match="Line counts differ"):
        compare_systems.compare(bad[:5], good, refs)


def test_eval_alignment_on_tiny_model(tmp_path, make_model, tiny_processor):
    model = make_model(alignment="dtw")
    rate = frames_per_second(model)
    assert rate == pytest.approx(16000 / (5 * 4 * 4) / 4)  # tiny HuBERT strides x adapter stride 2 x 2
    dataset = [
        {"id": "a", "audio": synthetic_audio(1.0, seed=1), "transcript": "das kleine haus"},
        {"id": "b", "audio": synthetic_audio(0.8, seed=2), "transcript": "ein hund"},
        {"id": "c", "audio": synthetic_audio(0.8, seed=3), "transcript": "ein hund"},  # no timings: skipped
    ]
    timings = {
        "a": [
            {"word": "das", "start": 0.0, "end": 0.3},
            {"word": "kleine", "start": 0.3, "end": 0.6},
            {"word": "haus", "start": 0.6, "end": 1.0},
        ],
        "b": [{"word": "ein", "start": 0.0, "end": 0.4}, {"word": "hund", "start": 0.4, "end": 0.8}],
    }
    result = evaluate_alignment(model, tiny_processor, dataset, timings, plot_dir=tmp_path / "plots", num_plots=1)
    assert result["num_samples"] == 2 and result["skipped"] == 1 and result["method"] == "dtw"
    assert 0.0 <= result["token_accuracy"] <= 1.0 and 0.0 <= result["frame_accuracy"] <= 1.0
    assert len(result["plots"]) == 1 and (tmp_path / "plots" / "a.png").stat().st_size > 0


def test_alignment_plots_and_statistics_without_timings(tmp_path, make_model, tiny_processor):
    from dtw_align_hf.metrics import alignment_statistics
    from tools.eval_alignment import alignment_plots_and_statistics

    model = make_model(alignment="dtw")
    dataset = [
        {"id": "a", "audio": synthetic_audio(1.0, seed=1), "transcript": "das kleine haus"},
        {"id": "b", "audio": synthetic_audio(0.8, seed=2), "transcript": "ein hund"},
        {"id": "c", "audio": None, "transcript": "ein hund"},  # undecodable: skipped
    ]
    result = alignment_plots_and_statistics(model, tiny_processor, dataset, plot_dir=tmp_path / "plots", num_plots=5)
    assert result["num_samples"] == 2 and result["skipped"] == 1 and result["method"] == "dtw"
    assert [Path(p).name for p in result["plots"]] == ["a.png", "b.png"]
    assert all(Path(p).stat().st_size > 0 for p in result["plots"])
    assert result["coverage"] == 1.0 and result["monotonic"] == 1.0  # DTW's guarantees
    # the same numbers as alignment_statistics on the alignments computed here by hand
    batch = tiny_processor(audio=[r["audio"] for r in dataset[:2]], text=[r["transcript"] for r in dataset[:2]])
    with torch.no_grad():
        speech, frame_mask = model.speech_embeddings(batch["input_values"], batch["attention_mask"])
        out = align(
            speech, model.embed_text(batch["input_ids"]), frame_mask.bool(), batch["text_attention_mask"].bool()
        )
    expected = alignment_statistics(out.frame_to_token, num_tokens=batch["text_attention_mask"].sum(-1))
    for key in ("num_frames", "num_tokens", "frames_per_token_mean", "longest_segment_share", "frames_per_token_max"):
        assert result[key] == pytest.approx(expected[key])


def test_eval_alignment_cli_plot_only_on_a_manifest(tmp_path, make_model, tiny_processor):
    import soundfile as sf

    from tools import eval_alignment

    model_dir = tmp_path / "model"
    make_model(alignment="dtw").save_pretrained(model_dir)
    tiny_processor.save_pretrained(model_dir)
    lines = ["audio\ttranscript\ttranslation"]
    for i, (text, target) in enumerate([("das kleine haus", "the small house"), ("ein hund", "a dog")]):
        sf.write(tmp_path / f"u{i}.wav", synthetic_audio(1.0, seed=i), 16000)
        lines.append(f"u{i}.wav\t{text}\t{target}")
    (tmp_path / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = eval_alignment.main(
        [
            "--model", str(model_dir), "--dataset", "manifest", "--test_file", str(tmp_path / "test.tsv"),
            "--plot_dir", str(tmp_path / "plots"), "--json", str(tmp_path / "out.json"),
        ]
    )  # fmt: skip
    assert result["reference"] is None and "token_accuracy" not in result
    assert result["num_samples"] == 2 and len(result["plots"]) == 2
    assert result["coverage"] == 1.0 and 0 < result["longest_segment_share"] <= 1
    assert json.loads((tmp_path / "out.json").read_text())["frames_per_token_min"] >= 1
