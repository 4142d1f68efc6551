"""The speech-encoder families `DTWAlignForSpeechTranslation` accepts, and what differs between them.

Two input kinds (the batch key is the encoder's `main_input_name`):

| family | batch key | input frames | encoder frames | padding |
| --- | --- | --- | --- | --- |
| waveform: HuBERT, wav2vec 2.0, WavLM, data2vec-audio | `input_values` (B, T) | 16 kHz samples | 20 ms (CNN, stride 320) | any length; sample mask to the encoder |
| Whisper encoder | `input_features` (B, n_mels, W) | 10 ms log-mel | 20 ms (2 convs, stride 2) | exactly the window W (`speech_window_seconds`); padded frames masked afterwards |
| Speech2Text encoder | `input_features` (B, T, n_mels) | 10 ms fbank | 40 ms (2 GLU convs, stride 2 each) | any length; frame mask to the encoder |

Every family maps its input lengths to encoder frames with the encoder's own `_get_feat_extract_output_lengths`.
Whisper's encoder attends over the whole fixed window and ignores masks (transformers' `WhisperEncoder.forward`
raises unless the input has exactly `2 * max_source_positions` mel frames); DTW-Align uses the real lengths to mask
the padded frames out of the adapter, the alignment and the decoder's cross-attention. A window shorter than
Whisper's 30 s is built by rebuilding the sinusoidal position table (`max_source_positions = window_frames // 2`),
as `WhisperPreTrainedModel._init_weights` does; pretrained conv and layer weights load unchanged.
"""

import hashlib
import os
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, PreTrainedConfig, PreTrainedModel


#: `model_type`s of the filterbank/mel encoders; every other audio encoder is read as a waveform encoder.
MEL_ENCODER_TYPES = ("whisper", "speech_to_text")
#: Feature frames per second of the mel/fbank extractors (10 ms hop at 16 kHz: Whisper's and Speech2Text's).
FEATURE_FRAMES_PER_SECOND = 100
#: Whisper's own window: 30 s of audio = 3000 mel frames = 1500 encoder positions.
WHISPER_WINDOW_SECONDS = 30.0


def speech_input_name(speech_config: PreTrainedConfig) -> str:
    """`"input_features"` for Whisper / Speech2Text, else `"input_values"` (raw 16 kHz samples)."""
    return "input_features" if speech_config.model_type in MEL_ENCODER_TYPES else "input_values"


def window_frames(window_seconds: float) -> int:
    """Mel frames in a Whisper window of `window_seconds` (100 per second); raises unless a positive even count."""
    frames = window_seconds * FEATURE_FRAMES_PER_SECOND
    if window_seconds <= 0 or abs(frames - round(frames)) > 1e-6 or round(frames) % 2:
        raise ValueError(
            f"`speech_window_seconds={window_seconds}` must be a positive multiple of 0.02 s (an even number of 10 ms "
            "mel frames: Whisper's second conv halves them), e.g. 30, 10 or 4.5."
        )
    return round(frames)


def whisper_window_seconds(speech_config: PreTrainedConfig) -> float:
    """The window a Whisper config was built for: `2 * max_source_positions` mel frames."""
    return 2 * speech_config.max_source_positions / FEATURE_FRAMES_PER_SECOND


def set_whisper_window(speech_config: PreTrainedConfig, window_seconds: float) -> bool:
    """Set `max_source_positions` for a window; return whether it changed (then the position table is rebuilt)."""
    positions = window_frames(window_seconds) // 2
    changed = speech_config.max_source_positions != positions
    speech_config.max_source_positions = positions
    return changed


def _family_class(speech_config: PreTrainedConfig, architectures=None):
    """The encoder-only class of a mel family, or `None` for waveform encoders (built with `AutoModel`)."""
    if speech_config.model_type == "whisper":
        from transformers.models.whisper.modeling_whisper import WhisperEncoder, WhisperModel

        full = architectures and not any(a == "WhisperEncoder" for a in architectures)
        return WhisperModel if full else WhisperEncoder
    if speech_config.model_type == "speech_to_text":
        from transformers.models.speech_to_text.modeling_speech_to_text import Speech2TextEncoder, Speech2TextModel

        full = architectures and not any(a == "Speech2TextEncoder" for a in architectures)
        return Speech2TextModel if full else Speech2TextEncoder
    return None


