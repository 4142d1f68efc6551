"""DTWAlignForSpeechTranslation on tiny random parts (hidden 32, 2 layers, vocab < 100, batch 2-3)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoModelForSpeechSeq2Seq, AutoProcessor, HubertModel

from dtw_align_hf import DTWAlignConfig, DTWAlignForSpeechTranslation, DTWAlignProcessor, DTWAlignSeq2SeqLMOutput
from dtw_align_hf.losses import label_smoothed_cross_entropy
from dtw_align_hf.testing_utils import synthetic_audio


def _grad_norm(module: torch.nn.Module) -> float:
    return sum(p.grad.abs().sum().item() for p in module.parameters() if p.grad is not None)


# ---------------------------------------------------------------- forward, shapes, loss formula


def test_st_forward_shapes_and_eval_loss(make_model, make_batch):
    model, batch = make_model(), make_batch(n=3)
    with torch.no_grad():
        out = model(**batch)
    assert isinstance(out, DTWAlignSeq2SeqLMOutput)
    assert out.logits.shape == (*batch["labels"].shape, model.config.text_config.vocab_size)
    # evaluation: ST only, no multitask terms even with the transcript present
    assert out.loss_mt is None and out.loss_mix is None and out.loss_kl is None and out.align_valid_frac is None
    torch.testing.assert_close(out.loss, out.loss_st)
    expected = label_smoothed_cross_entropy(out.logits, batch["labels"], 0.1)[0] / (batch["labels"] != -100).sum()
    torch.testing.assert_close(out.loss, expected)
    encoder = model.get_encoder()(batch["input_values"], batch["attention_mask"])
    # independent count: tiny HuBERT CNN (kernel, stride) = (10, 5), (4, 4), (4, 4), then two (5, 2) convs padded by 2
    expected_frames = []
    for n in batch["attention_mask"].sum(-1).tolist():
        for k, s in ((10, 5), (4, 4), (4, 4)):
            n = (n - k) // s + 1
        for _ in range(2):
            n = (n + 4 - 5) // 2 + 1
        expected_frames.append(n)
    assert encoder.attention_mask.sum(-1).tolist() == expected_frames == [50, 35, 45]
    assert encoder.last_hidden_state.shape == (3, 50, 32)


def test_weighted_total_and_num_items(make_model, make_batch):
    model, batch = make_model(st_weight=1.0, mt_weight=0.5, mix_weight=0.25, kl_weight=2.0), make_batch()
    model.train()
    torch.manual_seed(1)
    out = model(**batch)
    total = out.loss_st + 0.5 * out.loss_mt + 0.25 * out.loss_mix + 2.0 * out.loss_kl
    torch.testing.assert_close(out.loss, total)
    n = (batch["labels"] != -100).sum()
    torch.manual_seed(1)
    doubled = model(**batch, num_items_in_batch=2 * n)
    torch.testing.assert_close(doubled.loss, out.loss / 2)


# ---------------------------------------------------------------- one training step per alignment x mixup


@pytest.mark.parametrize("mixup", ["interpolation", "discrete"])
@pytest.mark.parametrize("alignment", ["dtw", "cmot", "nn", "uniform", "none"])
def test_training_step(make_model, make_batch, alignment, mixup):
    model, batch = make_model(alignment=alignment, mixup=mixup), make_batch()
    model.train()
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert _grad_norm(model.adapter) > 0
    assert _grad_norm(model.mt.model.encoder) > 0 and _grad_norm(model.mt.model.decoder) > 0
    assert _grad_norm(model.speech_encoder) > 0
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert torch.isfinite(out.loss_mt)
    if alignment == "none":
        assert out.loss_mix is None and out.loss_kl is None and out.align_valid_frac is None
    else:
        assert torch.isfinite(out.loss_mix) and torch.isfinite(out.loss_kl)
        assert out.align_valid_frac.item() == 1.0
        assert out.align_frames_per_token.item() > 1.0
        assert out.align_seconds is None  # timing only when asked (`alignment_timing`)


@pytest.mark.parametrize("level", ["token", "frame"])
@pytest.mark.parametrize("position", ["encoder_input", "encoder_output"])
def test_mixup_levels_and_positions(make_model, make_batch, level, position):
    model, batch = make_model(mixup_level=level, mix_position=position, mixup_ratio_schedule="uniform"), make_batch()
    model.train()
    out = model(**batch)
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(out.loss_mix)
    assert _grad_norm(model.adapter) > 0


def test_cmot_preset_step(make_model, make_batch):
    model, batch = make_model(preset="cmot"), make_batch()
    model.train()
    out = model(**batch)
    # the mixup CE is logged but not in the loss (CMOT's released criterion)
    torch.testing.assert_close(out.loss, out.loss_st + out.loss_mt + 2.0 * out.loss_kl)
    assert out.loss_mix is not None


@pytest.mark.parametrize(
    "overrides",
    [
        {"mixup": "interpolation", "mixup_level": "frame", "mix_position": "encoder_input", "mixup_ratio": 0.0},
        {"mixup": "discrete", "mixup_level": "frame", "mix_position": "encoder_output", "discrete_mixup_prob": 0.0},
        {"mixup": "interpolation", "mixup_level": "frame", "mix_position": "encoder_output", "mixup_ratio": 0.0},
    ],
)
def test_zero_mixing_ratio_reproduces_the_st_pass(make_model, make_batch, overrides):
    """With no text in the mix, the mixup pass must be the speech pass: same CE, zero KL to the ST output."""
    model, batch = make_model(kl_mt_mix=False, **overrides), make_batch()
    model.train()
    out = model(**batch)
    torch.testing.assert_close(out.loss_mix, out.loss_st, rtol=1e-5, atol=1e-5)
    assert out.loss_kl.item() < 1e-6
    # and the full-text end is different: the wiring really mixes
    full = dict(overrides, mixup_ratio=1.0, discrete_mixup_prob=1.0)
    model = make_model(kl_mt_mix=False, **full)
    model.train()
    assert (model(**batch).loss_mix - out.loss_st).abs() > 1e-4


def test_infeasible_samples_are_excluded_from_mixup(make_model, make_batch):
    model = make_model()
    # sample 1: 0.1 s of audio -> 4 frames, but a 20-token transcript: DTW cannot align it
    long_transcript = "das kleine rote haus sieht die alte katze und den grossen hund am fluss in der stadt"
    batch = make_batch(n=2, seconds=(1.0, 0.1), transcripts=["das haus", long_transcript])
    model.train()
    out = model(**batch)
    assert out.align_valid_frac.item() == 0.5
    assert torch.isfinite(out.loss) and out.loss_mix is not None
    out.loss.backward()
    # the unaligned sample adds nothing to the mixup and KL terms: equal to the aligned sample alone
    alone = make_batch(n=1, seconds=(1.0,), transcripts=["das haus"])
    with torch.no_grad():
        both, one = model(**batch, num_items_in_batch=10), model(**alone, num_items_in_batch=10)
    torch.testing.assert_close(both.loss_mix, one.loss_mix, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(both.loss_kl, one.loss_kl, rtol=1e-4, atol=1e-5)
    only_bad = make_batch(n=1, seconds=(0.1,), transcripts=[long_transcript])
    out = model(**only_bad)
    assert out.align_valid_frac.item() == 0.0
    # no host sync picks the aligned samples: the mixup pass runs, with every target of the sample masked out
    assert out.loss_mix.item() == 0.0 and out.loss_kl.item() == 0.0 and torch.isfinite(out.loss)
    torch.testing.assert_close(out.loss, out.loss_st + out.loss_mt)


def test_linear_schedule_reads_training_progress(make_model, make_batch):
    model, batch = make_model(mixup_ratio_schedule="linear", mixup_level="frame", kl_mt_mix=False), make_batch()
    model.train()
    model.set_training_progress(1.0)  # lam -> mixup_ratio_min = 0: mix pass == ST pass
    out = model(**batch)
    torch.testing.assert_close(out.loss_mix, out.loss_st, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- save / load / Auto / remote code


def test_save_load_identical_logits_and_auto_classes(make_model, make_batch, tiny_processor, tmp_path):
    model, batch = make_model(), make_batch()
    model.save_pretrained(tmp_path)
    tiny_processor.save_pretrained(tmp_path)
    files = set(os.listdir(tmp_path))
    assert "model.safetensors" in files and not any(f.endswith(".bin") for f in files)
    assert {"configuration_dtw_align.py", "modeling_dtw_align.py", "alignment.py", "mixup.py", "losses.py"} <= files
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"]["AutoModelForSpeechSeq2Seq"] == "modeling_dtw_align.DTWAlignForSpeechTranslation"
    assert config["model_type"] == "dtw_align"
    assert set(load_file(tmp_path / "model.safetensors")) >= {"adapter.convs.0.weight", "mt.model.shared.weight"}

    assert isinstance(AutoConfig.from_pretrained(tmp_path), DTWAlignConfig)
    assert isinstance(AutoProcessor.from_pretrained(tmp_path), DTWAlignProcessor)
    for loaded in (
        DTWAlignForSpeechTranslation.from_pretrained(tmp_path),
        AutoModelForSpeechSeq2Seq.from_pretrained(tmp_path),
    ):
        assert isinstance(loaded, DTWAlignForSpeechTranslation)
        loaded.eval()
        with torch.no_grad():
            torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits, rtol=0, atol=0)
        # tied embeddings survive the round trip
        assert loaded.mt.lm_head.weight.data_ptr() == loaded.mt.model.shared.weight.data_ptr()


REMOTE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    class _Block:  # make our package unimportable, even through the editable install's path hook
        def find_spec(self, name, path=None, target=None):
            if name == "dtw_align_hf" or name.startswith("dtw_align_hf."):
                raise ModuleNotFoundError(name)
    sys.meta_path.insert(0, _Block())
    sys.path = [p for p in sys.path if p not in ("", ".", REPO)]
    import torch
    from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor
    try:
        import dtw_align_hf
        raise SystemExit("package still importable")
    except ModuleNotFoundError:
        pass
    model = AutoModelForSpeechSeq2Seq.from_pretrained(CKPT, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(CKPT, trust_remote_code=True)
    batch = torch.load(BATCH)
    ids = model.generate(batch["input_values"], attention_mask=batch["attention_mask"], num_beams=2, max_new_tokens=6)
    print(json.dumps({"ids": ids.tolist(), "model": type(model).__module__, "processor": type(processor).__name__}))
    """
)


