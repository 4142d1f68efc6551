"""Fault injection (issue 11): a run interrupted while it saves a checkpoint, or stopped by a full disk, resumes from
the newest complete checkpoint and ends with the weights of an uninterrupted run; folders that are not complete
checkpoints of our runs are skipped (and named), never resumed from, never deleted by rotation.

The kill is simulated at each phase of `DTWAlignTrainer._save_checkpoint` (tmp folder created, weights written,
optimizer written, trainer state written) by making the next write raise (in process) or `os._exit` (a subprocess:
no exception handler, no `finally`, like SIGKILL). The full disk is a small tmpfs (we are root in CI; skipped where
`mount` is not allowed).
"""

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from transformers import TrainerState

from dtw_align_hf import DTWAlignForSpeechTranslation
from dtw_align_hf.run_utils import prepare_output_dir
from dtw_align_hf.testing_utils import synthetic_audio
from dtw_align_hf.trainer import (
    RUN_SETTINGS_NAME,
    DTWAlignTrainer,
    DTWAlignTrainingArguments,
    find_checkpoints,
    rotate_complete_checkpoints,
)


REPO = Path(__file__).resolve().parent.parent
SETTINGS = {"script": "test", "settings": {"model.alignment": "dtw"}}
TRANSCRIPTS = ["das kleine rote haus", "ein hund", "die katze sieht den baum", "das haus"]
TRANSLATIONS = ["the small red house", "a dog runs", "the cat sees the tree", "the house"]


class Killed(Exception):
    """Stands in for a kill: raised from inside a save, caught only by the test."""


class Collator:
    def __init__(self, processor):
        self.processor = processor

    def __call__(self, features):
        return dict(
            self.processor(
                audio=[f["audio"] for f in features],
                sampling_rate=16000,
                text=[f["transcript"] for f in features],
                text_target=[f["translation"] for f in features],
            )
        )


def examples(n=8):
    return [
        {"audio": synthetic_audio(0.5 + 0.1 * (i % 3), seed=i + 1), "transcript": TRANSCRIPTS[i % 4],
         "translation": TRANSLATIONS[i % 4]}
        for i in range(n)
    ]  # fmt: skip


def make_trainer(output_dir, parts, *, max_steps=4, save_steps=2, **overrides):
    speech_dir, mt_dir, processor = parts
    torch.manual_seed(0)
    model = DTWAlignForSpeechTranslation.from_pretrained_parts(
        str(speech_dir), str(mt_dir), adapter_hidden_size=32, alignment_backend="torch"
    )
    kwargs = {
        "output_dir": str(output_dir),
        "max_steps": max_steps,
        "save_strategy": "steps",
        "save_steps": save_steps,
        "per_device_train_batch_size": 2,
        "learning_rate": 1e-3,
        "lr_scheduler_type": "constant",
        "optim": "adamw_torch",
        "logging_steps": 1,
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
        "seed": 0,
        "do_predict": False,
        "dataloader_num_workers": 0,
        **overrides,
    }
    args = DTWAlignTrainingArguments(**kwargs)
    trainer = DTWAlignTrainer(model=model, args=args, train_dataset=examples(), data_collator=Collator(processor))
    trainer.run_settings = SETTINGS
    return trainer


def run(output_dir, parts, **overrides):
    """One run as the scripts do it: output-folder check + resume decision, then train; returns the final weights."""
    trainer = make_trainer(output_dir, parts, **overrides)
    resume_from = prepare_output_dir(trainer.args, SETTINGS)
    trainer.train(resume_from_checkpoint=resume_from)
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}, resume_from


@pytest.fixture
def parts(tiny_speech_encoder_dir, tiny_mt_dir, tiny_processor):
    return tiny_speech_encoder_dir, tiny_mt_dir, tiny_processor


@pytest.fixture
def straight(tmp_path, parts):
    weights, _ = run(tmp_path / "straight", parts)
    return weights


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for name, value in a.items():
        torch.testing.assert_close(b[name], value, rtol=1e-5, atol=1e-6, msg=name)