def build_speech_encoder(speech_config: PreTrainedConfig) -> PreTrainedModel:
    """A randomly initialised speech encoder for a config (the encoder only, for Whisper and Speech2Text)."""
    cls = _family_class(speech_config)
    return AutoModel.from_config(speech_config) if cls is None else cls(speech_config)


def load_speech_encoder(
    name_or_path: str, speech_config: PreTrainedConfig, *, positions_changed: bool = False, **kwargs
) -> PreTrainedModel:
    """Load a pretrained speech encoder; for a full Whisper / Speech2Text checkpoint, take its encoder.

    Args:
        name_or_path (`str`): Hub id or folder (`facebook/hubert-base-ls960`, `openai/whisper-base`, a saved
            `WhisperEncoder`, ...).
        speech_config (`PreTrainedConfig`): its config, already carrying the overrides (window included).
        positions_changed (`bool`): Whisper's `max_source_positions` differs from the checkpoint's: its sinusoidal
            position table is rebuilt (`ignore_mismatched_sizes=True`, only that table mismatches).
        **kwargs: further `from_pretrained` arguments (`revision`, `token`, `dtype`, ...).
    """
    cls = _family_class(speech_config, getattr(speech_config, "architectures", None))
    if cls is None:
        return AutoModel.from_pretrained(name_or_path, config=speech_config, **kwargs)
    if positions_changed:
        kwargs["ignore_mismatched_sizes"] = True
    model = cls.from_pretrained(name_or_path, config=speech_config, **kwargs)
    return model.get_encoder() if hasattr(model, "get_encoder") and not _is_encoder_only(model) else model


def _is_encoder_only(model: nn.Module) -> bool:
    return type(model).__name__ in ("WhisperEncoder", "Speech2TextEncoder")


def encoder_output_lengths(encoder: PreTrainedModel, input_lengths: torch.Tensor) -> torch.Tensor:
    """Encoder frames for `input_lengths` input units (samples or 10 ms feature frames), long."""
    return encoder._get_feat_extract_output_lengths(input_lengths).long()


def input_units_per_second(speech_config: PreTrainedConfig, sampling_rate: int) -> int:
    """Input units per second of audio: samples for waveform encoders, 10 ms frames for mel encoders."""
    return FEATURE_FRAMES_PER_SECOND if speech_input_name(speech_config) == "input_features" else sampling_rate


def run_speech_encoder(
    encoder: PreTrainedModel, inputs: torch.Tensor, attention_mask: torch.Tensor | None, *, spec_augment: bool = True
) -> torch.Tensor:
    """Run the encoder on a batch; return its last hidden states `(B, T', C)`.

    Waveform encoders and Speech2Text get the input mask; Whisper ignores masks (the real lengths are applied by the
    caller). `spec_augment=False` runs a waveform encoder without SpecAugment (`mask_time_prob`,
    `mask_feature_prob`) even in training mode; the mel encoders apply none inside their encoder.
    """
    model_type = encoder.config.model_type
    if model_type == "whisper":
        return encoder(inputs).last_hidden_state
    if model_type == "speech_to_text":
        return encoder(inputs, attention_mask=attention_mask).last_hidden_state
    if spec_augment or not getattr(encoder.config, "apply_spec_augment", False):
        return encoder(inputs, attention_mask=attention_mask).last_hidden_state
    # transformers' waveform encoders read `config.apply_spec_augment` in `_mask_hidden_states`, called once per
    # forward outside the (checkpointed) layers, so switching it off for this call is enough.
    encoder.config.apply_spec_augment = False
    try:
        return encoder(inputs, attention_mask=attention_mask).last_hidden_state
    finally:
        encoder.config.apply_spec_augment = True


