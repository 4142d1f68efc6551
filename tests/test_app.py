"""examples/app.py: the core function without a browser (fast), and the page in headless Chromium (slow).

The browser test starts the app on 127.0.0.1 against a tiny saved model, uploads a WAV file, types the transcript,
clicks Translate and waits for the translation and the alignment plot. Its screenshot is kept under the test's tmp
folder (the path is printed) and copied to `$DTW_ALIGN_HF_ARTIFACTS` when set. It needs gradio and playwright
(`pip install -e ".[app]"`) and Debian's chromium (`apt-get install chromium`); it skips cleanly without them.
"""

import importlib.util
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from dtw_align_hf.metrics import alignment_statistics
from dtw_align_hf.testing_utils import synthetic_audio


REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("DTW_ALIGN_HF_CHROMIUM", "/usr/bin/chromium")
TRANSCRIPT = "das kleine haus"


def _load_app():
    spec = importlib.util.spec_from_file_location("dtw_align_app", REPO / "examples" / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["dtw_align_app"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def app_module():
    module = _load_app()
    yield module
    module.load_model.cache_clear()
    sys.modules.pop("dtw_align_app", None)


@pytest.fixture
def model_dir(make_model, tiny_processor, tmp_path):
    path = tmp_path / "model"
    model = make_model(alignment="dtw")
    model.generation_config.max_length = 24  # as trained checkpoints carry (stage 1 writes max_length)
    model.save_pretrained(path)
    tiny_processor.save_pretrained(path)
    return path


def test_model_path_resolution(app_module, monkeypatch):
    monkeypatch.delenv(app_module.MODEL_ENV, raising=False)
    assert app_module.resolve_model_path() == "runs/demo/finetune_st_whisper"
    monkeypatch.setenv(app_module.MODEL_ENV, "runs/x")
    assert app_module.resolve_model_path() == "runs/x"
    assert app_module.resolve_model_path("cli/wins") == "cli/wins"
    with pytest.raises(FileNotFoundError, match="make demo"):
        app_module.load_model("no/such/folder/here")


def test_translate_and_align_matches_the_model(app_module, model_dir, tmp_path):
    from dtw_align_hf import DTWAlignForSpeechTranslation, DTWAlignProcessor
    from dtw_align_hf.alignment import align

    wav = synthetic_audio(1.0, seed=11)
    wav_path = tmp_path / "clip.wav"
    sf.write(wav_path, wav, 16000, subtype="FLOAT")
    translation, plot, stats = app_module.translate_and_align(str(wav_path), TRANSCRIPT, str(model_dir), tmp_path)

    model = DTWAlignForSpeechTranslation.from_pretrained(model_dir).eval()
    processor = DTWAlignProcessor.from_pretrained(model_dir)
    batch = processor(audio=wav, sampling_rate=16000, text=[TRANSCRIPT])
    with torch.no_grad():
        ids = model.generate(batch["input_values"], attention_mask=batch["attention_mask"])
        speech, frame_mask = model.speech_embeddings(batch["input_values"], batch["attention_mask"])
        out = align(speech, model.embed_text(batch["input_ids"]), frame_mask.bool(), batch["text_attention_mask"])
    assert translation == processor.batch_decode(ids)[0]
    expected = alignment_statistics(out.frame_to_token, num_tokens=batch["text_attention_mask"].sum(-1))
    assert stats["method"] == "dtw" and stats["coverage"] == 1.0 and stats["monotonic"] == 1.0
    for key in ("num_frames", "num_tokens", "frames_per_token_max", "longest_segment_share"):
        assert stats[key] == pytest.approx(expected[key])
    assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # gradio's microphone tuple: int16 at 48 kHz, stereo -> float mono at 16 kHz (a 440 Hz tone, known in closed form)
    tone = lambda rate: 0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)  # noqa: E731
    stereo = (np.stack([tone(48000)] * 2, axis=1) * 32768).astype(np.int16)
    mono = app_module.read_audio((48000, stereo), 16000)
    assert mono.dtype == np.float32 and mono.shape == (16000,)
    np.testing.assert_allclose(mono[200:-200], tone(16000)[200:-200], atol=2e-3)  # edges: filter transients
    assert isinstance(app_module.translate_and_align((48000, stereo), "", str(model_dir))[0], str)
    # no transcript: a translation only
    assert app_module.translate_and_align(str(wav_path), "  ", str(model_dir))[1:] == (None, None)
    with pytest.raises(ValueError, match="No audio"):
        app_module.translate_and_align(None, TRANSCRIPT, str(model_dir))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_app_in_headless_chromium(app_module, model_dir, tmp_path):
    pytest.importorskip("gradio")
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium, or set DTW_ALIGN_HF_CHROMIUM)")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    wav_path = tmp_path / "demo_clip.wav"
    sf.write(wav_path, synthetic_audio(1.5, seed=12), 16000)
    app = app_module.build_app(str(model_dir))
    port = _free_port()
    app.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, theme=app_module.theme()
    )
    screenshot = tmp_path / "app_screenshot.png"
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                ],
            )  # fmt: skip
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded", timeout=60_000)
            page.wait_for_selector("#translate", timeout=60_000)
            page.locator("#audio input[type=file]").set_input_files(str(wav_path))
            page.wait_for_selector("#audio audio, #audio .waveform-container, #audio [data-testid='waveform-x']",
                                   state="attached", timeout=60_000)  # fmt: skip
            page.locator("#transcript textarea").fill(TRANSCRIPT)
            page.locator("#translate").click()
            page.wait_for_selector("#alignment-plot img", timeout=120_000)
            deadline = time.monotonic() + 60
            while not page.locator("#translation textarea").input_value() and time.monotonic() < deadline:
                time.sleep(0.2)
            translation = page.locator("#translation textarea").input_value()
            src = page.locator("#alignment-plot img").get_attribute("src")
            page.wait_for_function(
                "document.querySelector('#alignment-plot img') && "
                "document.querySelector('#alignment-plot img').naturalWidth > 0",
                timeout=30_000,
            )
            stats_text = page.locator("#alignment-stats").inner_text()
            page.screenshot(path=str(screenshot), full_page=True)
            browser.close()
    finally:
        app.close()
    print(f"\n[test_app] screenshot: {screenshot}")  # noqa: T201 (the artefact path is part of the report)
    artifacts = os.environ.get("DTW_ALIGN_HF_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(artifacts) / screenshot.name)
        print(f"[test_app] copied to {Path(artifacts) / screenshot.name}")  # noqa: T201
    expected, _, _ = app_module.translate_and_align(str(wav_path), "", str(model_dir))
    assert translation == expected and translation.strip()
    assert src and "alignment" in src
    assert "coverage" in stats_text
    assert screenshot.stat().st_size > 10_000
