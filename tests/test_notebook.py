"""examples/quickstart.ipynb runs top to bottom against a tiny model saved the way training saves one."""

import os
from pathlib import Path

import pytest
import soundfile as sf


nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_executes(tmp_path, monkeypatch):
    from dtw_align_hf.testing_utils import make_tiny_model, synthetic_audio

    model, processor = make_tiny_model(tmp_path / "parts")
    model_dir = tmp_path / "model"
    model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)

    audio = synthetic_audio(seconds=1.5, seed=3)
    audio_path = tmp_path / "utt.wav"
    sf.write(audio_path, audio, 16000)

    monkeypatch.setenv("DTW_ALIGN_MODEL", str(model_dir))
    monkeypatch.setenv("DTW_ALIGN_AUDIO", str(audio_path))
    monkeypatch.setenv("DTW_ALIGN_TRANSCRIPT", "the cat sat on the mat")
    # the kernel imports dtw_align_hf from the repository even where the package is not installed
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()

    outputs = "".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    )
    assert "hypothesis:" in outputs
    assert "valid: True" in outputs
    png = tmp_path / "quickstart_alignment.png"
    assert png.is_file() and png.stat().st_size > 1000
    images = [out for cell in nb.cells for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
    assert images, "the alignment plot is displayed inline"