class FrozenEncoderCache:
    """The outputs of a frozen speech encoder, computed once per utterance and reused in later steps and epochs.

    A frozen encoder gives the same output for the same audio every epoch, and with it frozen its forward pass is most
    of a CPU training step (a Whisper encoder runs over its whole window). Outputs are computed in eval mode (no
    dropout, no SpecAugment) under `no_grad`, keyed by a hash of each utterance's real input units and its length,
    and kept in memory (about `frames x hidden x 4` bytes per utterance: 350 x 512 x 4 = 0.7 MB for 7 s of Whisper
    base). Utterances not yet cached are encoded together as one sub-batch. Whisper (fixed window, no masks) gives
    exactly the uncached eval-mode output; waveform encoders with group norm over the padded length (HuBERT base)
    can differ slightly, since an utterance is encoded in whichever batch first held it. Each lookup copies the
    batch's audio to the host for hashing: the option is for frozen-encoder runs where the encoder dominates.

    With `directory`, outputs are also written there (one `.pt` file per utterance, written to a temporary name and
    renamed, so concurrent runs can share the folder) under a sub-folder named by a hash of the encoder's config and
    weights, and later runs with the same encoder and audio read them instead of running the encoder: the grids of
    `dtw_align_hf.experiments` pay for a frozen Whisper encoder once per corpus, not once per system.
    """

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        self.store: dict[bytes, torch.Tensor] = {}
        self.hits = 0
        self.misses = 0
        self.disk_hits = 0
        self.directory = Path(directory) if directory is not None else None
        self._folder: Path | None = None  # <directory>/<encoder fingerprint>, fixed at the first lookup

    @staticmethod
    def fingerprint(encoder: PreTrainedModel) -> str:
        """A hash of the encoder's configuration and every weight: outputs on disk are only reused by the same encoder."""
        digest = hashlib.blake2b(encoder.config.to_json_string(use_diff=False).encode(), digest_size=12)
        for name, tensor in sorted(encoder.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    def _disk_folder(self, encoder: PreTrainedModel) -> Path | None:
        if self.directory is None:
            return None
        if self._folder is None:
            self._folder = self.directory / self.fingerprint(encoder)
            self._folder.mkdir(parents=True, exist_ok=True)
        return self._folder

    def _load(self, folder: Path | None, key: bytes, device: torch.device) -> bool:
        if folder is None:
            return False
        path = folder / f"{key.hex()}.pt"
        if not path.is_file():
            return False
        try:
            self.store[key] = torch.load(path, map_location=device, weights_only=True)
        except Exception:  # noqa: BLE001 -- a torn file fails in many ways (unpickler IndexError too): recompute it
            return False
        return True

    def _save(self, folder: Path | None, key: bytes, hidden: torch.Tensor) -> None:
        if folder is None:
            return
        path = folder / f"{key.hex()}.pt"
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # concurrent runs each write their own tmp file
        torch.save(hidden, tmp)
        os.replace(tmp, path)

    @staticmethod
    def _key(row: torch.Tensor, length: int) -> bytes:
        digest = hashlib.blake2b(row.detach().float().cpu().contiguous().numpy().tobytes(), digest_size=16)
        return digest.digest() + int(length).to_bytes(8, "little")

    def __call__(
        self,
        encoder: PreTrainedModel,
        inputs: torch.Tensor,
        attention_mask: torch.Tensor | None,
        lengths: torch.Tensor,
    ) -> torch.Tensor:
        """Encoder hidden states `(B, T', C)` of `inputs`, zero beyond each utterance's real frames."""
        axis = 1 if speech_input_name(encoder.config) == "input_values" else feature_frames_axis(encoder.config)
        units = lengths.tolist()
        keys = [self._key(inputs[b].narrow(axis - 1, 0, n), n) for b, n in enumerate(units)]
        folder = self._disk_folder(encoder)
        on_disk = [b for b, key in enumerate(keys) if key not in self.store and self._load(folder, key, inputs.device)]
        self.disk_hits += len(on_disk)
        missing = [b for b, key in enumerate(keys) if key not in self.store]
        if missing:
            index = torch.tensor(missing, device=inputs.device)
            mask = None if attention_mask is None else attention_mask.index_select(0, index)
            was_training = encoder.training
            encoder.eval()
            try:
                with torch.no_grad():
                    hidden = run_speech_encoder(encoder, inputs.index_select(0, index), mask)
            finally:
                encoder.train(was_training)
            frames = encoder_output_lengths(encoder, lengths.index_select(0, index)).tolist()
            for j, b in enumerate(missing):
                self.store[keys[b]] = hidden[j, : frames[j]].clone()
                self._save(folder, keys[b], self.store[keys[b]].cpu())
        self.misses += len(missing)
        self.hits += len(keys) - len(missing)
        # Only as many frames as the longest utterance has: a Whisper window's padded frames are masked out later
        # anyway (the adapter and the translation encoder see zeros / masked positions there), so trimming them
        # changes no real frame's output and saves most of the compute on short utterances.
        total = max(self.store[key].shape[0] for key in keys)
        first = self.store[keys[0]]
        out = first.new_zeros(len(keys), total, first.shape[-1])
        for b, key in enumerate(keys):
            cached = self.store[key]
            out[b, : cached.shape[0]] = cached
        return out.to(inputs.device)


def feature_encoder_modules(encoder: PreTrainedModel) -> list[nn.Module]:
    """The convolutional front end of each family (what `freeze_feature_encoder` freezes)."""
    model_type = encoder.config.model_type
    if model_type == "whisper":
        return [encoder.conv1, encoder.conv2]
    if model_type == "speech_to_text":
        return [encoder.conv]
    feature_extractor = getattr(encoder, "feature_extractor", None)
    if feature_extractor is None:
        raise AttributeError(f"{type(encoder).__name__} has no convolutional `feature_extractor` to freeze.")
    return [feature_extractor]


def freeze_modules(modules: list[nn.Module]) -> None:
    for module in modules:
        if hasattr(module, "_freeze_parameters"):
            module._freeze_parameters()  # HuBERT/wav2vec 2.0: also skips the CNN's backward entirely
        else:
            module.requires_grad_(False)


def check_feature_shape(speech_config: PreTrainedConfig, features: torch.Tensor) -> str | None:
    """A message if `input_features` does not have the family's layout, else `None`."""
    if features.dim() != 3:
        return f"`input_features` must be 3-D (batch, ...) mel features, got shape {tuple(features.shape)}"
    if speech_config.model_type == "whisper":
        bins = speech_config.num_mel_bins
        if features.shape[1] != bins:
            return f"Whisper takes `input_features` of shape (batch, {bins} mel bins, frames), got {tuple(features.shape)}"
        return None
    bins = speech_config.input_feat_per_channel * speech_config.input_channels
    if features.shape[2] != bins:
        return f"Speech2Text takes `input_features` of shape (batch, frames, {bins}), got {tuple(features.shape)}"
    return None


def feature_frames_axis(speech_config: PreTrainedConfig) -> int:
    """The time axis of `input_features`: 2 for Whisper (B, n_mels, T), 1 for Speech2Text (B, T, n_mels)."""
    return 2 if speech_config.model_type == "whisper" else 1


def min_input_units(model) -> int:
    """Fewest input units (samples or feature frames) that give one adapter frame; cached on the model."""
    if getattr(model, "_min_units_cache", None) is None:
        low, high = 1, 1 << 20  # frame counts grow with the input length: binary search the first n with >= 1
        while low < high:
            mid = (low + high) // 2
            if model._speech_frame_lengths(torch.tensor([mid])).item() >= 1:
                high = mid
            else:
                low = mid + 1
        model._min_units_cache = low
    return model._min_units_cache


def check_audio_batch(model, audio, attention_mask, sampling_rate, *, text_mask=None) -> None:
    """Every check of a model's audio (and transcript mask) batch, raising a `ValueError` that names the samples.

    Shapes are checked first (no device work); the per-sample checks (finite values, empty, too short, too long,
    empty transcript) are computed on the device and copied to the host once, so a forward makes one
    synchronisation for its checks.
    """
    cfg, name = model.config, model.main_input_name
    flags, lengths, per_second = {}, None, input_units_per_second(cfg.speech_config, cfg.sampling_rate)
    if audio is not None:
        if sampling_rate is not None and int(sampling_rate) != cfg.sampling_rate:
            raise ValueError(
                f"Audio is sampled at {sampling_rate} Hz but the speech encoder expects {cfg.sampling_rate} Hz; "
                f"resample first (e.g. `scipy.signal.resample_poly(wav, {cfg.sampling_rate}, {sampling_rate})`)."
            )
        if not torch.is_tensor(audio):
            raise TypeError(f"`{name}` must be a tensor, got {type(audio).__name__}; use the processor.")
        if name == "input_values":
            if audio.dim() == 3 and min(audio.shape[1], audio.shape[2]) <= 8:
                raise ValueError(
                    f"`input_values` has shape {tuple(audio.shape)}: looks like multi-channel (stereo) audio. "
                    "Average the channels to mono (`wav.mean(axis=channel_axis)`) before the processor."
                )
            if audio.dim() != 2:
                raise ValueError(
                    f"`input_values` must have shape (batch, samples) of mono audio, got {tuple(audio.shape)}; "
                    "add a batch dimension with `[None]` for one utterance, or use the processor."
                )
            axis = 1
        else:
            message = check_feature_shape(cfg.speech_config, audio)
            if message:
                raise ValueError(f"{message}; prepare the audio with this model's processor.")
            axis = feature_frames_axis(cfg.speech_config)
            if cfg.speech_config.model_type == "whisper":
                expected = window_frames(cfg.speech_window_seconds)
                if audio.shape[axis] != expected:
                    raise ValueError(
                        f"This Whisper encoder was built for `speech_window_seconds={cfg.speech_window_seconds}`: it "
                        f"takes exactly {expected} mel frames, got {audio.shape[axis]}. Use the processor saved with "
                        "the model (it pads every utterance to the window)."
                    )
        if audio.shape[axis] == 0:
            raise ValueError(f"`{name}` is empty (0 frames); drop empty utterances before batching.")
        if attention_mask is not None and tuple(attention_mask.shape) != (audio.shape[0], audio.shape[axis]):
            raise ValueError(
                f"`attention_mask` {tuple(attention_mask.shape)} does not match `{name}` {tuple(audio.shape)}; pass "
                "the mask the processor returned with the audio."
            )
        lengths = model._audio_lengths(audio, attention_mask)
        flags["nonfinite"] = ~torch.isfinite(audio.reshape(audio.shape[0], -1)).all(-1)
        flags["empty"] = lengths == 0
        flags["short"] = (lengths > 0) & (lengths < min_input_units(model))
        if cfg.source_limit_seconds is not None:
            flags["long"] = lengths > round(cfg.source_limit_seconds * per_second)
    if text_mask is not None:
        flags["no_text"] = text_mask.sum(-1) == 0
    if not flags:
        return
    device = next(iter(flags.values())).device
    rows = [flag.to(device=device, dtype=torch.long) for flag in flags.values()]
    table = torch.stack(rows + ([lengths.to(device)] if lengths is not None else [])).cpu()  # the one sync
    bad = {key: table[i].nonzero().flatten().tolist() for i, key in enumerate(flags)}
    if bad.get("nonfinite"):
        raise ValueError(
            f"Samples {bad['nonfinite']} contain NaN or inf values in `{name}`; fix or drop those recordings."
        )
    if bad.get("empty"):
        raise ValueError(f"Samples {bad['empty']} contain no audio (all padding); drop empty utterances.")
    if bad.get("short"):
        least = min_input_units(model)
        raise ValueError(
            f"Samples {bad['short']} are shorter than {least} input units ({least / per_second:.3f} s), the least "
            "the speech encoder and adapter need for one output frame; drop or pad them."
        )
    if bad.get("long"):
        secs = [round(table[-1, i].item() / per_second, 2) for i in bad["long"]]
        limit = cfg.source_limit_seconds
        if cfg.speech_window_seconds is not None and limit == cfg.speech_window_seconds:
            how = (
                f"the Whisper window `speech_window_seconds={limit}` this model was built with: cut or filter long "
                "utterances, or build the model with a larger window (`from_pretrained_parts(..., "
                "speech_window_seconds=...)`, at most 30 s for pretrained Whisper; the encoder's cost grows with it)"
            )
        else:
            how = (
                f"`max_source_seconds={limit}`: filter or cut long utterances, or raise the limit "
                "(`model.update_dtw_align(max_source_seconds=...)` and `processor.max_source_seconds`)"
            )
        raise ValueError(f"Samples {bad['long']} last {secs} s, above {how}.")
    if bad.get("no_text"):
        raise ValueError(f"Transcripts {bad['no_text']} are empty; drop utterances without a transcript.")


__all__ = [
    "FEATURE_FRAMES_PER_SECOND",
    "MEL_ENCODER_TYPES",
    "WHISPER_WINDOW_SECONDS",
    "FrozenEncoderCache",
    "build_speech_encoder",
    "check_audio_batch",
    "check_feature_shape",
    "encoder_output_lengths",
    "feature_encoder_modules",
    "feature_frames_axis",
    "freeze_modules",
    "input_units_per_second",
    "load_speech_encoder",
    "run_speech_encoder",
    "set_whisper_window",
    "speech_input_name",
    "whisper_window_seconds",
    "window_frames",
]
