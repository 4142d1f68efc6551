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


STREAM_COVERAGE_SCRIPT = r"""
import json, sys
import torch
from transformers import Trainer, TrainingArguments
from dtw_align_hf.data import DataArguments, load_splits

data_dir, out_file, output_dir = sys.argv[1:4]
args = TrainingArguments(
    output_dir=output_dir, use_cpu=True, per_device_train_batch_size=2, max_steps=100, report_to=[],
    remove_unused_columns=False, dataloader_num_workers=0, disable_tqdm=True,
)
data_args = DataArguments(
    dataset="covost2", dataset_config="de_en", data_dir=data_dir, eval_split=None, test_split=None,
    min_duration=None, max_duration=None,
)
splits, _ = load_splits(data_args, training_args=args)
trainer = Trainer(
    model=torch.nn.Linear(1, 1), args=args, train_dataset=splits["train"],
    data_collator=lambda features: {"ids": [f["id"] for f in features]},
)
epochs = []
for epoch in range(2):
    loader = trainer.get_train_dataloader()
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    epochs.append([i for batch in loader for i in batch["ids"]])
json.dump({"rank": args.process_index, "world_size": args.world_size, "epochs": epochs}, open(out_file, "w"))
"""


@pytest.mark.slow  # two fresh interpreters with the Trainer under gloo: ~30-60 s on 2 cores
@pytest.mark.parametrize("num_files", [1, 2])
def test_two_process_stream_covers_every_example_once_per_epoch(tmp_path, num_files):
    """Issue 10 bug 1: a streamed training split under 2-process DDP (the Trainer's own DataLoader, accelerate's
    sharding) yields every example exactly once per epoch across the processes, not 1/W of them."""
    from tests.test_data import _covost_parquet, wav_bytes

    rows = [
        {
            "client_id": "s",
            "file": f"clip_{i}.wav",
            "audio": {"bytes": wav_bytes(0.2 + 0.01 * i), "path": f"clip_{i}.wav"},
            "sentence": f"satz {i}",
            "translation": f"sentence {i}",
            "id": f"clip_{i}",
        }
        for i in range(16)
    ]
    folder = tmp_path / "data" / "de_en"
    folder.mkdir(parents=True)
    per_file = 16 // num_files
    for k in range(num_files):
        _covost_parquet(folder / f"train-{k:05d}-of-{num_files:05d}.parquet", rows[k * per_file : (k + 1) * per_file])
    script = tmp_path / "coverage.py"
    script.write_text(STREAM_COVERAGE_SCRIPT)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "ACCELERATE_USE_CPU": "true",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "WORLD_SIZE": "2",
        "PYTHONPATH": str(REPO),
    }
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                str(tmp_path / "data"),
                str(tmp_path / f"rank{r}.json"),
                str(tmp_path / "out"),
            ],
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["world_size"] for r in results] == [2, 2]
    everything = sorted(f"clip_{i}" for i in range(16))
    for epoch in range(2):
        seen = results[0]["epochs"][epoch] + results[1]["epochs"][epoch]
        assert sorted(seen) == everything, (epoch, results)
