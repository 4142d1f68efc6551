"""run_demo.py (the README's main job) runs end to end in its --quick mode and writes what it promises."""

import json
import os


def _run(argv):
    import run_demo

    cwd = os.getcwd()
    try:
        return run_demo.main(argv)
    finally:
        os.chdir(cwd)  # run_demo works from the repository root


def test_run_demo_quick(tmp_path, monkeypatch):
    """The default demo: the pretrained Whisper encoder where the demo extra is installed, else the random one."""
    import run_demo

    monkeypatch.setenv("DTW_ALIGN_HF_CACHE", str(tmp_path / "cache"))
    summary = _run(["--quick", "--threads", "1", "--output_dir", str(tmp_path / "demo")])
    out = tmp_path / "demo"
    for name in ("results.md", "demo_summary.json", "training_curves.png", "alignment_methods.png"):
        assert (out / name).is_file(), name
    assert summary["encoders"] in (["whisper", "random"], ["random"])
    if summary["encoders"] == ["random"]:
        assert "random-init encoder only" in summary["encoder_note"]  # and it says why
    for name in summary["encoders"]:
        assert (out / f"finetune_st_{name}" / "model.safetensors").is_file()
        assert (out / f"finetune_st_{name}" / "README.md").is_file()  # the model card
        for method in run_demo.METHODS:
            assert list((out / "alignment_plots" / name / method).glob("*.png")), (name, method)
        assert set(summary["alignment"][name]) == set(run_demo.METHODS)
        assert summary["st"][name]["bleu_signature"].startswith("nrefs:1")
    assert summary["example"]["hypothesis"] is not None
    assert json.loads((out / "demo_summary.json").read_text())["example"]["transcript"]
    results = (out / "results.md").read_text()
    assert "| dtw |" in results and "| uniform |" in results and "Quick smoke run" in results
    assert "| 1: MT pretraining |" in results
    assert results.count("| 2: ST fine-tuning |") == len(summary["encoders"])
    assert summary["settings"]["threads"] == 1 and os.environ["OMP_NUM_THREADS"] == "1"


def test_window_is_the_longest_utterance(tmp_path):
    import run_demo

    rows = [{"duration": 2.01}, {"duration": 6.61}]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "test.jsonl").write_text(json.dumps({"duration": 3.0}) + "\n")
    assert run_demo._window_seconds(tmp_path) == 7


def test_without_the_demo_extra_falls_back_to_the_random_encoder(monkeypatch):
    import run_demo

    monkeypatch.setattr("dtw_align_hf.pretrained.offline_whisper", lambda *a, **k: None)
    path, note = run_demo._pretrained_encoder(7)
    assert path is None and 'pip install "dtw-align-hf[demo]"' in note


def test_run_demo_fresh_removes_old_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("DTW_ALIGN_HF_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    (out / "stale").mkdir(parents=True)
    _run(["--quick", "--fresh", "--encoders", "random", "--threads", "1", "--output_dir", str(out)])
    assert not (out / "stale").exists()
