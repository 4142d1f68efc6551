"""run_demo.py (the README's main job) runs end to end in its --quick mode and writes what it promises."""

import json
import os


def test_run_demo_quick(tmp_path, monkeypatch):
    monkeypatch.setenv("DTW_ALIGN_HF_CACHE", str(tmp_path / "cache"))
    cwd = os.getcwd()
    import run_demo

    try:
        summary = run_demo.main(["--quick", "--output_dir", str(tmp_path / "demo")])
    finally:
        os.chdir(cwd)  # run_demo works from the repository root
    out = tmp_path / "demo"
    for name in ("results.md", "demo_summary.json", "training_curves.png"):
        assert (out / name).is_file(), name
    assert (out / "finetune_st" / "model.safetensors").is_file()
    assert (out / "finetune_st" / "README.md").is_file()  # the model card
    for method in run_demo.METHODS:
        assert list((out / "alignment_plots" / method).glob("*.png")), method
    assert set(summary["alignment"]) == set(run_demo.METHODS)
    assert summary["example"]["hypothesis"] is not None
    assert summary["st"]["bleu_signature"].startswith("nrefs:1")
    assert json.loads((out / "demo_summary.json").read_text())["example"]["transcript"]
    results = (out / "results.md").read_text()
    assert "| dtw |" in results and "Quick smoke run" in results


def test_run_demo_fresh_removes_old_outputs(tmp_path, monkeypatch):
    import run_demo

    monkeypatch.setenv("DTW_ALIGN_HF_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    (out / "stale").mkdir(parents=True)
    cwd = os.getcwd()
    try:
        run_demo.main(["--quick", "--fresh", "--output_dir", str(out)])
    finally:
        os.chdir(cwd)
    assert not (out / "stale").exists()
