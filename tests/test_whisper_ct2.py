"""The CTranslate2 -> transformers Whisper converter, checked against CTranslate2 itself.

A tiny random transformers Whisper is converted to CTranslate2 with CTranslate2's own converter and back with
ours: the state dict must come back exactly, and the converted model must give CTranslate2's encoder output and
greedy token ids. ctranslate2 is a test-only dependency (the ``dev`` extra); without it those tests skip.
"""

import json
import struct

import numpy as np
import pytest
import torch

from dtw_align_hf.whisper_ct2 import convert_ct2_whisper, main, read_ct2_model_bin


SPECIALS = [
    "<|endoftext|>",
    "<|startoftranscript|>",
    "<|en|>",
    "<|de|>",
    "<|fr|>",
    "<|translate|>",
    "<|transcribe|>",
    "<|startoflm|>",
    "<|startofprev|>",
    "<|nocaptions|>",
    "<|notimestamps|>",
]
MAX_SOURCE_POSITIONS = 40  # 80 mel frames (0.8 s): keeps every forward pass in milliseconds


def _byte_level_vocab() -> dict[str, int]:
    """GPT-2's byte -> printable-character table (Whisper's byte-level BPE alphabet), one token per byte."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return {c: i for i, c in enumerate(chars)}


def _tiny_whisper(tmp_path, *, tie: bool = True):
    from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperTokenizer

    tokenizer = WhisperTokenizer(vocab=_byte_level_vocab(), merges=[])
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIALS[1:]})
    ids = dict(zip(SPECIALS, tokenizer.convert_tokens_to_ids(SPECIALS), strict=True))
    eot, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    config = WhisperConfig(
        vocab_size=len(tokenizer) + 5,  # + a few timestamp tokens, as in the real vocabularies
        num_mel_bins=80,
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=MAX_SOURCE_POSITIONS,
        max_target_positions=32,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=sot,
        suppress_tokens=[5, 6, 7],
        begin_suppress_tokens=[220 % len(tokenizer), eot],
        tie_word_embeddings=tie,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # random values everywhere, so that a swapped or missed tensor cannot go unnoticed
        for name, param in model.named_parameters():
            if name.endswith("layer_norm.weight"):
                param.fill_(1.0)  # identical tensors: CTranslate2 stores all but one as aliases
            elif "embed_positions" not in name:
                param.normal_(0.0, 0.3)
    model.generation_config.lang_to_id = {t: ids[t] for t in ("<|en|>", "<|de|>", "<|fr|>")}
    model.generation_config.task_to_id = {"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]}
    model.generation_config.no_timestamps_token_id = ids["<|notimestamps|>"]
    model.generation_config.is_multilingual = True
    model.generation_config.alignment_heads = [[1, 0], [1, 2]]
    model.generation_config._from_model_config = False  # else from_pretrained rebuilds it from the model config
    src = tmp_path / ("hf_tied" if tie else "hf_untied")
    model.save_pretrained(src)
    tokenizer.save_pretrained(src)
    return model, src, ids


def _ct2_convert(ctranslate2, src, out, quantization):
    converter = ctranslate2.converters.TransformersConverter(str(src), copy_files=["tokenizer.json"])
    converter.convert(str(out), quantization=quantization, force=True)
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 (dev extra) is not installed")
    tmp = tmp_path_factory.mktemp("whisper_ct2")
    model, src, ids = _tiny_whisper(tmp)
    ct2_dir = _ct2_convert(ctranslate2, src, tmp / "ct2_float32", "float32")
    hf_dir = convert_ct2_whisper(ct2_dir, tmp / "converted")
    return {
        "ctranslate2": ctranslate2,
        "model": model,
        "src": src,
        "ids": ids,
        "ct2_dir": ct2_dir,
        "hf_dir": hf_dir,
        "tmp": tmp,
    }


def _features(batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, 80, 2 * MAX_SOURCE_POSITIONS)).astype(np.float32)


def test_round_trip_state_dict_is_the_original(tiny):
    from transformers import WhisperForConditionalGeneration

    converted, info = WhisperForConditionalGeneration.from_pretrained(tiny["hf_dir"], output_loading_info=True)
    assert not any(info.values()), info
    original = tiny["model"].state_dict()
    ours = converted.state_dict()
    assert set(ours) == set(original)
    for name, value in original.items():
        assert torch.equal(ours[name], value), name
    assert read_ct2_model_bin(tiny["ct2_dir"] / "model.bin").aliases  # the alias path was exercised
    for key in ("d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads", "vocab_size"):
        assert getattr(converted.config, key) == getattr(tiny["model"].config, key), key
    assert converted.config.tie_word_embeddings
    assert converted.config.decoder_start_token_id == tiny["ids"]["<|startoftranscript|>"]
    gen = converted.generation_config
    assert gen.lang_to_id == tiny["model"].generation_config.lang_to_id
    assert gen.task_to_id == tiny["model"].generation_config.task_to_id
    assert gen.no_timestamps_token_id == tiny["ids"]["<|notimestamps|>"]
    assert gen.suppress_tokens == [5, 6, 7]


def test_encoder_output_matches_ctranslate2(tiny):
    from transformers import WhisperForConditionalGeneration

    ctranslate2 = tiny["ctranslate2"]
    model = WhisperForConditionalGeneration.from_pretrained(tiny["hf_dir"]).eval()
    ct2 = ctranslate2.models.Whisper(str(tiny["ct2_dir"]), device="cpu", compute_type="float32", intra_threads=1)
    features = _features()
    reference = np.array(ct2.encode(ctranslate2.StorageView.from_array(features)))
    with torch.no_grad():
        ours = model.model.encoder(torch.from_numpy(features)).last_hidden_state.numpy()
    assert ours.shape == reference.shape == (2, MAX_SOURCE_POSITIONS, 32)
    np.testing.assert_allclose(ours, reference, atol=1e-4, rtol=1e-4)
    assert np.abs(reference).max() > 0.5  # a meaningful, non-degenerate output


def test_greedy_decoding_matches_ctranslate2(tiny):
    from transformers import GenerationConfig, GenerationMixin, WhisperForConditionalGeneration

    ctranslate2, ids = tiny["ctranslate2"], tiny["ids"]
    model = WhisperForConditionalGeneration.from_pretrained(tiny["hf_dir"]).eval()
    ct2 = ctranslate2.models.Whisper(str(tiny["ct2_dir"]), device="cpu", compute_type="float32", intra_threads=1)
    features = _features(batch=3, seed=1)
    prompt = [ids[t] for t in ("<|startoftranscript|>", "<|de|>", "<|transcribe|>", "<|notimestamps|>")]
    # CTranslate2 caps Whisper's output at half the decoder positions (16 tokens here), as openai-whisper does
    reference = [
        r.sequences_ids[0]
        for r in ct2.generate(ctranslate2.StorageView.from_array(features), [prompt] * 3, beam_size=1, max_length=32)
    ]
    assert [len(r) for r in reference] == [16, 16, 16]
    # plain greedy search with the converted generation config's token suppression
    gen = model.generation_config
    greedy = GenerationConfig(
        decoder_start_token_id=gen.decoder_start_token_id,
        eos_token_id=gen.eos_token_id,
        pad_token_id=gen.pad_token_id,
        suppress_tokens=gen.suppress_tokens,
        begin_suppress_tokens=gen.begin_suppress_tokens,
        do_sample=False,
        num_beams=1,
        max_length=len(prompt) + 16,
    )
    with torch.no_grad():
        plain = GenerationMixin.generate(
            model,
            input_features=torch.from_numpy(features),
            decoder_input_ids=torch.tensor([prompt] * 3),
            generation_config=greedy,
        )
    assert [row[len(prompt) :] for row in plain.tolist()] == reference
    assert not {t for r in reference for t in r} & {5, 6, 7}  # the converted suppress_tokens are applied
    # Whisper's own generate() (language and task given, as users call it) starts the same way
    with torch.no_grad():
        whisper = model.generate(
            torch.from_numpy(features), language="de", task="transcribe", do_sample=False, max_new_tokens=10
        )
    assert [row[:10] for row in whisper.tolist()] == [r[:10] for r in reference]


def test_int8_and_float16_checkpoints_dequantize_to_the_original(tiny):
    from safetensors.numpy import load_file

    ctranslate2 = tiny["ctranslate2"]
    original = {k: v.numpy() for k, v in tiny["model"].state_dict().items()}
    int8_dir = _ct2_convert(ctranslate2, tiny["src"], tiny["tmp"] / "ct2_int8", "int8")
    assert "int8" in read_ct2_model_bin(int8_dir / "model.bin").dtypes()
    ours = load_file(str(convert_ct2_whisper(int8_dir, tiny["tmp"] / "from_int8") / "model.safetensors"))
    quantized = 0
    for name, value in ours.items():
        if value.ndim >= 2 and "embed_positions" not in name:  # linear, conv and embedding weights: int8 rows
            rows = original[name].reshape(original[name].shape[0], -1)
            step = np.abs(rows).max(axis=1, keepdims=True) / 127.0  # int8 step of each output row
            assert np.all(np.abs(value.reshape(rows.shape) - rows) <= 0.5 * step + 1e-7), name
            assert not np.array_equal(value, original[name])
            quantized += 1
        else:  # biases, layer norms and position tables stay float32
            np.testing.assert_array_equal(value, original[name], err_msg=name)
    assert quantized >= 20

    f16_dir = _ct2_convert(ctranslate2, tiny["src"], tiny["tmp"] / "ct2_float16", "float16")
    ours = load_file(
        str(convert_ct2_whisper(f16_dir, tiny["tmp"] / "from_f16", dtype="float16") / "model.safetensors")
    )
    for name, value in ours.items():
        assert value.dtype == np.float16
        np.testing.assert_array_equal(value, original[name].astype(np.float16), err_msg=name)


def test_untied_output_projection_is_kept(tmp_path):
    ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 (dev extra) is not installed")
    from transformers import WhisperForConditionalGeneration

    model, src, _ = _tiny_whisper(tmp_path, tie=False)
    assert not torch.equal(model.proj_out.weight, model.model.decoder.embed_tokens.weight)
    ct2_dir = _ct2_convert(ctranslate2, src, tmp_path / "ct2", "float32")
    converted = WhisperForConditionalGeneration.from_pretrained(convert_ct2_whisper(ct2_dir, tmp_path / "hf"))
    assert not converted.config.tie_word_embeddings
    assert torch.equal(converted.proj_out.weight, model.proj_out.weight)


def test_converted_folder_has_processor_files(tiny):
    from transformers import WhisperFeatureExtractor, WhisperTokenizer

    feature_extractor = WhisperFeatureExtractor.from_pretrained(tiny["hf_dir"])
    assert feature_extractor.feature_size == 80 and feature_extractor.sampling_rate == 16000
    tokenizer = WhisperTokenizer.from_pretrained(tiny["hf_dir"])
    assert tokenizer.convert_tokens_to_ids("<|notimestamps|>") == tiny["ids"]["<|notimestamps|>"]
    assert not list(tiny["hf_dir"].parent.glob(".converted.tmp-*"))  # the temporary folder was renamed


# --------------------------------------------------------------------------------------------------------------
# error paths: no ctranslate2 needed


def _write_fake_bin(path, *, version=6, spec="WhisperSpec", truncate=0):
    def text(s):
        raw = s.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    body = struct.pack("<I", version) + text(spec) + struct.pack("<I", 3) + struct.pack("<I", 1)
    body += text("encoder/num_heads") + struct.pack("<B", 0) + struct.pack("<B", 2) + struct.pack("<I", 2)
    body += struct.pack("<h", 4) + struct.pack("<I", 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body[: len(body) - truncate] if truncate else body)
    (path.parent / "config.json").write_text(json.dumps({}))
    return path


def test_reader_parses_a_handmade_file(tmp_path):
    checkpoint = read_ct2_model_bin(_write_fake_bin(tmp_path / "m" / "model.bin"))
    assert checkpoint.spec_name == "WhisperSpec" and checkpoint.binary_version == 6
    assert int(checkpoint.variables["encoder/num_heads"]) == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"version": 7}, "binary version 7 is not supported"),
        ({"truncate": 3}, "truncated"),
        ({"spec": "TransformerSpec"}, "not a Whisper model"),
    ],
)
def test_bad_model_bin_is_refused_clearly(tmp_path, kwargs, message):
    _write_fake_bin(tmp_path / "m" / "model.bin", **kwargs)
    with pytest.raises(ValueError, match=message):
        convert_ct2_whisper(tmp_path / "m", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_wrong_file_and_missing_folder(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    (tmp_path / "m" / "model.bin").write_bytes(b"PK\x03\x04 this is a zip file, not a CTranslate2 model")
    with pytest.raises(ValueError, match="not supported"):
        convert_ct2_whisper(tmp_path / "m", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        convert_ct2_whisper(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "m" / "model.bin").unlink()
    with pytest.raises(FileNotFoundError, match="model.bin"):
        convert_ct2_whisper(tmp_path / "m", tmp_path / "out")


def test_cli_reports_errors_and_refuses_to_overwrite(tmp_path, capsys):
    _write_fake_bin(tmp_path / "m" / "model.bin", version=4)
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "m"), str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "binary version 4" in capsys.readouterr().err
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(SystemExit):
        main([str(tmp_path / "m"), str(tmp_path / "out")])
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "out" / "keep.txt").is_file()


def test_cli_converts(tiny, tmp_path):
    out = main([str(tiny["ct2_dir"]), str(tmp_path / "cli_out")])
    assert (out / "model.safetensors").is_file() and (out / "generation_config.json").is_file()
