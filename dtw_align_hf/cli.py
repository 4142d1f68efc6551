"""Recipe files as defaults, the command line as overrides (trl's `TrlParser` idea, for `HfArgumentParser`).

    python run_finetune_st.py --config recipes/demo/finetune_st.yaml --max_steps 20 --alignment ot

The recipe (YAML or JSON) maps dataclass field names to values. Its keys must be fields of one of the parser's
dataclasses: an unknown key is an error that names the close matches, so a typo never silently falls back to a
default. Anything given on the command line wins over the recipe. Every mistake found here (an unknown key or flag,
a value of the wrong type, a YAML syntax error, a typo inside a nested model config) is a `SetupError` that names
the option and the fix, raised before any data is read or any model is built.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import inspect
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser
from transformers.utils import logging


logger = logging.get_logger(__name__)


class SetupError(ValueError):
    """A mistake in the recipe or on the command line, found before any work; the message names the fix.

    The run scripts print it without a traceback (exit status 2, as argparse does).
    """


def _did_you_mean(word: str, known) -> str:
    close = difflib.get_close_matches(str(word), list(known), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(map(repr, close))}?)" if close else ""


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a recipe: a YAML (`.yaml`/`.yml`) or JSON (`.json`) mapping of argument names to values."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Recipe file {str(path)!r} does not exist.")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise SetupError(f"Recipe {str(path)!r}{where}: YAML syntax error: {problem}. Fix the file.") from err
    except json.JSONDecodeError as err:
        raise SetupError(f"Recipe {str(path)!r}, line {err.lineno}: JSON syntax error: {err.msg}.") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TypeError(
            f"Recipe {str(path)!r} must be a mapping of argument names to values, got {type(data).__name__}."
        )
    return data


def _actions_by_dest(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    actions: dict[str, argparse.Action] = {}
    for action in parser._actions:  # the first one per dest: `--flag`, not its `--no_flag` twin
        if action.dest not in (argparse.SUPPRESS, "help"):
            actions.setdefault(action.dest, action)
    return actions


def _type_name(kind) -> str | None:
    if kind is int:
        return "an integer"
    if kind is float:
        return "a number"
    if getattr(kind, "__name__", "") == "string_to_bool":
        return "true or false"
    return None


def _value_ok(kind, value) -> bool:
    if kind is int:
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return True
        if isinstance(value, float):
            return value.is_integer()
        return isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value) is not None
    if kind is float:
        if isinstance(value, bool):
            return False
        if isinstance(value, (int, float)):
            return True
        try:
            float(value)
        except (TypeError, ValueError):
            return False
        return True
    if getattr(kind, "__name__", "") == "string_to_bool":
        return isinstance(value, bool) or str(value).lower() in ("yes", "no", "true", "false", "y", "n", "1", "0")
    return True


def check_config_types(config: dict[str, Any], parser: argparse.ArgumentParser, source: str = "recipe") -> None:
    """Raise a `SetupError` for a value of the wrong type (`per_device_train_batch_size: 8.5`) or not among the
    choices of its argument. argparse converts command-line strings itself; recipe values bypass it."""
    actions = _actions_by_dest(parser)
    for key, value in config.items():
        action = actions.get(key)
        if action is None or value is None:
            continue
        values = value if isinstance(value, list) and action.nargs in ("+", "*") else [value]
        expected = _type_name(action.type)
        for item in values:
            if expected is not None and not _value_ok(action.type, item):
                raise SetupError(f"{source}: {key}: {item!r} is not {expected}. Give {key} {expected}.")
            if action.choices is not None and str(item) not in {str(c) for c in action.choices}:
                allowed = ", ".join(str(c) for c in action.choices)
                raise SetupError(
                    f"{source}: {key}: {item!r} is not one of {allowed}{_did_you_mean(item, map(str, action.choices))}."
                )


def check_nested_config(option: str, config: dict[str, Any] | str, default_model_type: str = "hubert") -> dict:
    """Check the keys of a nested model config (`speech_encoder_config: {model_type: hubert, ...}`).

    Keys must be fields of the transformers config class of `model_type`; an unknown one (`num_hiden_layers`) is a
    `SetupError` with the close matches, as for top-level recipe keys, instead of a silently ignored attribute.
    Returns the config as a dict (a JSON string is parsed).
    """
    from transformers import CONFIG_MAPPING

    if isinstance(config, str):
        try:
            config = json.loads(config)
        except json.JSONDecodeError as err:
            raise SetupError(
                f"--{option}: not valid JSON ({err.msg}); give a mapping, e.g. '{{\"hidden_size\": 64}}'."
            ) from err
    if not isinstance(config, dict):
        raise SetupError(f"{option} must be a mapping of config fields to values, got {type(config).__name__}.")
    model_type = config.get("model_type", default_model_type)
    if model_type not in CONFIG_MAPPING:
        raise SetupError(
            f"{option}: model_type {model_type!r} is not a transformers model type{_did_you_mean(model_type, CONFIG_MAPPING.keys())}."
        )
    cls = CONFIG_MAPPING[model_type]
    known = (
        set(cls().to_dict()) | set(inspect.signature(cls.__init__).parameters) | set(getattr(cls, "attribute_map", {}))
    )
    if dataclasses.is_dataclass(cls):
        known |= {f.name for f in dataclasses.fields(cls)}
    unknown = [key for key in config if key not in known]
    if unknown:
        lines = [f"  {key!r}{_did_you_mean(key, known)}" for key in unknown]
        raise SetupError(f"Unknown key(s) in {option} (fields of {cls.__name__}):\n" + "\n".join(lines))
    return dict(config)


def _known_dests(parser: argparse.ArgumentParser) -> set[str]:
    return {action.dest for action in parser._actions if action.dest not in (argparse.SUPPRESS, "help")}


def check_config_keys(config: dict[str, Any], parser: argparse.ArgumentParser, source: str = "recipe") -> None:
    """Raise a `SetupError` listing every key of `config` that is not an argument of `parser`."""
    known = _known_dests(parser)
    unknown = [key for key in config if key not in known]
    if unknown:
        lines = [f"  {key!r}{_did_you_mean(key, known)}" for key in unknown]
        raise SetupError(
            f"Unknown key(s) in {source}:\n" + "\n".join(lines) + "\nKeys must be field names of the script's "
            "argument dataclasses; run the script with --help to list them."
        )


def use_cpu_if_distributed_without_gpu() -> None:
    """Make a multi-process launch on a machine without CUDA a real gloo CPU run.

    `accelerate launch --multi_gpu` / `--config_file recipes/accelerate/cpu_2proc.yaml` start torchrun ranks but do
    not export `ACCELERATE_USE_CPU`; without it each rank would train alone (ParallelMode.NOT_PARALLEL) on its own
    copy of the data. Must run before the `TrainingArguments` are built.
    """
    import torch

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available():
        os.environ["ACCELERATE_USE_CPU"] = "true"


def parse_args_and_config(
    parser: HfArgumentParser, args: Sequence[str] | None = None, config: dict[str, Any] | None = None
) -> tuple:
    """Parse `args` (default: `sys.argv[1:]`) into the parser's dataclasses, with `--config FILE` as defaults.

    Args:
        parser (`HfArgumentParser`): the script's parser (one dataclass per argument group).
        args (`Sequence[str]`, *optional*): command-line strings; `--config path.yaml` may appear anywhere.
        config (`dict`, *optional*): extra defaults applied after the file (handy from Python, e.g. tests);
            the command line still wins.

    Returns:
        One instance per dataclass of `parser`, in its order.

    Raises:
        `SetupError` (a `ValueError`) for a recipe key that is not a field, a value of the wrong type, an unknown
        command-line flag or a bad command-line value; `FileNotFoundError` for a missing recipe. `--help` still
        exits through argparse.
    """
    args = list(sys.argv[1:] if args is None else args)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    pre_ns, rest = pre.parse_known_args(args)

    defaults: dict[str, Any] = {}
    if pre_ns.config is not None:
        file_config = load_config_file(pre_ns.config)
        check_config_keys(file_config, parser, source=f"recipe {pre_ns.config!r}")
        check_config_types(file_config, parser, source=f"recipe {pre_ns.config!r}")
        defaults.update(file_config)
    if config:
        check_config_keys(config, parser, source="config overrides")
        check_config_types(config, parser, source="config overrides")
        defaults.update(config)

    use_cpu_if_distributed_without_gpu()
    if defaults:
        parser.set_defaults(**defaults)
        # A field without a dataclass default is `required` for argparse; the recipe supplies it.
        for action in parser._actions:
            if action.dest in defaults:
                action.required = False

    def error(message: str):  # argparse would print the usage and exit; name the option and the fix instead
        raise SetupError(f"Command line: {message.rstrip('.')}. Run the script with --help to list the options.")

    parser.error = error
    *parsed, remaining = parser.parse_args_into_dataclasses(
        rest, look_for_args_file=False, return_remaining_strings=True
    )
    if remaining:
        options = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
        lines = [f"  {arg}{_did_you_mean(arg.split('=')[0], options)}" for arg in remaining if arg.startswith("-")]
        lines = lines or [f"  {arg}" for arg in remaining]
        raise SetupError(
            "Unknown command-line argument(s):\n" + "\n".join(lines) + "\nRun the script with --help to list them."
        )
    for obj in parsed:
        if pre_ns.config is not None and dataclasses.is_dataclass(obj) and hasattr(obj, "recipe") and not obj.recipe:
            obj.recipe = pre_ns.config
    return tuple(parsed)


# Names that lived here before cli.py became parsing only. Old imports keep working for one release, with a warning
# that names the new home (run_demo.py and tools/eval_alignment.py still use them).
_MOVED = {
    "DATASETS": "dtw_align_hf.data",
    "DataArguments": "dtw_align_hf.data",
    "BadSampleFilter": "dtw_align_hf.data",
    "SafeAudioDecoder": "dtw_align_hf.data",
    "is_streamed": "dtw_align_hf.data",
    "load_splits": "dtw_align_hf.data",
    "setup_logging": "dtw_align_hf.run_utils",
    "evaluate_test_set": "dtw_align_hf.run_utils",
    "finish_run": "dtw_align_hf.run_utils",
    "print_run_summary": "dtw_align_hf.run_utils",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib
        import warnings

        warnings.warn(
            f"dtw_align_hf.cli.{name} moved to {_MOVED[name]}.{name}; import it from there.",
            FutureWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SetupError",
    "check_config_keys",
    "check_config_types",
    "check_nested_config",
    "load_config_file",
    "parse_args_and_config",
    "use_cpu_if_distributed_without_gpu",
]
