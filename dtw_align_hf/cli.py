"""Recipe files as defaults, the command line as overrides (trl's `TrlParser` idea, for `HfArgumentParser`).

    python run_finetune_st.py --config recipes/demo/finetune_st.yaml --max_steps 20 --alignment ot

The recipe (YAML or JSON) maps dataclass field names to values. Its keys must be fields of one of the parser's
dataclasses: an unknown key is an error that names the close matches, so a typo never silently falls back to a
default. Anything given on the command line wins over the recipe.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a recipe: a YAML (`.yaml`/`.yml`) or JSON (`.json`) mapping of argument names to values."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Recipe file {str(path)!r} does not exist.")
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TypeError(
            f"Recipe {str(path)!r} must be a mapping of argument names to values, got {type(data).__name__}."
        )
    return data


def _known_dests(parser: argparse.ArgumentParser) -> set[str]:
    return {action.dest for action in parser._actions if action.dest not in (argparse.SUPPRESS, "help")}


def check_config_keys(config: dict[str, Any], parser: argparse.ArgumentParser, source: str = "recipe") -> None:
    """Raise a `ValueError` listing every key of `config` that is not an argument of `parser`."""
    known = _known_dests(parser)
    unknown = [key for key in config if key not in known]
    if unknown:
        lines = []
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
            lines.append(f"  {key!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ""))
        raise ValueError(
            f"Unknown key(s) in {source}:\n" + "\n".join(lines) + "\nKeys must be field names of the script's "
            "argument dataclasses; run the script with --help to list them."
        )


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
        `ValueError` for a recipe key that is not a field, `FileNotFoundError` for a missing recipe, and the
        usual argparse exit for bad command-line arguments (which include unknown flags).
    """
    args = list(sys.argv[1:] if args is None else args)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    pre_ns, rest = pre.parse_known_args(args)

    defaults: dict[str, Any] = {}
    if pre_ns.config is not None:
        file_config = load_config_file(pre_ns.config)
        check_config_keys(file_config, parser, source=f"recipe {pre_ns.config!r}")
        defaults.update(file_config)
    if config:
        check_config_keys(config, parser, source="config overrides")
        defaults.update(config)

    if defaults:
        parser.set_defaults(**defaults)
        # A field without a dataclass default is `required` for argparse; the recipe supplies it.
        for action in parser._actions:
            if action.dest in defaults:
                action.required = False
    return parser.parse_args_into_dataclasses(rest, look_for_args_file=False)


__all__ = ["check_config_keys", "load_config_file", "parse_args_and_config"]
