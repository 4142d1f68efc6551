"""LoRA through peft's own API (transformers' built-in PEFT methods need peft >= 0.22, not released yet)."""

import pytest
import torch


peft = pytest.importorskip("peft")

TARGETS = (
    r".*(speech_encoder\.encoder\.layers\.\d+\.attention"
    r"|mt\.model\.(encoder|decoder)\.layers\.\d+\.(self_attn|encoder_attn))\.(q_proj|k_proj|v_proj|out_proj)"
)


def _lora(model, target_modules=TARGETS):
    config = peft.LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules=target_modules,
        modules_to_save=["adapter"],
        init_lora_weights=False,
    )
    return peft.get_peft_model(model, config)


def test_lora_train_save_load_merge(make_model, make_batch, tmp_path):
    base, batch = make_model(), make_batch()
    base_dir = tmp_path / "base"
    base.save_pretrained(base_dir)
    model = _lora(base)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n or "adapter" in n for n in names)
    assert any("speech_encoder" in n for n in names) and any("mt.model.decoder" in n for n in names)

    model.train()
    out = model(**batch)
    out.loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad and "lora_" in n)
    frozen = [p for n, p in model.named_parameters() if not p.requires_grad]
    assert all(p.grad is None for p in frozen)
    model.eval()

    adapter_dir = tmp_path / "lora"
    model.save_pretrained(adapter_dir)
    assert (adapter_dir / "adapter_model.safetensors").exists() and (adapter_dir / "adapter_config.json").exists()

    from dtw_align_hf import DTWAlignForSpeechTranslation

    reloaded = peft.PeftModel.from_pretrained(
        DTWAlignForSpeechTranslation.from_pretrained(base_dir), adapter_dir
    ).eval()
    gen = {"max_new_tokens": 6, "num_beams": 2}
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, model(**batch).logits)
        unmerged = reloaded.generate(input_values=batch["input_values"], attention_mask=batch["attention_mask"], **gen)
        merged_model = reloaded.merge_and_unload()
        assert isinstance(merged_model, DTWAlignForSpeechTranslation)
        merged = merged_model.generate(batch["input_values"], attention_mask=batch["attention_mask"], **gen)
        assert merged.tolist() == unmerged.tolist()
        # the adapter changed the model: LoRA weights are non-zero (init_lora_weights=False)
        plain = DTWAlignForSpeechTranslation.from_pretrained(base_dir).eval()
        assert not torch.allclose(plain(**batch).logits, merged_model(**batch).logits)


@pytest.mark.parametrize("part", ["speech", "mt"])
def test_lora_on_one_part(make_model, make_batch, part):
    targets = {
        "speech": r".*speech_encoder\.encoder\.layers\.\d+\.attention\.(q_proj|v_proj)",
        "mt": r".*mt\.model\.(encoder|decoder)\.layers\.\d+\.self_attn\.(q_proj|v_proj)",
    }[part]
    model = _lora(make_model(), targets)
    lora = [n for n, _ in model.named_parameters() if "lora_" in n]
    assert lora and all(("speech_encoder" in n) == (part == "speech") for n in lora)
    model.train()
    model(**make_batch()).loss.backward()


FAMILY_TARGETS = {
    "hubert": r".*speech_encoder\.encoder\.layers\.\d+\.attention\.(q_proj|v_proj)",
    "whisper": r".*speech_encoder\.layers\.\d+\.self_attn\.(q_proj|v_proj)",
    "speech_to_text": r".*speech_encoder\.layers\.\d+\.self_attn\.(q_proj|v_proj)",
}


def test_lora_on_each_speech_encoder_family(family, tmp_path):
    name, _, _, make_model, make_batch = family
    base, batch = make_model(), make_batch()
    base.save_pretrained(tmp_path / "base")
    model = _lora(base, FAMILY_TARGETS[name] + r"|.*mt\.model\.decoder\.layers\.\d+\.self_attn\.(q_proj|v_proj)")
    lora = [n for n, _ in model.named_parameters() if "lora_" in n]
    assert any("speech_encoder" in n for n in lora) and any("mt.model.decoder" in n for n in lora)
    model.train()
    model(**batch).loss.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "lora_" in n)
    model.eval()
    model.save_pretrained(tmp_path / "lora")

    from dtw_align_hf import DTWAlignForSpeechTranslation

    reloaded = peft.PeftModel.from_pretrained(
        DTWAlignForSpeechTranslation.from_pretrained(tmp_path / "base"), tmp_path / "lora"
    ).eval()
    audio = {k: batch[k] for k in (base.main_input_name, "attention_mask")}
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, model(**batch).logits, rtol=1e-5, atol=1e-6)
        merged = reloaded.merge_and_unload()
        assert (
            merged.generate(**audio, max_new_tokens=4).tolist() == model.generate(**audio, max_new_tokens=4).tolist()
        )