# where to stop the save of checkpoint-4: the method that runs right after the named phase is done
PHASES = {
    "folder created": "save_model",  # the tmp folder exists (created here), nothing in it
    "weights written": "_save_optimizer_and_scheduler",
    "optimizer written": "_save_rng_state",
    "state written": "state",  # trainer_state.json written, then the kill (before the run settings and the rename)
}


def _kill_during_save(monkeypatch, phase: str, exit_process: bool = False):
    def die():
        if exit_process:
            os._exit(9)
        raise Killed

    name = PHASES[phase]
    if name == "state":
        original_save = TrainerState.save_to_json

        def save_then_die(self, path):
            original_save(self, path)
            if self.global_step == 4:
                die()

        monkeypatch.setattr(TrainerState, "save_to_json", save_then_die)
        return
    original = getattr(DTWAlignTrainer, name)

    def dying(self, output_dir=None, *args, **kwargs):
        if self.state.global_step == 4:
            if name == "save_model":
                os.makedirs(output_dir, exist_ok=True)
            die()
        return original(self, output_dir, *args, **kwargs)

    monkeypatch.setattr(DTWAlignTrainer, name, dying)


def _check_interrupted(out):
    complete, other = find_checkpoints(out)
    assert [p.name for p in complete] == ["checkpoint-2"]
    assert not (out / "checkpoint-4").exists(), "a partial checkpoint must never carry the final name"
    assert [p.name for p in other] == [".tmp-checkpoint-4"]


@pytest.mark.parametrize(
    "phase",
    [
        pytest.param("weights written"),
        pytest.param("folder created", marks=pytest.mark.slow),
        pytest.param("optimizer written", marks=pytest.mark.slow),
        pytest.param("state written", marks=pytest.mark.slow),
    ],
)
def test_kill_during_checkpoint_save_then_resume(tmp_path, parts, straight, monkeypatch, caplog, phase):
    out = tmp_path / "killed"
    with monkeypatch.context() as patch:
        _kill_during_save(patch, phase)
        with pytest.raises(Killed):
            run(out, parts)
    _check_interrupted(out)

    with caplog.at_level(logging.WARNING):
        weights, resumed_from = run(out, parts)
    assert Path(resumed_from).name == "checkpoint-2"
    assert ".tmp-checkpoint-4" in caplog.text and "Skipping" in caplog.text
    assert_same_weights(straight, weights)
    complete, other = find_checkpoints(out)
    assert [p.name for p in complete] == ["checkpoint-2", "checkpoint-4"] and other == []


@pytest.mark.slow
def test_hard_exit_during_save_in_a_subprocess(tmp_path, parts, straight):
    """`os._exit` right after the optimizer is written: no handler runs, as with SIGKILL."""
    speech_dir, mt_dir, _ = parts
    processor_dir = tmp_path / "processor"
    parts[2].save_pretrained(processor_dir)
    script = tmp_path / "die.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(Path(__file__).parent)!r})
            import pytest
            import test_faults as tf
            from dtw_align_hf import DTWAlignProcessor
            parts = ({str(speech_dir)!r}, {str(mt_dir)!r}, DTWAlignProcessor.from_pretrained({str(processor_dir)!r}))
            with pytest.MonkeyPatch.context() as patch:
                tf._kill_during_save(patch, "optimizer written", exit_process=True)
                tf.run({str(tmp_path / "killed")!r}, parts)
            """
        )
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(script)], check=False, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 9, proc.stderr[-2000:]
    _check_interrupted(tmp_path / "killed")
    weights, resumed_from = run(tmp_path / "killed", parts)
    assert Path(resumed_from).name == "checkpoint-2"
    assert_same_weights(straight, weights)


@pytest.mark.slow
def test_full_disk_during_save_then_resume(tmp_path, parts, straight):
    """A tmpfs that holds one checkpoint but not two: the second save fails with ENOSPC; after the disk is grown,
    the rerun resumes from the first and ends with the uninterrupted weights."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    size = sum(p.stat().st_size for p in (tmp_path / "straight" / "checkpoint-2").rglob("*") if p.is_file())
    small = int(size * 1.5) + 64 * 1024
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={small}", "tmpfs", str(mnt)], check=False, capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        # ENOSPC reaches us as an OSError (safetensors, json) or torch.save's RuntimeError (optimizer.pt)
        with pytest.raises((OSError, RuntimeError)):
            run(mnt / "run", parts)
        complete, _ = find_checkpoints(mnt / "run")
        assert [p.name for p in complete] == ["checkpoint-2"] and not (mnt / "run" / "checkpoint-4").exists()
        subprocess.run(["mount", "-o", f"remount,size={20 * small}", str(mnt)], check=True)
        weights, resumed_from = run(mnt / "run", parts)
        assert Path(resumed_from).name == "checkpoint-2"
        assert_same_weights(straight, weights)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)  # lazy: a writer of the failed save may hold a file


