"""What `run_pretrain_mt.py` and `run_finetune_st.py` share besides parsing: run set-up, train-and-save, the end of a run.

    1. `setup_logging`                  per-rank logging
    2. `check_paths`                    every model/data path exists (or is a Hub id), before any work
       `prepare_output_dir`             the output-folder guard, the run-settings check and `--resume`
    6. `train_and_save`                 train (resuming), save model + processor + state, train metrics
    7-8. `finish_run`                   test-set evaluation, results.json, hypotheses, alignment plots, card, push
       `print_run_summary`              the closing lines (where everything went)

Resume guarantees (README "Resume"): checkpoints appear only when complete (`DTWAlignTrainer._save_checkpoint`
writes `.tmp-checkpoint-N` and renames it), so a kill or a full disk during a save leaves the previous checkpoint
as the newest complete one; `--resume auto` takes it and logs the partial folders it skipped. Each checkpoint and
the output folder carry the run's settings (`dtw_align_run.json`); a resume with other model, alignment or data
settings is refused with the differing keys. A non-empty folder that is not one of our runs is refused unless
`--overwrite_output_dir` is given, so the run never overwrites a user's README.md, config.json or results.json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from transformers.utils import logging

from .cli import SetupError
from .data.loading import is_streamed
from .trainer import RUN_SETTINGS_NAME, TMP_PREFIX, checkpoint_step, find_checkpoints, is_complete_checkpoint


logger = logging.get_logger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# files a finished or interrupted run writes at the top of output_dir: the "trained content" a settings check protects
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors")
# settings that do not change what is trained: the DTW kernel (every backend gives the torch path) and timing
_SETTINGS_IGNORED = {"alignment_backend", "alignment_timing"}
# data settings that change what is trained on; the others (evaluation splits, caches, local roots) may change
_DATA_SETTINGS_IGNORED = {
    "recipe",
    "cache_dir",
    "data_dir",
    "eval_split",
    "test_split",
    "eval_file",
    "test_file",
    "max_eval_samples",
    "max_test_samples",
    "reference_timings",
    "preprocessing_num_workers",
}


def setup_logging(training_args) -> None:
    """Python, datasets and transformers logging at the Trainer's per-rank level (warnings only off rank 0)."""
    import logging as py_logging

    import datasets
    import transformers

    py_logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[py_logging.StreamHandler(sys.stdout)],
    )
    level = training_args.get_process_log_level()
    logger.setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()
    logger.info(
        f"Process rank {training_args.process_index}, device {training_args.device}, world size "
        f"{training_args.world_size}, distributed {training_args.parallel_mode.value}"
    )


# ---- set-up checks (before any data is read or any model is built) ----


def _looks_local(value: str) -> bool:
    """A path rather than a Hub id: absolute/relative markers, more than one '/', or a first part that is a folder."""
    if value.startswith((".", "/", "~")) or os.sep != "/" and os.sep in value:
        return True
    if value.count("/") > 1 or not _HUB_ID.match(value):
        return True
    return "/" in value and os.path.isdir(value.split("/")[0])


def check_paths(
    hint: dict[str, str] | None = None, *, files: dict[str, str | list[str] | None] | None = None, **models
) -> None:
    """Check model paths (`mt_model_name_or_path=...`) and data files (`files={"train_file": ...}`) up front.

    A model option may be a local folder or a Hub id (`org/name`); a value that is clearly a local path and does not
    exist is a `SetupError` naming the option (instead of transformers' `HFValidationError: Repo id must be in the
    form ...` after the corpus was prepared). `hint` adds a fix per option (e.g. "run stage 1 first").
    """
    hint = hint or {}
    for option, value in models.items():
        if value is None or os.path.exists(os.path.expanduser(str(value))):
            continue
        if _looks_local(str(value)):
            fix = hint.get(option, "fix the path or give a Hub model id (org/name)")
            raise SetupError(f"--{option} {value!r}: no such folder, and it is not a Hub model id; {fix}.")
    for option, value in (files or {}).items():
        for path in value if isinstance(value, (list, tuple)) else [value]:
            if path is not None and not os.path.isfile(os.path.expanduser(str(path))):
                raise SetupError(f"--{option} {path!r}: no such file; give the path of a TSV, CSV or JSONL manifest.")


