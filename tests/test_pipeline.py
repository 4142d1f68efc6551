"""transformers' standard `pipeline("automatic-speech-recognition")` on DTW-Align checkpoints.

Both ways a user loads a checkpoint: with `import dtw_align_hf` (the package registers the model), and with
`trust_remote_code=True` in a process that cannot import the package (the Hub layout: code files beside the weights).
The reference is the model's own `generate` + the processor's `batch_decode` on the same audio.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import pipeline

import dtw_align_hf
from dtw_align_hf.pipeline_dtw_align import is_registered
from dtw_align_hf.testing_utils import synthetic_audio


REPO = Path(__file__).resolve().parents[1]
GEN = {"num_beams": 2, "max_new_tokens": 6}


@pytest.fixture
def checkpoint(make_model, tiny_processor, tmp_path):
    model = make_model()
    path = tmp_path / "ckpt"
    model.save_pretrained(path)
    tiny_processor.save_pretrained(path)
    return model, path


def _reference(model, processor, wav, **gen):
    batch = processor(audio=wav, sampling_rate=16000)
    with torch.no_grad():
        ids = model.generate(batch["input_values"], attention_mask=batch["attention_mask"], **gen)
    return processor.batch_decode(ids)[0]


def test_import_registers_the_model_as_speech_seq2seq():
    assert dtw_align_hf is not None and is_registered()


def test_standard_asr_pipeline_translates_like_generate(checkpoint, tiny_processor):
    model, path = checkpoint
    asr = pipeline("automatic-speech-recognition", model=str(path))
    assert asr.type == "seq2seq"  # was "ctc", whose forward pass raised "Pass labels ... or decoder_input_ids"
    wav = synthetic_audio(1.0, seed=3)
    expected = _reference(model, tiny_processor, wav, **GEN)
    assert asr(wav, **GEN)["text"] == expected
    assert asr({"raw": wav, "sampling_rate": 16000}, generate_kwargs=GEN)["text"] == expected
    # a batch of clips gives each clip's own translation
    wav2 = synthetic_audio(0.7, seed=4)
    out = asr([wav, wav2], batch_size=2, **GEN)
    assert [o["text"] for o in out] == [expected, _reference(model, tiny_processor, wav2, **GEN)]


def test_pipeline_chunks_long_audio(checkpoint, tiny_processor, monkeypatch):
    _, path = checkpoint
    asr = pipeline("automatic-speech-recognition", model=str(path))
    long_wav = synthetic_audio(40.0, seed=5)  # above the model's max_source_seconds (30 s)
    with pytest.raises(ValueError, match="max_source_seconds"):
        asr(long_wav, **GEN)
    seen = []
    generate = asr.model.generate

    def spy(*args, **kwargs):
        seen.append(kwargs["input_values"].shape[-1])
        out = generate(*args, **kwargs)
        seen_tokens.append(out[0].tolist())
        return out

    seen_tokens = []
    monkeypatch.setattr(asr.model, "generate", spy)
    text = asr(long_wav, chunk_length_s=10, stride_length_s=2, ignore_warning=True, **GEN)["text"]
    # 10 s chunks with 2 s strides on each side advance by 6 s: chunks start at 0, 6, 12, 18, 24 and 30 s; the one
    # starting at 30 s reaches the end of the 40 s clip and is the last (each chunk is under the 30 s limit)
    assert seen == [160000] * 6
    assert text.strip()
    # every chunk is translated on its own, and the merge keeps only tokens that some chunk generated
    generated = {t for seq in seen_tokens for t in seq}
    merged = tiny_processor.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert merged and set(merged) <= generated | {tiny_processor.tokenizer.unk_token_id}


REMOTE_SCRIPT = textwrap.dedent(
    """
    import json, sys
    class _Block:  # make our package unimportable, even through the editable install's path hook
        def find_spec(self, name, path=None, target=None):
            if name == "dtw_align_hf" or name.startswith("dtw_align_hf."):
                raise ModuleNotFoundError(name)
    sys.meta_path.insert(0, _Block())
    sys.path = [p for p in sys.path if p not in ("", ".", REPO)]
    import numpy as np
    from transformers import pipeline
    try:
        import dtw_align_hf
        raise SystemExit("package still importable")
    except ModuleNotFoundError:
        pass
    asr = pipeline("automatic-speech-recognition", model=CKPT, trust_remote_code=True)
    wav = np.load(WAV)
    out = asr(wav, num_beams=2, max_new_tokens=6)
    print(json.dumps({"text": out["text"], "type": asr.type, "model": type(asr.model).__module__}))
    """
)

_MODELING = (REPO / "dtw_align_hf" / "modeling_dtw_align.py").read_text(encoding="utf-8")


@pytest.mark.xfail(
    "register_speech_seq2seq" not in _MODELING,
    reason="remote code needs modeling_dtw_align.py to call pipeline_dtw_align.register_speech_seq2seq() at import "
    "(two lines, owned by the model module; see the eco handoff)",
    strict=True,
)
def test_standard_asr_pipeline_with_remote_code(checkpoint, tiny_processor, tmp_path):
    import numpy as np

    model, path = checkpoint
    wav = synthetic_audio(1.0, seed=3)
    np.save(tmp_path / "wav.npy", wav)
    script = f"REPO = {str(REPO)!r}\nCKPT = {str(path)!r}\nWAV = {str(tmp_path / 'wav.npy')!r}\n"
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
    assert remote["type"] == "seq2seq"
    assert remote["text"] == _reference(model, tiny_processor, wav, **GEN)