def test_remote_code_loads_without_the_package(make_model, make_batch, tiny_processor, tmp_path):
    model, batch = make_model(), make_batch()
    ckpt = tmp_path / "ckpt"
    model.save_pretrained(ckpt)
    tiny_processor.save_pretrained(ckpt)
    torch.save({k: batch[k] for k in ("input_values", "attention_mask")}, tmp_path / "batch.pt")
    script = (
        f"REPO = {str(Path(__file__).parents[1])!r}\nCKPT = {str(ckpt)!r}\nBATCH = {str(tmp_path / 'batch.pt')!r}\n"
    )
    env = dict(os.environ, HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_OFFLINE="1", PYTHONPATH="")
    result = subprocess.run(
        [sys.executable, "-c", script + REMOTE_SCRIPT],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert remote["model"].startswith("transformers_modules.")
    assert remote["processor"] == "DTWAlignProcessor"
    with torch.no_grad():
        local = model.generate(
            batch["input_values"], attention_mask=batch["attention_mask"], num_beams=2, max_new_tokens=6
        )
    assert remote["ids"] == local.tolist()


# ---------------------------------------------------------------- composition from pretrained parts


def test_from_pretrained_parts_keeps_the_pretrained_weights(make_model, tiny_speech_encoder_dir, tiny_mt_dir):
    model = make_model(speech_layerdrop=0.0, text_dropout=0.2, alignment="cmot")
    hubert = HubertModel.from_pretrained(tiny_speech_encoder_dir)
    mt = AutoModelForSeq2SeqLM.from_pretrained(tiny_mt_dir)
    for name, tensor in hubert.state_dict().items():
        torch.testing.assert_close(model.speech_encoder.state_dict()[name], tensor, rtol=0, atol=0)
    for name, tensor in mt.state_dict().items():
        torch.testing.assert_close(model.mt.state_dict()[name], tensor, rtol=0, atol=0)
    assert model.config.text_config.dropout == 0.2 and model.config.alignment == "cmot"
    assert model.config.speech_config is model.speech_encoder.config


# ---------------------------------------------------------------- generation


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generate_batch_one_equals_padded_batch(make_model, make_batch, num_beams):
    model, batch = make_model(), make_batch(n=3)
    kwargs = {"num_beams": num_beams, "max_new_tokens": 8, "do_sample": False}
    with torch.no_grad():
        padded = model.generate(batch["input_values"], attention_mask=batch["attention_mask"], **kwargs)
        for i in range(3):
            n = int(batch["attention_mask"][i].sum())
            single = model.generate(
                batch["input_values"][i : i + 1, :n], attention_mask=batch["attention_mask"][i : i + 1, :n], **kwargs
            )
            row = padded[i][: single.shape[1]]
            assert single[0].tolist() == row.tolist()
            assert (padded[i][single.shape[1] :] == model.config.pad_token_id).all()


def test_generate_forces_the_target_language(make_model, make_batch, tiny_lang_tokenizer_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lang_tokenizer_dir)
    model, batch = make_model(), make_batch()
    de = tokenizer.convert_tokens_to_ids("<lang:de>")
    assert de < model.config.text_config.vocab_size
    ids = model.generate(
        batch["input_values"], attention_mask=batch["attention_mask"], max_new_tokens=4, forced_bos_token_id=de
    )
    assert ids[:, 0].tolist() == [model.config.decoder_start_token_id] * 2 and ids[:, 1].tolist() == [de, de]


def test_generate_from_text_uses_the_mt_path(make_model, make_batch, tiny_mt_dir):
    model, batch = make_model(), make_batch()
    ours = model.generate_from_text(batch["input_ids"], batch["text_attention_mask"], max_new_tokens=6, num_beams=2)
    mt = AutoModelForSeq2SeqLM.from_pretrained(tiny_mt_dir).eval()
    theirs = mt.generate(
        input_ids=batch["input_ids"], attention_mask=batch["text_attention_mask"], max_new_tokens=6, num_beams=2
    )
    assert ours.tolist() == theirs.tolist()


def test_generate_ignores_the_transcript_and_labels_of_a_training_batch(make_model, make_batch):
    # Seq2SeqTrainer(predict_with_generate=True) passes the whole batch; GenerationMixin alone would take the
    # transcript `input_ids` as a decoder prompt.
    model, batch = make_model(), make_batch()
    reference = model.generate(batch["input_values"], attention_mask=batch["attention_mask"], max_new_tokens=6)
    assert model.generate(**batch, max_new_tokens=6).tolist() == reference.tolist()
    assert (
        model.generate(inputs=batch["input_values"], attention_mask=batch["attention_mask"], max_new_tokens=6).tolist()
        == reference.tolist()
    )


def test_generate_with_only_text_uses_the_mt_path(make_model, make_batch):
    model, batch = make_model(), make_batch()
    expected = model.generate_from_text(batch["input_ids"], batch["text_attention_mask"], max_new_tokens=5)
    got = model.generate(input_ids=batch["input_ids"], attention_mask=batch["text_attention_mask"], max_new_tokens=5)
    assert got.tolist() == expected.tolist()


def test_generate_cache_equals_no_cache(make_model, make_batch):
    model, batch = make_model(), make_batch()
    a = model.generate(batch["input_values"], attention_mask=batch["attention_mask"], max_new_tokens=6, use_cache=True)
    b = model.generate(
        batch["input_values"], attention_mask=batch["attention_mask"], max_new_tokens=6, use_cache=False
    )
    assert a.tolist() == b.tolist()


# ---------------------------------------------------------------- freezing, checkpointing


def test_freezing(make_model, make_batch):
    model, batch = make_model(), make_batch()
    model.freeze_feature_encoder()
    model.train()
    model(**batch).loss.backward()
    assert _grad_norm(model.speech_encoder.feature_extractor) == 0
    assert _grad_norm(model.speech_encoder.encoder) > 0
    model.zero_grad(set_to_none=True)
    model.freeze_speech_encoder()
    model(**batch).loss.backward()
    assert _grad_norm(model.speech_encoder) == 0
    assert _grad_norm(model.adapter) > 0 and _grad_norm(model.mt) > 0


def test_gradient_checkpointing_gives_the_same_loss(make_model, make_batch):
    model, batch = make_model(mixup_level="frame"), make_batch()
    model.train()
    torch.manual_seed(3)
    reference = model(**batch).loss
    model.activation_checkpointing_enable()
    assert model.is_activation_checkpointing
    torch.manual_seed(3)
    loss = model(**batch).loss
    loss.backward()
    torch.testing.assert_close(loss, reference)
    assert _grad_norm(model.adapter) > 0


# ---------------------------------------------------------------- bad input: clear errors before any compute


@pytest.fixture
def no_compute(make_model):
    """A model whose speech encoder fails the test if it ever runs."""
    model = make_model()

    def _hook(*args):
        raise AssertionError("the speech encoder ran before the input check")

    model.speech_encoder.register_forward_pre_hook(_hook)
    return model


@pytest.mark.parametrize(
    "case, message",
    [
        ("wrong_rate", "8000 Hz but the speech encoder expects 16000 Hz; resample"),
        ("stereo", "stereo"),
        ("empty", "empty"),
        ("all_padding", "no audio"),
        ("too_long", "max_source_seconds"),
        ("too_short", "shorter than"),
        ("missing_labels", "without `labels`"),
        ("missing_transcript", "needs the transcript"),
        ("nothing", "input_values"),
    ],
)
def test_bad_input_raises_before_compute(no_compute, make_batch, case, message):
    model, batch = no_compute, dict(make_batch())
    if case == "wrong_rate":
        batch["sampling_rate"] = 8000
    elif case == "stereo":
        batch["input_values"] = torch.stack([batch["input_values"]] * 2, dim=1)
    elif case == "empty":
        batch["input_values"] = batch["input_values"][:, :0]
        batch["attention_mask"] = batch["attention_mask"][:, :0]
    elif case == "all_padding":
        batch["attention_mask"][1] = 0
    elif case == "too_long":
        model.config.max_source_seconds = 0.5
    elif case == "too_short":
        batch["attention_mask"][1, 50:] = 0
    elif case == "missing_labels":
        model.train()
        batch.pop("labels")
    elif case == "missing_transcript":
        model.train()
        batch.pop("input_ids")
        batch.pop("text_attention_mask")
    elif case == "nothing":
        batch = {"labels": batch["labels"]}
    with pytest.raises(ValueError, match=message):
        model(**batch)


def test_bad_input_in_generate(no_compute, make_batch):
    batch = make_batch()
    with pytest.raises(ValueError, match="stereo"):
        no_compute.generate(torch.stack([batch["input_values"]] * 2, dim=1), max_new_tokens=3)
    no_compute.config.max_source_seconds = 0.5
    with pytest.raises(ValueError, match="max_source_seconds"):
        no_compute.generate(batch["input_values"], attention_mask=batch["attention_mask"], max_new_tokens=3)


def test_plain_st_training_is_allowed_without_transcript(make_model, make_batch):
    model, batch = make_model(alignment="none", mt_weight=0.0), dict(make_batch())
    batch.pop("input_ids")
    batch.pop("text_attention_mask")
    model.train()
    out = model(**batch)
    torch.testing.assert_close(out.loss, out.loss_st)


def test_synthetic_audio_is_deterministic():
    assert (synthetic_audio(0.2, seed=4) == synthetic_audio(0.2, seed=4)).all()


def test_build_from_config_alone(make_batch):
    from dtw_align_hf.testing_utils import tiny_speech_config, tiny_text_config

    config = DTWAlignConfig(
        speech_config=tiny_speech_config().to_dict(),
        text_config=tiny_text_config().to_dict(),
        adapter_hidden_size=32,
        alignment_backend="torch",
    )
    model = DTWAlignForSpeechTranslation(config)
    conv = model.adapter.convs[0]
    # PyTorch's fan-in scaled default, not the generic normal(0, 0.02)
    expected_std = (1 / 3) ** 0.5 / (conv.in_channels * conv.kernel_size[0]) ** 0.5
    assert abs(conv.weight.std().item() - expected_std) / expected_std < 0.2
    model.train()
    out = model(**make_batch())
    assert torch.isfinite(out.loss)


def test_a_few_steps_reduce_the_loss(make_model, make_batch):
    """End-to-end sanity: 15 AdamW steps on one batch lower every term (overfitting a tiny batch)."""
    model, batch = make_model(), make_batch(n=3)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(15):
        out = model(**batch)
        first = first or {k: getattr(out, k).item() for k in ("loss", "loss_st", "loss_mt", "loss_mix")}
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    last = model(**batch)
    for key, value in first.items():
        assert getattr(last, key).item() < value, key


def test_default_backend_matches_torch(make_model, make_batch):
    """The config default (`alignment_backend="auto"`: numba on CPU when installed) trains like the torch reference."""
    batch = make_batch(n=3)
    losses = []
    for backend in ("auto", "torch"):
        model = make_model(alignment_backend=backend, mixup_ratio_schedule="constant")
        model.train()
        losses.append(model(**batch))
    torch.testing.assert_close(losses[0].loss_mix, losses[1].loss_mix)
    torch.testing.assert_close(losses[0].loss_kl, losses[1].loss_kl)


def test_training_with_precomputed_encoder_outputs_is_refused(make_model, make_batch):
    model, batch = make_model(), dict(make_batch())
    encoder_outputs = (model.get_encoder()(batch.pop("input_values"), batch.pop("attention_mask")).last_hidden_state,)
    model.train()
    with pytest.raises(ValueError, match="speech embeddings"):
        model(**batch, encoder_outputs=encoder_outputs)


def test_bfloat16_weights_take_float32_audio(make_model, make_batch, tmp_path):
    make_model().save_pretrained(tmp_path)
    model = DTWAlignForSpeechTranslation.from_pretrained(tmp_path, dtype=torch.bfloat16)
    batch = make_batch()
    assert (
        model.generate(batch["input_values"], attention_mask=batch["attention_mask"], max_new_tokens=3).shape[0] == 2
    )
    model.train()
    out = model(**batch)
    out.loss.backward()
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)


