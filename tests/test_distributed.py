"""Resume after a kill gives the weights of an uninterrupted run; 2-process CPU DDP (accelerate launch) matches one
process with the same global batch (trl's invariant idea)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import run_finetune_st
from dtw_align_hf.cli import parse_args_and_config
from dtw_align_hf.trainer import DTWAlignTrainer


REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "recipes" / "demo" / "finetune_st.yaml"
TINY_DATA = {"demo_train_size": 24, "demo_eval_size": 4, "demo_test_size": 6, "eval_split": None}


@pytest.fixture
def tiny_parts(tiny_speech_encoder_dir, tiny_mt_dir, tiny_processor_dir):
    """Stage-2 arguments that build the model from the conftest's tiny saved parts (no dropout, no layerdrop)."""
    return {
        **TINY_DATA,
        "speech_encoder_name_or_path": str(tiny_speech_encoder_dir),
        "mt_model_name_or_path": str(tiny_mt_dir),
        "processor_name_or_path": str(tiny_processor_dir),
        "adapter_hidden_size": 32,
        "do_predict": False,
        "disable_tqdm": True,
        "logging_steps": 1,
        "learning_rate": 1e-3,
        "warmup_steps": 0,
        "lr_scheduler_type": "constant",
    }


def run_in_process(overrides):
    parsed = parse_args_and_config(run_finetune_st.make_parser(), ["--config", str(RECIPE)], config=overrides)
    return run_finetune_st.main(*parsed)


class Killed(Exception):
    pass


def test_resume_after_kill_matches_uninterrupted_run(tmp_path, tiny_parts, monkeypatch):
    common = {**tiny_parts, "max_steps": 6, "save_steps": 3, "per_device_train_batch_size": 4}
    run_in_process({**common, "output_dir": str(tmp_path / "straight")})

    # kill the second run during step 5 (after checkpoint-3, before checkpoint-6): whatever it did since is lost
    original_step = DTWAlignTrainer.training_step

    def dying_step(self, model, inputs, num_items_in_batch=None):
        if self.state.global_step == 4:
            raise Killed
        return original_step(self, model, inputs, num_items_in_batch)

    with monkeypatch.context() as patch:
        patch.setattr(DTWAlignTrainer, "training_step", dying_step)
        with pytest.raises(Killed):
            run_in_process({**common, "output_dir": str(tmp_path / "killed")})
    assert (tmp_path / "killed" / "checkpoint-3").is_dir() and not (tmp_path / "killed" / "checkpoint-6").exists()

    results = run_in_process({**common, "output_dir": str(tmp_path / "killed")})  # --resume auto (the default)
    assert results["train"]["steps"] == 6
    state = json.loads((tmp_path / "killed" / "trainer_state.json").read_text())
    assert [e["step"] for e in state["log_history"] if "loss" in e] == [1, 2, 3, 4, 5, 6]

    straight = load_file(str(tmp_path / "straight" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "killed" / "model.safetensors"))
    assert straight.keys() == resumed.keys()
    for name, value in straight.items():
        torch.testing.assert_close(resumed[name], value, rtol=1e-5, atol=1e-6, msg=name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(overrides: dict) -> list[str]:
    args = ["--config", str(RECIPE)]
    for key, value in overrides.items():
        args += [f"--{key}", "none" if value is None else str(value)]
    return args


def _losses(output_dir: Path) -> list[dict]:
    state = json.loads((output_dir / "trainer_state.json").read_text())
    return [e for e in state["log_history"] if "loss" in e]


def test_two_process_ddp_matches_one_process(tmp_path, tiny_parts):
    """`accelerate launch` with recipes/accelerate/cpu_2proc.yaml really runs 2-process gloo DDP, and with the same
    global batch (2 x 2 vs 1 x 4, sequential order) its losses and loss components match a single process."""
    common = {
        **tiny_parts,
        "max_steps": 3,
        "save_steps": 100,
        "train_sampling_strategy": "sequential",
        "alignment_backend": "torch",
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    single = tmp_path / "single"
    subprocess.run(
        [sys.executable, "run_finetune_st.py", *_cli({**common, "output_dir": single, "per_device_train_batch_size": 4})],
        cwd=REPO, env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    ddp = tmp_path / "ddp"
    accelerate = Path(sys.executable).with_name("accelerate")
    proc = subprocess.run(
        [
            str(accelerate), "launch", "--config_file", "recipes/accelerate/cpu_2proc.yaml",
            "--main_process_port", str(_free_port()), "run_finetune_st.py",
            *_cli({**common, "output_dir": ddp, "per_device_train_batch_size": 2}),
        ],
        check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((ddp / "results.json").read_text())["world_size"] == 2
    assert json.loads((single / "results.json").read_text())["world_size"] == 1

    one, two = _losses(single), _losses(ddp)
    assert [e["step"] for e in one] == [e["step"] for e in two] == [1, 2, 3]
    for a, b in zip(one, two, strict=True):
        for key in ("loss", "loss/st", "loss/mt", "loss/mix", "loss/kl", "align/valid_frac"):
            assert b[key] == pytest.approx(a[key], rel=2e-3, abs=1e-5), (a["step"], key)


@pytest.mark.slow
def test_resume_after_sigkill_of_a_real_process(tmp_path, tiny_parts):
    """The same invariant with a real `kill -9` of a running `python run_finetune_st.py` (timing-dependent: slow)."""
    import signal
    import time

    common = {**tiny_parts, "max_steps": 40, "save_steps": 10, "per_device_train_batch_size": 4}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(
        [sys.executable, "run_finetune_st.py", *_cli({**common, "output_dir": straight})],
        cwd=REPO, env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "run_finetune_st.py", *_cli({**common, "output_dir": killed})],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.time() + 600
    while not (killed / "checkpoint-10" / "trainer_state.json").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "checkpoint-40").exists(), "the run finished before it could be killed"
    subprocess.run(
        [sys.executable, "run_finetune_st.py", *_cli({**common, "output_dir": killed})],
        cwd=REPO, env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    a = load_file(str(straight / "model.safetensors"))
    b = load_file(str(killed / "model.safetensors"))
    for name, value in a.items():
        torch.testing.assert_close(b[name], value, rtol=1e-5, atol=1e-6, msg=name)