# ---------------------------------------------------------------------------------------------------------------------
# folders that look like checkpoints but are not complete ones of ours (fabricated: no training needed)


def fake_checkpoint(out: Path, step: int, settings=SETTINGS, complete=True) -> Path:
    path = out / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"weights")
    if complete:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
        (path / RUN_SETTINGS_NAME).write_text(json.dumps(settings))
    return path


def training_args(out, **kwargs):
    return DTWAlignTrainingArguments(output_dir=str(out), use_cpu=True, report_to="none", **kwargs)


def test_partial_checkpoint_of_an_older_version_is_skipped_and_named(tmp_path, caplog):
    out = tmp_path / "run"
    fake_checkpoint(out, 2)
    fake_checkpoint(out, 4, complete=False)  # killed mid-save by a version without atomic saves
    (out / RUN_SETTINGS_NAME).write_text(json.dumps(SETTINGS))
    with caplog.at_level(logging.WARNING):
        resume = prepare_output_dir(training_args(out, max_steps=10), SETTINGS)
    assert Path(resume).name == "checkpoint-2"
    assert "checkpoint-4" in caplog.text and "not a complete checkpoint" in caplog.text


def test_rotation_counts_and_deletes_only_complete_checkpoints(tmp_path):
    out = tmp_path / "run"
    unrelated = fake_checkpoint(out, 1, complete=False)  # the user's own folder, not ours
    for step in (2, 4, 6):
        fake_checkpoint(out, step)
    deleted = rotate_complete_checkpoints(out, save_total_limit=2)
    assert [p.name for p in deleted] == ["checkpoint-2"]
    assert unrelated.is_dir() and (unrelated / "model.safetensors").read_bytes() == b"weights"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-1", "checkpoint-4", "checkpoint-6"]
    rotate_complete_checkpoints(out, save_total_limit=1, best_model_checkpoint=str(out / "checkpoint-4"))
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-1", "checkpoint-4", "checkpoint-6"]


def test_unrelated_checkpoint_folders_survive_a_real_run(tmp_path, parts):
    """`--resume never --overwrite_output_dir` into a folder with a user's `checkpoint-1/` and `checkpoint-2/`:
    never resumed from, never deleted by rotation (save_total_limit=1); the one whose name our step-2 save needs is
    moved aside, not deleted."""
    out = tmp_path / "mine"
    fake_checkpoint(out, 1, complete=False)
    fake_checkpoint(out, 2, complete=False)
    (out / "notes.txt").write_text("my notes")
    trainer = make_trainer(out, parts, max_steps=4, save_steps=2, save_total_limit=1, resume="never",
                           overwrite_output_dir=True)  # fmt: skip
    assert prepare_output_dir(trainer.args, SETTINGS) is None
    trainer.train()
    assert (out / "checkpoint-1" / "model.safetensors").read_bytes() == b"weights"
    assert (out / "notes.txt").read_text() == "my notes"
    moved = [p for p in out.iterdir() if p.name.startswith("checkpoint-2.replaced-")]
    assert len(moved) == 1 and (moved[0] / "model.safetensors").read_bytes() == b"weights"
    complete, other = find_checkpoints(out)
    assert [p.name for p in complete] == ["checkpoint-4"] and [p.name for p in other] == ["checkpoint-1"]
