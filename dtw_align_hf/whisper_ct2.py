"""Convert a CTranslate2 Whisper checkpoint (the format faster-whisper uses) to a transformers Whisper checkpoint.

    python -m dtw_align_hf.whisper_ct2 CT2_DIR OUT_DIR [--dtype float32|float16] [--force]

``CT2_DIR`` holds ``model.bin`` (CTranslate2 binary format, version 5 or 6, ``WhisperSpec``) and ``config.json``,
usually also ``vocabulary.json``/``vocabulary.txt``, ``tokenizer.json`` and sometimes ``preprocessor_config.json``.
``OUT_DIR`` receives a ``WhisperForConditionalGeneration`` checkpoint that ``from_pretrained`` loads:
``model.safetensors``, ``config.json``, ``generation_config.json``, ``preprocessor_config.json`` and, where the
CTranslate2 folder ships ``tokenizer.json``, the Whisper tokenizer files.

The ``model.bin`` layout (all little-endian) is the one CTranslate2 writes in ``ModelSpec._serialize``
(``python/ctranslate2/specs/model_spec.py``)::

    u32 binary_version; str spec_name; u32 spec_revision; u32 n_variables
    n_variables x {str name; u8 ndim; u32 dims[ndim]; u8 dtype; u32 nbytes; bytes data}
    u32 n_aliases; n_aliases x {str alias; str target}

where ``str`` is a ``u16`` length that counts a trailing NUL, then the UTF-8 bytes and the NUL; dtype ids are
0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16. Quantised weights (``int8*``: one scale per output
row; ``int16``: one scalar scale) come with a ``<name>_scale`` variable and ``float = int / scale``. CTranslate2's
``optimize()`` stores tensors equal to an earlier one as aliases (e.g. the tied output projection, or identical
layer-norm parameters). The name mapping is the inverse of CTranslate2's own ``WhisperLoader``
(``python/ctranslate2/converters/transformers.py``): self-attention q, k, v are fused in ``linear_0`` with a zero
k bias (transformers' ``k_proj`` has none); cross-attention has ``linear_0`` = q, ``linear_1`` = [k; v],
``linear_2`` = output.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from transformers.utils import logging


logger = logging.get_logger(__name__)

__all__ = ["Ct2Checkpoint", "convert_ct2_whisper", "ct2_to_hf_state_dict", "read_ct2_model_bin"]

SUPPORTED_BINARY_VERSIONS = (5, 6)
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}
_SPECIAL_TOKENS = {
    "eot": "<|endoftext|>",
    "sot": "<|startoftranscript|>",
    "translate": "<|translate|>",
    "transcribe": "<|transcribe|>",
    "prev": "<|startofprev|>",
    "no_timestamps": "<|notimestamps|>",
}


@dataclass
class Ct2Checkpoint:
    """The parsed content of a CTranslate2 ``model.bin``: raw variables (aliases resolved) and the aliases."""

    spec_name: str
    revision: int
    binary_version: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str] = field(default_factory=dict)
    num_stored: int = 0  # variables stored in the file (the rest of ``variables`` are aliases)

    def dtypes(self) -> list[str]:
        return sorted({str(v.dtype) for v in self.variables.values() if v.ndim > 0})


def read_ct2_model_bin(path: str | os.PathLike) -> Ct2Checkpoint:
    """Parse a CTranslate2 ``model.bin``; raises ``ValueError`` naming the file for anything it cannot read."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: a CTranslate2 model folder holds a file named model.bin")
    buf = path.read_bytes()
    off = 0

    def take(n: int) -> bytes:
        nonlocal off
        if off + n > len(buf):
            raise ValueError(f"{path} is truncated at byte {off} (wanted {n} more of {len(buf)}): re-download it")
        out = buf[off : off + n]
        off += n
        return out

    def num(fmt: str) -> int:
        return struct.unpack("<" + fmt, take(struct.calcsize(fmt)))[0]

    def text() -> str:
        raw = take(num("H"))
        if not raw or raw[-1] != 0:
            raise ValueError(f"{path}: malformed string at byte {off}; not a CTranslate2 model.bin")
        return raw[:-1].decode("utf-8")

    if len(buf) < 8:
        raise ValueError(f"{path} is {len(buf)} bytes long: not a CTranslate2 model.bin")
    version = num("I")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise ValueError(
            f"{path}: CTranslate2 binary version {version} is not supported (supported: "
            f"{', '.join(map(str, SUPPORTED_BINARY_VERSIONS))}). If this is a CTranslate2 model, convert the original "
            "transformers checkpoint with a CTranslate2 release that writes version 6; otherwise it is not a "
            "CTranslate2 model.bin at all."
        )
    spec_name = text()
    revision = num("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(num("I")):
        name = text()
        shape = [num("I") for _ in range(num("B"))]
        dtype_id = num("B")
        if dtype_id not in _DTYPES:
            raise ValueError(f"{path}: variable {name!r} has unknown dtype id {dtype_id}")
        raw = take(num("I"))
        dtype = _DTYPES[dtype_id]
        if dtype == "bfloat16":  # numpy has no bfloat16: widen to float32 exactly
            arr = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype)
        variables[name] = arr.reshape(shape).copy()
    num_stored = len(variables)
    aliases = {}
    for _ in range(num("I")):
        alias = text()
        aliases[alias] = text()
    if off != len(buf):
        raise ValueError(f"{path} has {len(buf) - off} unexpected trailing bytes: not a CTranslate2 model.bin")
    for alias, target in aliases.items():
        if target not in variables:
            raise ValueError(f"{path}: alias {alias!r} points to a missing variable {target!r}")
        variables[alias] = variables[target]
    for alias, target in aliases.items():  # an alias of a quantised tensor shares its scale (e.g. tied proj_out)
        if target + "_scale" in variables and alias + "_scale" not in variables:
            variables[alias + "_scale"] = variables[target + "_scale"]
    return Ct2Checkpoint(spec_name, revision, version, variables, aliases, num_stored)


