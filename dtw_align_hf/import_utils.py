"""Availability checks for the optional alignment kernels (numba on CPU, Triton on GPU).

Only `importlib` is used here, so the checks are cheap and never import the heavy package itself. This module is a flat
sibling of the model files: checkpoints saved for `trust_remote_code` ship it along with them.
"""

import importlib.util
from functools import cache


@cache
def _is_package_available(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def is_numba_available() -> bool:
    """Whether `numba` can be imported (the `cpu-kernels` extra: `pip install dtw-align-hf[cpu-kernels]`)."""
    return _is_package_available("numba")


def is_triton_available() -> bool:
    """Whether `triton` can be imported (the `gpu` extra: `pip install dtw-align-hf[gpu]`)."""
    return _is_package_available("triton")


__all__ = ["is_numba_available", "is_triton_available"]