@pytest.mark.slow
def test_paper_sized_model_trains_one_step():
    """HuBERT-base shapes (random) + the paper's 6+6-layer d=512 translation model with a 10k vocabulary."""
    from transformers import HubertConfig, M2M100Config

    config = DTWAlignConfig(
        speech_config=HubertConfig(layerdrop=0.0),
        text_config=M2M100Config(
            vocab_size=10000,
            d_model=512,
            encoder_layers=6,
            decoder_layers=6,
            encoder_attention_heads=8,
            decoder_attention_heads=8,
            encoder_ffn_dim=2048,
            decoder_ffn_dim=2048,
            encoder_layerdrop=0.0,
            decoder_layerdrop=0.0,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            decoder_start_token_id=2,
        ),
    )
    model = DTWAlignForSpeechTranslation(config)
    model.freeze_feature_encoder()
    audio = torch.stack([torch.tensor(synthetic_audio(3.0, seed=s)) for s in (1, 2)])
    mask = torch.ones_like(audio, dtype=torch.long)
    mask[1, 32000:] = 0
    input_ids = torch.randint(4, 10000, (2, 20))
    labels = torch.randint(4, 10000, (2, 16))
    labels[1, 12:] = -100
    model.train()
    out = model(input_values=audio, attention_mask=mask, input_ids=input_ids, labels=labels)
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.align_valid_frac.item() == 1.0
    # 3 s -> 149 HuBERT frames (20 ms) -> 38 adapter frames (80 ms); 2 s -> 99 -> 25
    assert out.align_frames_per_token.item() == pytest.approx((38 + 25) / 40)