def dequantize(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fold each ``<name>_scale`` into ``<name>`` (``float = int / scale``); float tensors become float32."""
    out = {}
    for name, arr in variables.items():
        if name.endswith("_scale") and name[: -len("_scale")] in variables:
            continue
        scale = variables.get(name + "_scale")
        if scale is not None:
            value = arr.astype(np.float32)
            scale = scale.astype(np.float32)
            if scale.size == 1:
                value = value / scale.reshape(())
            else:  # one scale per output row (conv weights are flattened to rows when quantised)
                value = value / scale.reshape((-1,) + (1,) * (value.ndim - 1))
            out[name] = value
        elif arr.dtype in (np.float16, np.float32):
            out[name] = arr.astype(np.float32)
        else:
            out[name] = arr  # integer scalars: num_heads, flags
    return out


def _num_layers(variables: dict[str, np.ndarray], prefix: str) -> int:
    found = {int(m.group(1)) for k in variables for m in [re.match(prefix + r"/layer_(\d+)/", k)] if m}
    if not found:
        raise ValueError(f"no {prefix} layers in the CTranslate2 checkpoint: not a complete Whisper model")
    return max(found) + 1


def ct2_to_hf_state_dict(variables: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], set[str]]:
    """Map dequantised ``WhisperSpec`` variables to ``WhisperForConditionalGeneration`` parameter names.

    Returns the state dict (without ``proj_out.weight`` when it is tied to the token embeddings) and the set of
    CTranslate2 names used. Raises ``ValueError`` for a missing tensor or a non-zero key bias.
    """
    sd: dict[str, np.ndarray] = {}
    used: set[str] = set()

    def take(name: str) -> np.ndarray:
        if name not in variables:
            raise ValueError(f"the CTranslate2 checkpoint has no variable {name!r}: not a complete Whisper model")
        used.add(name)
        return variables[name]

    def layer_norm(dst: str, src: str) -> None:
        sd[dst + ".weight"] = take(src + "/gamma")
        sd[dst + ".bias"] = take(src + "/beta")

    def linear(dst: str, src: str) -> None:
        sd[dst + ".weight"] = take(src + "/weight")
        sd[dst + ".bias"] = take(src + "/bias")

    def split(dst: str, src: str, parts: str) -> None:
        weight, bias = take(src + "/weight"), take(src + "/bias")
        d = weight.shape[0] // len(parts)
        for i, part in enumerate(parts):
            sd[f"{dst}.{part}_proj.weight"] = weight[i * d : (i + 1) * d]
            b = bias[i * d : (i + 1) * d]
            if part == "k":
                if np.any(b != 0):
                    raise ValueError(f"{src}: non-zero key bias, but transformers' Whisper k_proj has no bias")
            else:
                sd[f"{dst}.{part}_proj.bias"] = b

    def block(dst: str, src: str, cross: bool) -> None:
        split(dst + ".self_attn", src + "/self_attention/linear_0", "qkv")
        linear(dst + ".self_attn.out_proj", src + "/self_attention/linear_1")
        layer_norm(dst + ".self_attn_layer_norm", src + "/self_attention/layer_norm")
        if cross:
            linear(dst + ".encoder_attn.q_proj", src + "/attention/linear_0")
            split(dst + ".encoder_attn", src + "/attention/linear_1", "kv")
            linear(dst + ".encoder_attn.out_proj", src + "/attention/linear_2")
            layer_norm(dst + ".encoder_attn_layer_norm", src + "/attention/layer_norm")
        linear(dst + ".fc1", src + "/ffn/linear_0")
        linear(dst + ".fc2", src + "/ffn/linear_1")
        layer_norm(dst + ".final_layer_norm", src + "/ffn/layer_norm")

    enc, dec = "model.encoder", "model.decoder"
    linear(enc + ".conv1", "encoder/conv1")
    linear(enc + ".conv2", "encoder/conv2")
    sd[enc + ".embed_positions.weight"] = take("encoder/position_encodings/encodings")
    layer_norm(enc + ".layer_norm", "encoder/layer_norm")
    for i in range(_num_layers(variables, "encoder")):
        block(f"{enc}.layers.{i}", f"encoder/layer_{i}", cross=False)
    sd[dec + ".embed_tokens.weight"] = take("decoder/embeddings/weight")
    sd[dec + ".embed_positions.weight"] = take("decoder/position_encodings/encodings")
    layer_norm(dec + ".layer_norm", "decoder/layer_norm")
    for i in range(_num_layers(variables, "decoder")):
        block(f"{dec}.layers.{i}", f"decoder/layer_{i}", cross=True)
    projection = variables.get("decoder/projection/weight")
    if projection is not None:
        used.add("decoder/projection/weight")
        if not np.array_equal(projection, sd[dec + ".embed_tokens.weight"]):
            sd["proj_out.weight"] = projection  # untied output projection
    return sd, used


def _read_vocabulary(ct2_dir: Path) -> list[str] | None:
    if (ct2_dir / "vocabulary.json").is_file():
        return json.loads((ct2_dir / "vocabulary.json").read_text(encoding="utf-8"))
    if (ct2_dir / "vocabulary.txt").is_file():
        return (ct2_dir / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:-1]
    return None


def _special_ids(ct2_dir: Path, vocab_size: int) -> dict[str, int]:
    """Ids of Whisper's special tokens, read from the folder's vocabulary or tokenizer (never guessed)."""
    tokens = _read_vocabulary(ct2_dir)
    index = {}
    if tokens is not None:
        index = {t: i for i, t in enumerate(tokens)}
    elif (ct2_dir / "tokenizer.json").is_file():
        tok = json.loads((ct2_dir / "tokenizer.json").read_text(encoding="utf-8"))
        index = {t["content"]: t["id"] for t in tok.get("added_tokens", [])}
    ids = {key: index[tok] for key, tok in _SPECIAL_TOKENS.items() if tok in index}
    for key in ("eot", "sot"):
        if key not in ids:
            raise ValueError(
                f"{ct2_dir} has no vocabulary.json, vocabulary.txt or tokenizer.json listing {_SPECIAL_TOKENS[key]}: "
                "copy the vocabulary file of the CTranslate2 model into the folder"
            )
    ids["_tokens"] = index  # type: ignore[assignment]
    if any(i >= vocab_size for k, i in ids.items() if k != "_tokens"):
        raise ValueError(f"{ct2_dir}: the vocabulary's special-token ids exceed the model's {vocab_size} embeddings")
    return ids


def _build_configs(variables: dict[str, np.ndarray], ct2_config: dict, ids: dict, untied: bool, dtype: str):
    from transformers import GenerationConfig, WhisperConfig

    conv1 = variables["encoder/conv1/weight"]
    vocab_size = variables["decoder/embeddings/weight"].shape[0]
    eot, sot = ids["eot"], ids["sot"]
    suppress = ct2_config.get("suppress_ids")
    begin_suppress = ct2_config.get("suppress_ids_begin")
    config = WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=conv1.shape[1],
        d_model=conv1.shape[0],
        encoder_layers=_num_layers(variables, "encoder"),
        decoder_layers=_num_layers(variables, "decoder"),
        encoder_attention_heads=int(variables["encoder/num_heads"]),
        decoder_attention_heads=int(variables["decoder/num_heads"]),
        encoder_ffn_dim=variables["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=variables["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=variables["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=variables["decoder/position_encodings/encodings"].shape[0],
        activation_function="gelu",
        scale_embedding=False,
        tie_word_embeddings=not untied,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=sot,
        # WhisperConfig's defaults (begin_suppress_tokens [220, 50256]) are wrong for other vocabularies
        suppress_tokens=suppress,
        begin_suppress_tokens=begin_suppress,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        dtype=dtype,
    )
    config.architectures = ["WhisperForConditionalGeneration"]
    generation = GenerationConfig(
        decoder_start_token_id=sot,
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        max_length=config.max_target_positions,
        suppress_tokens=suppress,
        begin_suppress_tokens=begin_suppress,
        alignment_heads=ct2_config.get("alignment_heads"),
        return_timestamps=False,
    )
    lang_ids = ct2_config.get("lang_ids") or []
    generation.is_multilingual = bool(lang_ids)
    if "no_timestamps" in ids:
        generation.no_timestamps_token_id = ids["no_timestamps"]
    if "prev" in ids:
        generation.prev_sot_token_id = ids["prev"]
    if lang_ids:
        by_id = {i: t for t, i in ids["_tokens"].items()}
        generation.lang_to_id = {by_id[i]: i for i in lang_ids if i in by_id}
        if "transcribe" in ids and "translate" in ids:
            generation.task_to_id = {"transcribe": ids["transcribe"], "translate": ids["translate"]}
            # as in the Hub's openai/whisper-* generation configs: with neither language nor task given,
            # generate() detects the language and transcribes
            generation.forced_decoder_ids = [[1, None], [2, ids["transcribe"]]]
    return config, generation


def _write_preprocessing_files(ct2_dir: Path, out_dir: Path, num_mel_bins: int) -> list[str]:
    from transformers import WhisperFeatureExtractor

    written = []
    if (ct2_dir / "preprocessor_config.json").is_file():
        shutil.copy(ct2_dir / "preprocessor_config.json", out_dir / "preprocessor_config.json")
        feature_extractor = WhisperFeatureExtractor.from_pretrained(out_dir)
        if feature_extractor.feature_size != num_mel_bins:
            raise ValueError(
                f"{ct2_dir / 'preprocessor_config.json'} has feature_size {feature_extractor.feature_size}, but the "
                f"model's first convolution takes {num_mel_bins} mel bins"
            )
    else:  # Whisper's defaults, with the model's number of mel bins (80, or 128 for large-v3)
        WhisperFeatureExtractor(feature_size=num_mel_bins).save_pretrained(out_dir)
    written.append("preprocessor_config.json")
    if (ct2_dir / "tokenizer.json").is_file():
        from transformers import WhisperTokenizer

        tokenizer = WhisperTokenizer(tokenizer_file=str(ct2_dir / "tokenizer.json"))
        tokenizer.save_pretrained(out_dir)
        written.append("tokenizer files")
    else:
        logger.warning(
            "%s has no tokenizer.json: the converted checkpoint has no tokenizer (its encoder does not need one; "
            "for decoding copy the original model's tokenizer files into %s)",
            ct2_dir,
            out_dir,
        )
    return written


def _apply_umask(folder: Path) -> None:
    """mkdtemp makes a private (0700) folder; give the result the permissions a plain mkdir/open would."""
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for path in folder.iterdir():
        os.chmod(path, 0o666 & ~umask)


def convert_ct2_whisper(
    ct2_dir: str | os.PathLike, out_dir: str | os.PathLike, *, dtype: str = "float32", force: bool = False
) -> Path:
    """Convert the CTranslate2 Whisper model in ``ct2_dir`` to a transformers checkpoint in ``out_dir``.

    Args:
        ct2_dir: folder with ``model.bin`` and ``config.json`` (e.g. a faster-whisper model folder).
        out_dir: where the ``WhisperForConditionalGeneration`` checkpoint goes. Written atomically (built in a
            temporary folder beside it, then renamed), so an interrupted conversion leaves nothing half-written.
        dtype: ``"float32"`` (default; int8/float16 inputs are widened exactly) or ``"float16"``.
        force: replace an existing ``out_dir``; without it an existing non-empty ``out_dir`` is an error.

    Returns:
        ``out_dir`` as a ``Path``.
    """
    ct2_dir, out_dir = Path(ct2_dir), Path(out_dir)
    if dtype not in ("float32", "float16"):
        raise ValueError(f"dtype={dtype!r}: use 'float32' or 'float16'")
    if not ct2_dir.is_dir():
        raise FileNotFoundError(f"{ct2_dir} is not a folder: pass the CTranslate2 model folder (with model.bin)")
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise FileExistsError(f"{out_dir} exists and is not empty: choose another folder or pass force=True (--force)")
    if not (ct2_dir / "config.json").is_file():
        raise FileNotFoundError(
            f"{ct2_dir} has no config.json: a CTranslate2 model folder has model.bin + config.json"
        )
    checkpoint = read_ct2_model_bin(ct2_dir / "model.bin")
    if checkpoint.spec_name != "WhisperSpec":
        raise ValueError(
            f"{ct2_dir / 'model.bin'} is a CTranslate2 {checkpoint.spec_name}, not a Whisper model (WhisperSpec)"
        )
    ct2_config = json.loads((ct2_dir / "config.json").read_text(encoding="utf-8"))
    variables = dequantize(checkpoint.variables)
    state_dict, used = ct2_to_hf_state_dict(variables)
    unmapped = sorted(k for k, v in variables.items() if k not in used and v.ndim > 0)
    if unmapped:
        raise ValueError(f"{ct2_dir / 'model.bin'}: tensors this converter does not know: {unmapped}")
    if int(variables.get("decoder/scale_embeddings", 0)) != 0:
        raise ValueError(f"{ct2_dir / 'model.bin'}: scaled decoder embeddings are not Whisper's architecture")
    vocab_size = variables["decoder/embeddings/weight"].shape[0]
    ids = _special_ids(ct2_dir, vocab_size)
    config, generation = _build_configs(variables, ct2_config, ids, "proj_out.weight" in state_dict, dtype)

    from safetensors.numpy import save_file

    target = np.float16 if dtype == "float16" else np.float32
    tensors = {k: np.ascontiguousarray(v.astype(target)) for k, v in state_dict.items()}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        config.save_pretrained(tmp)
        generation.save_pretrained(tmp)
        written = _write_preprocessing_files(ct2_dir, tmp, config.num_mel_bins)
        _apply_umask(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info(
        "converted %s (CTranslate2 %s rev %d, binary v%d, %s, %d variables + %d aliases) -> %s: %d tensors (%s), "
        "config, generation config, %s",
        ct2_dir,
        checkpoint.spec_name,
        checkpoint.revision,
        checkpoint.binary_version,
        "/".join(checkpoint.dtypes()),
        checkpoint.num_stored,
        len(checkpoint.aliases),
        out_dir,
        len(tensors),
        dtype,
        ", ".join(written),
    )
    return out_dir


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        prog="python -m dtw_align_hf.whisper_ct2",
        description="Convert a CTranslate2 Whisper model folder (model.bin + config.json, e.g. faster-whisper) "
        "to a transformers WhisperForConditionalGeneration checkpoint.",
    )
    parser.add_argument(
        "ct2_dir", help="CTranslate2 model folder (model.bin, config.json, vocabulary, tokenizer.json)"
    )
    parser.add_argument("out_dir", help="output folder for the transformers checkpoint")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16"], help="saved weight dtype")
    parser.add_argument("--force", action="store_true", help="replace out_dir if it exists")
    args = parser.parse_args(argv)
    import logging as std_logging

    std_logging.basicConfig(level=std_logging.INFO, format="%(message)s")  # this module's log is the CLI's output
    try:
        return convert_ct2_whisper(args.ct2_dir, args.out_dir, dtype=args.dtype, force=args.force)
    except (OSError, ValueError) as err:
        parser.exit(2, f"error: {err}\n")


if __name__ == "__main__":
    main()