def run_settings(script: str, **groups: Any) -> dict[str, Any]:
    """The settings that decide what a run trains, as stored with each checkpoint: `{"script", "settings"}`.

    `groups` maps a name ("model", "data", "alignment") to an argument dataclass (or a dict). Data settings that
    only concern evaluation or local paths are left out, and so are the alignment backend and timing (the same
    path on every backend), so a resume on another machine, with another kernel or another test split is accepted.
    """
    settings: dict[str, Any] = {}
    for group, obj in groups.items():
        values = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else dict(obj or {})
        for key, value in values.items():
            if group == "data" and key in _DATA_SETTINGS_IGNORED or key in _SETTINGS_IGNORED:
                continue
            settings[f"{group}.{key}"] = json.loads(json.dumps(value, default=str))
    return {"script": script, "settings": settings}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def settings_difference(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The keys whose values differ, as `key: stored -> current` lines (a different script counts as one)."""
    lines = []
    if stored.get("script") != current.get("script"):
        lines.append(f"script: {stored.get('script')} -> {current.get('script')}")
    old, new = stored.get("settings", {}), current.get("settings", {})
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            lines.append(f"{key}: {old.get(key, '(unset)')!r} -> {new.get(key, '(unset)')!r}")
    return lines


def _visible_entries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if not p.name.startswith(".")] if folder.is_dir() else []


def prepare_output_dir(training_args, settings: dict[str, Any]) -> str | None:
    """Guard `output_dir`, check the run settings, and return the checkpoint to resume from (or None).

    - A non-empty folder that is not one of our runs (no `dtw_align_run.json`, no complete checkpoint) is refused
      unless `--overwrite_output_dir`: our README.md / config.json / results.json would replace the user's.
    - One of our runs with trained content (a complete checkpoint or final weights) and other settings is refused
      with the differing keys, unless `--overwrite_output_dir` (then our old checkpoints are removed first).
    - `--resume auto`: the newest complete checkpoint; partial ones (interrupted saves) are named and skipped.
      `--resume never`: start over (nothing is deleted; rotation only ever touches complete checkpoints of ours).
      `--resume PATH`: that folder, which must be a complete checkpoint with the same settings.
    - A checkpoint that already reached `max_steps` is reported: the run trains no further step.

    The main process decides first and writes `output_dir/dtw_align_run.json`; the other processes then read it.
    """
    out = Path(training_args.output_dir)
    overwrite = bool(getattr(training_args, "overwrite_output_dir", False))
    resume = getattr(training_args, "resume", "auto")
    if training_args.resume_from_checkpoint:
        resume = training_args.resume_from_checkpoint
    with training_args.main_process_first(desc="output_dir check"):
        complete, partial = find_checkpoints(out)
        marker = out / RUN_SETTINGS_NAME
        ours = marker.is_file() or bool(complete)
        entries = _visible_entries(out)
        if entries and not ours and not overwrite:
            shown = ", ".join(sorted(p.name for p in entries)[:8]) + (", ..." if len(entries) > 8 else "")
            raise SetupError(
                f"output_dir {str(out)!r} is not empty ({shown}) and is not a DTW-Align run folder. The run would "
                "write README.md, config.json, results.json and checkpoints into it. Choose a new --output_dir, or "
                "pass --overwrite_output_dir to write into it anyway (files of the same name are replaced)."
            )
        stored = _read_json(marker) if marker.is_file() else None
        if stored is None and complete:
            stored = _read_json(complete[-1] / RUN_SETTINGS_NAME)
        trained = bool(complete) or any((out / name).is_file() for name in _WEIGHTS)
        if ours and stored is not None and trained:
            diff = settings_difference(stored, settings)
            if diff and not overwrite:
                raise SetupError(
                    f"output_dir {str(out)!r} holds a run with other settings:\n  "
                    + "\n  ".join(diff)
                    + "\nResuming would continue (and relabel) that run's weights. Choose a new --output_dir, or "
                    "pass --overwrite_output_dir to start over in this folder (its checkpoints are removed)."
                )
            if overwrite and training_args.should_save:
                for path in complete + partial:
                    if path.name.startswith(TMP_PREFIX) or is_complete_checkpoint(path):
                        logger.warning(f"--overwrite_output_dir: removing {path} of the previous run.")
                        shutil.rmtree(path, ignore_errors=True)
                complete = []
        elif entries and not ours and overwrite:
            logger.warning(f"--overwrite_output_dir: writing into {out}, which is not a DTW-Align run folder.")
        if training_args.should_save:
            out.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps(settings, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")

    resume_from = _resolve_resume(resume, complete, partial, settings, overwrite)
    if resume_from is None and training_args.should_save:  # a fresh start: earlier skip counts are not this run's
        from .data.validation import clear_bad_record_spool

        clear_bad_record_spool(out / "_bad_records")
    if resume_from is not None:
        step = checkpoint_step(resume_from)
        if training_args.max_steps and training_args.max_steps > 0 and step >= training_args.max_steps:
            logger.warning(
                f"{resume_from} is already at step {step} >= max_steps={training_args.max_steps}: nothing is left "
                "to train; its weights are evaluated as they are. Raise --max_steps to train on, or choose a new "
                "--output_dir for another run."
            )
    return resume_from


def _resolve_resume(resume, complete: list[Path], partial: list[Path], settings, overwrite) -> str | None:
    if resume in (None, "never"):
        if complete:
            logger.warning(
                f"--resume never: starting over; {len(complete)} earlier checkpoint(s) stay until rotation."
            )
        return None
    if resume != "auto":
        path = Path(resume)
        if not is_complete_checkpoint(path):
            raise SetupError(
                f"--resume {resume!r} is not a complete checkpoint (a checkpoint-N folder with trainer_state.json "
                f"and {RUN_SETTINGS_NAME}); give another one, 'auto' or 'never'."
            )
        diff = settings_difference(_read_json(path / RUN_SETTINGS_NAME) or {}, settings)
        if diff and not overwrite:
            raise SetupError(
                f"--resume {resume!r} was trained with other settings:\n  " + "\n  ".join(diff) + "\nPass "
                "--overwrite_output_dir to continue from it anyway, or match the settings."
            )
        return str(path)
    newest = complete[-1] if complete else None
    newest_step = int(newest.name.rsplit("-", 1)[1]) if newest is not None else -1
    for path in partial:
        match = re.search(r"checkpoint-(\d+)$", path.name)
        if match and int(match.group(1)) > newest_step:
            logger.warning(
                f"Skipping {path}: not a complete checkpoint of this run (an interrupted save, or not ours)."
            )
    if newest is not None:
        logger.warning(f"Resuming from {newest} (pass --resume never to start over).")
        return str(newest)
    return None


# ---- train and save (step 6 of both scripts) ----


def train_and_save(trainer, processor, training_args, resume_from: str | None, train_dataset) -> dict | None:
    """Train (from `resume_from` if given), then save the model, the processor and the trainer state into
    `output_dir` and log/save the train metrics. Returns the train metrics, or None when nothing was trained."""
    if not training_args.do_train or train_dataset is None:
        return None
    result = trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_model()
    if training_args.should_save:
        processor.save_pretrained(training_args.output_dir)
    trainer.log_metrics("train", result.metrics)
    trainer.save_metrics("train", result.metrics)
    trainer.save_state()
    return result.metrics


# ---- the end of a run: test set, results, card, push (steps 7-8) ----


def _text_only_test_split(data_args):
    """The test split read again with its text columns only (no audio decoded), for the references of a stream."""
    from .data.loading import load_splits

    try:
        text_args = dataclasses.replace(data_args, train_split=None, eval_split=None, train_file=None, eval_file=None)
        return load_splits(text_args, text_only=True)[0].get("test")
    except (ValueError, OSError) as err:  # fall back to the labels that travelled with the batches
        logger.warning(f"Could not read the test references text-only ({err}); scoring against the labels.")
        return None


def evaluate_test_set(trainer, test_dataset, tokenizer, counter=None, references_from=None) -> dict[str, Any]:
    """Generate on the test set (with the run's generation settings) and score with sacrebleu.

    The references are read from the text columns (`data.reference_translations`: no audio is decoded again), less
    the records `counter` skipped; a stream with audio is scored against the labels that travelled with its batches.

    Returns `{"bleu", "chrf", "bleu_signature", "chrf_signature", "num_samples", "hypotheses", "references"}`.
    """
    import numpy as np

    from .data.text import reference_translations
    from .data.validation import gather_bad_record_counters
    from .metrics import translation_metrics

    output = trainer.predict(test_dataset, metric_key_prefix="test")
    preds = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    if preds is None:  # every test batch was skipped: nothing to score, but the trained model is saved already
        if counter is not None:
            gather_bad_record_counters({"test": counter})
        skipped = counter.skipped if counter is not None else "all"
        logger.warning(
            f"No test utterance could be used ({skipped} skipped; their warnings above say why, e.g. audio files that "
            "do not exist): the test set is not scored. Fix the test manifest's audio paths or columns and rerun "
            "with --model_name_or_path <output_dir> --do_train false to evaluate the saved model."
        )
        return {"num_samples": 0, "hypotheses": [], "references": [], "not_scored": "no usable test utterance"}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    hyps = [h.strip() for h in tokenizer.batch_decode(np.where(preds != -100, preds, pad), skip_special_tokens=True)]
    if counter is not None:
        gather_bad_record_counters({"test": counter})  # every rank: skips made in workers and other processes
    refs = []
    source = references_from if references_from is not None else test_dataset
    if not is_streamed(source) or "audio" not in (source.column_names or ["audio"]):
        refs = reference_translations(source, counter)
    if len(refs) != len(hyps):
        # A stream has no random access, or some test utterances were dropped as bad samples: score against the
        # references that travelled with the batches (detokenised labels, as fairseq's scorer does).
        if refs:
            logger.warning(f"{len(refs) - len(hyps)} test utterances were skipped; scoring the remaining {len(hyps)}.")
        labels = np.where(output.label_ids != -100, output.label_ids, pad)
        refs = [r.strip() for r in tokenizer.batch_decode(labels, skip_special_tokens=True)]
    scores = translation_metrics(hyps, refs)
    return {**scores, "num_samples": len(hyps), "hypotheses": hyps, "references": refs}


def command_line() -> str | None:
    """The command that started this run, as typed (for the card)."""
    if not sys.argv or not sys.argv[0]:
        return None
    import shlex

    return " ".join(["python", Path(sys.argv[0]).name, *map(shlex.quote, sys.argv[1:])])


def card_info_base(data_args, training_args, stage: str) -> dict[str, Any]:
    """What both cards record about the run: data, languages, recipe (path and text), command line, license."""
    recipe_text = None
    if getattr(data_args, "recipe", None) and Path(data_args.recipe).is_file():
        recipe_text = Path(data_args.recipe).read_text(encoding="utf-8")
    return {
        "stage": stage,
        "dataset": getattr(training_args, "dataset_name", None) or data_args.dataset,
        "dataset_config": data_args.dataset_config,
        "languages": [data_args.src_lang, data_args.tgt_lang],
        "recipe": data_args.recipe,
        "recipe_text": recipe_text,
        "command": command_line(),
        "license": getattr(training_args, "license", None),
        "test_split": data_args.test_split,
    }


def _skip_summary(counters: dict[str, Any]) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    totals = {role: int(counter.skipped) for role, counter in counters.items()}
    kinds = {}
    for role, counter in counters.items():
        summary = counter.summary() if hasattr(counter, "summary") else dict(getattr(counter, "counts", {}))
        kinds[role] = {str(k): int(v) for k, v in summary.items() if isinstance(v, int) and not isinstance(v, bool)}
    return totals, kinds


def finish_run(
    trainer,
    splits: dict[str, Any],
    data_args,
    training_args,
    tokenizer,
    counters: dict[str, Any],
    started: float,
    stage: str,
    extra_evaluation=None,
) -> dict[str, Any]:
    """Steps 7-8 of both run scripts: test-set evaluation, results.json, hypotheses, card, Hub push.

    Args:
        extra_evaluation (`Callable[[trainer], dict]`, *optional*): more test-time numbers (stage 2: alignment
            accuracy and plots); its dict is stored under `"alignment"`.

    Returns:
        The results dict (also in `output_dir/results.json`), with `"paths"` naming every file written.
    """
    out_dir = Path(training_args.output_dir)
    results: dict[str, Any] = {
        "stage": stage,
        "dataset": data_args.dataset,
        "dataset_config": data_args.dataset_config,
    }
    paths: dict[str, str] = {"checkpoint": str(out_dir)}
    train_losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    if trainer.state.global_step:
        results["train"] = {"steps": trainer.state.global_step}
        if train_losses:
            results["train"].update({"first_loss": train_losses[0], "final_loss": train_losses[-1]})
    if "test" in splits and getattr(training_args, "do_predict", True):
        references = None
        if is_streamed(splits["test"]):  # a stream with audio: its references come from a text-only read
            references = _text_only_test_split(data_args)
        scores = evaluate_test_set(trainer, splits["test"], tokenizer, counters.get("test"), references)
        hyps, refs = scores.pop("hypotheses"), scores.pop("references")
        results["test"] = scores
        if trainer.is_world_process_zero():
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "test_hypotheses.txt").write_text("\n".join(hyps) + "\n", encoding="utf-8")
            (out_dir / "test_references.txt").write_text("\n".join(refs) + "\n", encoding="utf-8")
            paths["hypotheses"] = str(out_dir / "test_hypotheses.txt")
            paths["references"] = str(out_dir / "test_references.txt")
    if extra_evaluation is not None:
        alignment = extra_evaluation(trainer)
        if alignment:
            results["alignment"] = alignment
            if alignment.get("plot_dir"):
                paths["plots"] = str(alignment["plot_dir"])
    from .data.validation import gather_bad_record_counters

    gather_bad_record_counters(counters)  # collective: unique records across DataLoader workers and processes
    skipped, skipped_kinds = _skip_summary(counters)
    results["skipped"] = skipped
    results["skipped_by_kind"] = skipped_kinds
    collator = getattr(trainer, "data_collator", None)
    if getattr(collator, "skipped_batches", None) is not None:
        results["skipped_batches"] = int(collator.skipped_batches)  # training batches with no usable example
    results["wall_time_seconds"] = round(time.time() - started, 1)
    results["world_size"] = training_args.world_size
    results["paths"] = paths

    card_results = dict(results.get("test") or {})
    if "alignment" in results:
        card_results["alignment_accuracy"] = results["alignment"].get("token_accuracy")
        card_results["alignment_reference"] = results["alignment"].get("reference")
        card_results["alignment_plots"] = len(results["alignment"].get("plots") or [])
    trainer.card_info.update(
        {
            "results": card_results,
            "skipped": sum(skipped.values()),
            "skipped_by_role": skipped,
            "num_train_samples": len(splits["train"])
            if "train" in splits and not is_streamed(splits["train"])
            else None,
            "wall_time": f"{results['wall_time_seconds'] / 60:.1f} min",
        }
    )
    if trainer.is_world_process_zero():
        trainer.create_model_card()
        paths["card"] = str(out_dir / "README.md")
        paths["results"] = str(out_dir / "results.json")
        (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    if training_args.push_to_hub:
        trainer.push_to_hub(commit_message=f"DTW-Align {stage}: end of training")
    return results


def print_run_summary(results: dict[str, Any], prefix: str) -> str:
    """The closing lines of a run: the scores and where every output went (returned; the scripts print it)."""
    lines = []
    test = results.get("test")
    if test:
        lines.append(f"[{prefix}] test BLEU {test.get('bleu', float('nan')):.2f} ({test.get('bleu_signature')})")
        lines.append(f"[{prefix}] test chrF {test.get('chrf', float('nan')):.2f} ({test.get('chrf_signature')})")
    alignment = results.get("alignment")
    if alignment and alignment.get("token_accuracy") is not None:
        lines.append(
            f"[{prefix}] alignment accuracy {100 * alignment['token_accuracy']:.1f}% ({alignment.get('reference')})"
        )
    names = {
        "checkpoint": "checkpoint",
        "results": "metrics JSON",
        "hypotheses": "hypotheses",
        "plots": "plots",
        "card": "model card",
    }
    for key, name in names.items():
        if key in results.get("paths", {}):
            lines.append(f"[{prefix}] {name}: {results['paths'][key]}")
    return "\n".join(lines)


def run_main(main, parser) -> None:
    """`if __name__ == "__main__"` of both scripts: parse, run, print the summary; a `SetupError` is one message
    and exit status 2 (no traceback), as argparse reports its own errors."""
    from .cli import parse_args_and_config

    name = Path(sys.argv[0]).name
    try:
        # a ValueError while parsing comes from an argument dataclass's own checks: a set-up error too
        parsed = parse_args_and_config(parser)
        results = main(*parsed)
    except (SetupError, ValueError) as err:
        if not isinstance(err, SetupError) and "parsed" in locals():
            raise  # a ValueError during the run is a bug or a data problem: keep its traceback
        sys.stderr.write(f"{name}: error: {err}\n")
        raise SystemExit(2) from None
    sys.stdout.write(print_run_summary(results, Path(name).stem) + "\n")


__all__ = [
    "card_info_base",
    "check_paths",
    "command_line",
    "evaluate_test_set",
    "finish_run",
    "is_streamed",
    "prepare_output_dir",
    "print_run_summary",
    "run_main",
    "run_settings",
    "settings_difference",
    "setup_logging",
    "train_and_save",
]
