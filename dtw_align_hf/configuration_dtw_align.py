"""DTW-Align model configuration.

Sources cited in the field docs:
- *paper*: Issam et al., "DTW-Align", arXiv 2509.18987 (WMT 2025).
- *CMOT*: the released code of Zhou et al., ACL 2023 (ictnlp/CMOT), the template DTW-Align follows.
- *open*: the paper does not pin the value down; the reason for our choice is given.
"""

import difflib
from typing import ClassVar

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .alignment import ALIGNMENT_BACKENDS, ALIGNMENT_METHODS, METHOD_ALIASES, SIMILARITY_NORMALIZATIONS
from .modeling_speech_encoders import set_whisper_window, whisper_window_seconds, window_frames


#: Every accepted `alignment` value: the methods of `align`, their aliases, and "none" (no alignment, no mixup).
ALIGNMENTS = (*ALIGNMENT_METHODS, *METHOD_ALIASES, "none")
SPEECH_POSITIONS = ("sinusoidal", "none")
MIXUPS = ("interpolation", "discrete", "none")
MIXUP_LEVELS = ("token", "frame")
MIX_POSITIONS = ("encoder_input", "encoder_output")
MIXUP_RATIO_SCHEDULES = ("constant", "uniform", "beta", "linear")
ADAPTER_ACTIVATIONS = ("glu", "gelu")
PRESETS = ("dtw_align", "cmot")
CTC_CLASSES = ("vocab", "transcript")

# Fields a preset may set. A field left at `None` takes the preset's value (or, without a preset, the DTW-Align
# default below); a field given explicitly always wins over the preset.
_DTW_ALIGN_DEFAULTS = {
    "alignment": "dtw",
    "mixup": "interpolation",
    "mixup_level": "token",
    "mix_position": "encoder_input",
    "discrete_mixup_prob": 0.2,
    "st_weight": 1.0,
    "mt_weight": 1.0,
    "mix_weight": 1.0,
    "kl_weight": 1.0,
    "label_smoothing": 0.1,
    "speech_positions": "sinusoidal",
}
# CMOT's released training command (ictnlp/CMOT readme.md; criterion label_smoothed_cross_entropy_otmix.py): per-frame discrete replacement of encoder outputs with
# p = 0.2, nearest-neighbour "OT" in a +-10 token window, L = CE_st + CE_mt + 2 * (symKL(st, mix) + symKL(mt, mix)),
# the mixup CE logged but not added.
PRESET_VALUES = {
    "dtw_align": dict(_DTW_ALIGN_DEFAULTS),
    "cmot": {
        **_DTW_ALIGN_DEFAULTS,
        "alignment": "cmot",
        "mixup": "discrete",
        "mixup_level": "frame",
        "mix_position": "encoder_output",
        "discrete_mixup_prob": 0.2,
        "mix_weight": 0.0,
        "kl_weight": 2.0,
        "speech_positions": "none",
    },
}

#: Fields `update_dtw_align` may change on a built or loaded model: training settings that no parameter shape
#: depends on. Every other field (adapter_*, the sub-configs, `speech_window_seconds`, token ids) is architecture.
DTW_ALIGN_SETTINGS = (
    "preset",
    "alignment",
    "alignment_backend",
    "alignment_window",
    "alignment_strict",
    "alignment_normalization",
    "alignment_diagonal_prior",
    "alignment_timing",
    "mixup",
    "mixup_level",
    "mix_position",
    "mixup_ratio",
    "mixup_ratio_schedule",
    "mixup_ratio_min",
    "mixup_ratio_max",
    "mixup_beta_alpha",
    "discrete_mixup_prob",
    "st_weight",
    "mt_weight",
    "mix_weight",
    "kl_weight",
    "kl_st_mix",
    "kl_mt_mix",
    "ctc_weight",
    "ctc_classes",
    "label_smoothing",
    "speech_positions",
    "mask_aligned_speech",
    "max_source_seconds",
)


def _check_choice(name: str, value, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"`{name}={value!r}` is not supported; choose one of {', '.join(map(repr, allowed))}.")


class DTWAlignConfig(PreTrainedConfig):
    r"""
    Configuration of [`DTWAlignForSpeechTranslation`]: a speech encoder, a convolutional adapter, a translation
    encoder-decoder shared by speech and text, and the DTW-Align training settings (alignment, mixup, loss weights).

    Sub-configurations (dicts are turned into configs with `AutoConfig`, keyed by their `model_type`):

        speech_config (`PreTrainedConfig` or `dict`, *optional*, defaults to a `HubertConfig`):
            Any Transformers audio encoder: a waveform encoder taking 16 kHz samples as `input_values` (HuBERT,
            wav2vec 2.0, WavLM, data2vec-audio, mHuBERT-147, ...) or a mel/filterbank encoder taking `input_features`
            (the Whisper encoder, `model_type="whisper"`; the Speech2Text encoder, `"speech_to_text"`). Paper: HuBERT
            base for English sources, mHuBERT-147 otherwise.
        speech_window_seconds (`float`, *optional*): Whisper only. The fixed window its encoder attends over; every
            utterance is padded to it and longer ones are rejected. `None` keeps the window the Whisper config was
            built for (`2 * max_source_positions` mel frames: 30 s for OpenAI's checkpoints); any other value (a
            multiple of 0.02 s) sets `speech_config.max_source_positions = window * 50`, and
            `from_pretrained_parts` rebuilds the sinusoidal position table for it. The encoder's cost grows with the
            window, not with the utterance: see the README's encoder table for measured CPU times.
        text_config (`PreTrainedConfig` or `dict`, *optional*, defaults to an `M2M100Config`):
            The translation encoder-decoder; must accept encoder `inputs_embeds`. M2M100 (pre-LN fairseq Transformer,
            sinusoidal positions, scaled embeddings) is the closest match to the paper's fairseq model.

    Adapter (speech frames -> translation-model width):

        adapter_num_layers (`int`, defaults to 2): strided 1-D convolutions. Paper / CMOT.
        adapter_kernel_size (`int`, defaults to 5): kernel of each convolution. Paper / CMOT.
        adapter_stride (`int`, defaults to 2): stride of each convolution (2 x 2 = 4x shorter: 20 ms HuBERT frames
            -> 80 ms). Paper / CMOT.
        adapter_hidden_size (`int`, defaults to 1024): convolution channels. CMOT (fairseq `Conv1dSubsampler`).
        adapter_activation (`str`, defaults to `"glu"`): `"glu"` reproduces fairseq's `Conv1dSubsampler` (each conv
            doubles the channels, a GLU halves them); `"gelu"` is a plain conv + GELU stack. CMOT.
        adapter_layer_norm (`bool`, defaults to `True`): LayerNorm on the adapter output. CMOT applies its
            `layernorm_embedding` there; kept so speech embeddings enter the encoder at a controlled scale.

    DTW-Align (training only; inference is plain speech translation):

        preset (`str`, *optional*): `"dtw_align"` (the defaults below) or `"cmot"` (CMOT's released recipe:
            `alignment="cmot"`, `mixup="discrete"`, `mixup_level="frame"`, `mix_position="encoder_output"`,
            `discrete_mixup_prob=0.2`, `mix_weight=0.0`, `kl_weight=2.0`, `speech_positions="none"`). Fields passed
            explicitly override it. On a built or loaded model change it with `update_dtw_align(preset=...)`.
        alignment (`str`, defaults to `"dtw"`): how speech frames are assigned transcript tokens, one of `"dtw"`
            (monotonic DTW, the paper), `"ot"`/`"cmot"` (CMOT's windowed nearest neighbour), `"nn"` (unconstrained
            nearest neighbour), `"uniform"` (length-proportional diagonal), `"none"` (no alignment and no mixup: plain
            ST + MT multitask). Paper.
        alignment_backend (`str`, defaults to `"auto"`): `"auto"`, `"torch"`, `"numba"` or `"triton"`; see
            `dtw_align_hf.alignment.align`.
        alignment_window (`int`, defaults to 10): half-width in tokens of CMOT's search window. CMOT.
        alignment_normalization (`str`, defaults to `"none"`): hub-token correction of the similarity before the
            alignment (`"none"`, `"token_center"`, `"token_zscore"`, `"csls"`); see `align`. Open; off by default.
        alignment_diagonal_prior (`float`, defaults to 0.0): weight of the length-proportional diagonal prior
            subtracted from the similarity inside DTW; see `align`. Open; off by default.
        alignment_timing (`bool`, defaults to `False`): time each alignment call (synchronising the device) and
            return it as `align_seconds` (logged as `align/seconds`). Off: a training step makes no host-device
            synchronisation for it.
        alignment_strict (`bool`, defaults to `False`): raise instead of skipping samples with fewer frames than
            tokens. Open; skipping keeps long runs alive, the skipped share is logged as `align/valid_frac`.
        mixup (`str`, defaults to `"interpolation"`): `"interpolation"` (lam * text + (1 - lam) * speech, the
            paper's choice), `"discrete"` (replace a unit by its text embedding with probability
            `discrete_mixup_prob`, the CMOT/STEMM ablation) or `"none"` (align and log, but no mixup pass). Paper.
        mixup_level (`str`, defaults to `"token"`): `"token"` mixes each token embedding with the mean of its DTW
            segment (mixed length = transcript length M); `"frame"` mixes each frame with its aligned token
            (length N). Open: the paper's later description ("standard DTW-Align" averages each segment) reads as
            token level; both are offered.
        mix_position (`str`, defaults to `"encoder_input"`): `"encoder_input"` feeds the mixed embeddings through the
            translation encoder (DTW-Align); `"encoder_output"` mixes the ST and MT encoder outputs and feeds the mix
            straight to the decoder (CMOT's released code).
        mixup_ratio (`float`, defaults to 0.5): the text weight lam of interpolation mixup under the `"constant"`
            schedule. Open in the paper; 0.5 weighs both modalities equally.
        mixup_ratio_schedule (`str`, defaults to `"constant"`): how lam is chosen each step: `"constant"`
            (`mixup_ratio`), `"uniform"` (per sample, uniform in [`mixup_ratio_min`, `mixup_ratio_max`]), `"beta"`
            (per sample, Beta(`mixup_beta_alpha`, `mixup_beta_alpha`) rescaled to that range), `"linear"` (from
            `mixup_ratio_max` at the start of training to `mixup_ratio_min` at the end; the trainer reports progress
            with `model.set_training_progress(step / max_steps)`). Open in the paper.
        mixup_ratio_min (`float`, defaults to 0.0), mixup_ratio_max (`float`, defaults to 1.0): range for the
            sampled and scheduled lam. Open.
        mixup_beta_alpha (`float`, defaults to 1.0): Beta concentration for `"beta"` (1.0 = uniform). Open.
        discrete_mixup_prob (`float`, defaults to 0.2): replacement probability of discrete mixup. CMOT.
        st_weight, mt_weight, mix_weight (`float`, default 1.0 each): weights of the label-smoothed cross-entropies
            of the speech, transcript and mixed passes. Paper (L = L_ST + L_MT + L_mix + KL); weights open, the plain
            sum is the default.
        kl_weight (`float`, defaults to 1.0): weight of the KL terms. Open; CMOT uses 2.0 (see the `cmot` preset).
        kl_st_mix (`bool`, defaults to `True`), kl_mt_mix (`bool`, defaults to `True`): which symmetric KL terms
            enter the loss: ST vs mixed and MT vs mixed output distributions. CMOT (`--kl-st --kl-mt`).
        ctc_weight (`float`, defaults to 0.0): weight of an auxiliary CTC loss on the adapter outputs (the speech
            embeddings DTW aligns) over the transcript tokens, in multitask training steps. Its output layer is the
            cosine the alignment reads: `logits[n, v] = s * cos(f_n, e_v)` against every text embedding (detached)
            plus a learned blank vector, with a learned scale `s` (the `ctc_head` module, always present; it trains
            only while `ctc_weight > 0`: set the weight at construction or with `model.update_dtw_align`). BOS, EOS
            and pad ids are left out of the CTC targets (no acoustic counterpart); logged as `loss/ctc`, the share
            of samples with enough frames for their targets as `ctc/valid_frac`. Not in the paper: off by default.
        ctc_classes (`str`, defaults to `"vocab"`): the classes of that CTC. `"vocab"`: every vocabulary entry plus
            the learned blank (standard CTC, as above). `"transcript"`: each sample's own transcript positions, all
            the tokens DTW aligns, with no blank (a forward-sum over exactly DTW's monotonic paths: every frame one
            token, at least one frame per token); only the scale `s` is learned. Open; measured only on a toy
            (`tests/test_ctc.py`), where neither class set beat a length-proportional split.
        label_smoothing (`float`, defaults to 0.1): fairseq-style label smoothing of every cross-entropy. CMOT.
        speech_positions (`str`, defaults to `"sinusoidal"`): whether the translation encoder adds its position
            embeddings to speech embeddings (and to mixed sequences) as it does to text: `"sinusoidal"` (yes, the
            default: speech and text then enter the shared encoder the same way, and the token-level mixed sequence
            of DTW-Align is ordered like a transcript) or `"none"` (speech gets no positions, as in CMOT's released
            encoder, where only text gets sinusoidal positions; a mixed input sequence then carries the text share of
            the positions, `lam * (text + positions) + (1 - lam) * speech`). Open in the paper; the `cmot` preset
            sets `"none"`.
        mask_aligned_speech (`bool`, defaults to `False`): apply the speech encoder's SpecAugment
            (`speech_config.mask_time_prob` / `mask_feature_prob`, waveform encoders only) in training steps that
            align. `False`: those steps run the speech encoder unmasked, as CMOT does (its HuBERT features are
            extracted with `mask=False`), so the alignment sees every frame; plain ST steps (no transcript, or
            `alignment="none"`) keep SpecAugment. One encoder run serves both the ST loss and the alignment.

    Input limits:

        sampling_rate (`int`, defaults to 16000): the only sampling rate the speech encoder accepts. Paper.
        max_source_seconds (`float`, *optional*, defaults to 30.0): longer audio is rejected before any compute.
            Open; fairseq speech-translation recipes filter at 3000 fbank frames = 30 s. `None` disables the check.
            With Whisper the limit is the smaller of this and `speech_window_seconds` (`source_limit_seconds`).

    Example:

    ```python
    >>> from dtw_align_hf import DTWAlignConfig
    >>> config = DTWAlignConfig(preset="cmot")
    >>> config.mix_position, config.kl_weight
    ('encoder_output', 2.0)
    ```
    """

    model_type = "dtw_align"
    sub_configs_defaults: ClassVar[dict[str, SubConfigSpec]] = {
        "speech_config": SubConfigSpec(config_class=AutoConfig, model_type="hubert"),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="m2m_100"),
    }
    keys_to_ignore_at_inference: ClassVar[list[str]] = [
        "cache",
        "past_key_values",
        "encoder_last_hidden_state",
        "loss_st",
        "loss_mt",
        "loss_mix",
        "loss_kl",
        "loss_ctc",
        "ctc_valid_frac",
        "align_valid_frac",
        "align_frames_per_token",
        "align_seconds",
    ]

    speech_config: PreTrainedConfig | dict | None = None
    text_config: PreTrainedConfig | dict | None = None

    adapter_num_layers: int = 2
    adapter_kernel_size: int = 5
    adapter_stride: int = 2
    adapter_hidden_size: int = 1024
    adapter_activation: str = "glu"
    adapter_layer_norm: bool = True

    preset: str | None = None
    alignment: str | None = None
    alignment_backend: str = "auto"
    alignment_window: int = 10
    alignment_strict: bool = False
    alignment_normalization: str = "none"
    alignment_diagonal_prior: float = 0.0
    alignment_timing: bool = False
    mixup: str | None = None
    mixup_level: str | None = None
    mix_position: str | None = None
    mixup_ratio: float = 0.5
    mixup_ratio_schedule: str = "constant"
    mixup_ratio_min: float = 0.0
    mixup_ratio_max: float = 1.0
    mixup_beta_alpha: float = 1.0
    discrete_mixup_prob: float | None = None
    st_weight: float | None = None
    mt_weight: float | None = None
    mix_weight: float | None = None
    kl_weight: float | None = None
    kl_st_mix: bool = True
    kl_mt_mix: bool = True
    ctc_weight: float = 0.0
    ctc_classes: str = "vocab"
    label_smoothing: float | None = None
    speech_positions: str | None = None
    mask_aligned_speech: bool = False

    speech_window_seconds: float | None = None
    sampling_rate: int = 16000
    max_source_seconds: float | None = 30.0

    is_encoder_decoder: bool = True
    pad_token_id: int | None = None
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    decoder_start_token_id: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.preset is not None:
            _check_choice("preset", self.preset, PRESETS)
        for name, value in PRESET_VALUES[self.preset or "dtw_align"].items():
            if getattr(self, name) is None:
                setattr(self, name, value)

        # Special token ids live in the translation model; mirror them at the top level, where generate and
        # `shift_tokens_right` look for them.
        for name in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id"):
            if getattr(self, name) is None:
                setattr(self, name, getattr(self.text_config, name, None))
        if getattr(self.speech_config, "model_type", None) == "whisper":
            if self.speech_window_seconds is None:
                self.speech_window_seconds = whisper_window_seconds(self.speech_config)
            else:
                set_whisper_window(self.speech_config, float(self.speech_window_seconds))
        elif self.speech_window_seconds is not None:
            raise ValueError(
                f"`speech_window_seconds={self.speech_window_seconds}` is for Whisper encoders (a fixed window); the "
                f"{self.speech_config.model_type!r} encoder takes any length: leave it unset (`None`) and use "
                "`max_source_seconds` for the length limit."
            )
        self.validate_dtw_align()

    def update_dtw_align(self, **overrides) -> None:
        """The one way to change DTW-Align settings of an existing config (a built or loaded model's), presets included.

        `preset` is applied first (it sets every preset field: `preset="cmot"` gives `alignment="cmot"`,
        `kl_weight=2.0`, `mix_weight=0.0`, ...), then the other overrides, which win; the result is validated.
        Only training settings (`DTW_ALIGN_SETTINGS`) may change: an architecture field (`adapter_*`, the
        sub-configs, `speech_window_seconds`, ...) would no longer match the built modules and the saved weights, so
        it raises a `ValueError` that says to build a new model. Values equal to the current ones are accepted.

        Raises:
            `ValueError`: an unknown field (with a did-you-mean), an architecture field, or an invalid value (the
            config is then left unchanged).
        """
        for name, value in overrides.items():
            if name in DTW_ALIGN_SETTINGS:
                continue
            if hasattr(self, name) and not callable(getattr(type(self), name, None)):
                if getattr(self, name) == value:
                    continue
                raise ValueError(
                    f"`{name}` is an architecture field of the built model (it shapes its modules or weights), so it "
                    "cannot change on a built or loaded model; build a new model instead (`DTWAlignConfig(...)` or "
                    f"`DTWAlignForSpeechTranslation.from_pretrained_parts(..., {name}=...)`)."
                )
            close = difflib.get_close_matches(name, DTW_ALIGN_SETTINGS, n=1)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            raise ValueError(f"`{name}` is not a DTW-Align setting.{hint} Settings: {', '.join(DTW_ALIGN_SETTINGS)}.")
        before = {name: getattr(self, name) for name in DTW_ALIGN_SETTINGS}
        preset = overrides.pop("preset", None)
        try:
            if preset is not None:
                _check_choice("preset", preset, PRESETS)
                self.preset = preset
                for name, value in PRESET_VALUES[preset].items():
                    setattr(self, name, value)
            for name, value in overrides.items():
                setattr(self, name, value)
            self.validate_dtw_align()
        except ValueError:
            for name, value in before.items():
                setattr(self, name, value)
            raise

    def validate_dtw_align(self) -> None:
        """Check every DTW-Align choice; raise a `ValueError` that lists the allowed values."""
        _check_choice("alignment", self.alignment, ALIGNMENTS)
        _check_choice("alignment_backend", self.alignment_backend, ALIGNMENT_BACKENDS)
        _check_choice("alignment_normalization", self.alignment_normalization, SIMILARITY_NORMALIZATIONS)
        _check_choice("speech_positions", self.speech_positions, SPEECH_POSITIONS)
        _check_choice("ctc_classes", self.ctc_classes, CTC_CLASSES)
        if float(self.alignment_diagonal_prior) < 0:
            raise ValueError(f"`alignment_diagonal_prior={self.alignment_diagonal_prior}` must be >= 0.")
        if int(self.alignment_window) < 0:
            raise ValueError(f"`alignment_window={self.alignment_window}` must be >= 0.")
        if self.speech_window_seconds is not None:
            window_frames(float(self.speech_window_seconds))
        _check_choice("mixup", self.mixup, MIXUPS)
        _check_choice("mixup_level", self.mixup_level, MIXUP_LEVELS)
        _check_choice("mix_position", self.mix_position, MIX_POSITIONS)
        _check_choice("mixup_ratio_schedule", self.mixup_ratio_schedule, MIXUP_RATIO_SCHEDULES)
        _check_choice("adapter_activation", self.adapter_activation, ADAPTER_ACTIVATIONS)
        for name in ("mixup_ratio", "mixup_ratio_min", "mixup_ratio_max", "discrete_mixup_prob"):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"`{name}={value}` must lie in [0, 1].")
        if self.mixup_ratio_min > self.mixup_ratio_max:
            raise ValueError(
                f"`mixup_ratio_min={self.mixup_ratio_min}` exceeds `mixup_ratio_max={self.mixup_ratio_max}`."
            )
        if not 0.0 <= float(self.label_smoothing) < 1.0:
            raise ValueError(f"`label_smoothing={self.label_smoothing}` must lie in [0, 1).")
        for name in ("st_weight", "mt_weight", "mix_weight", "kl_weight", "ctc_weight"):
            if not float(getattr(self, name)) >= 0:  # NaN fails too
                raise ValueError(f"`{name}={getattr(self, name)}` must be >= 0.")
        if self.mixup_beta_alpha <= 0:
            raise ValueError(f"`mixup_beta_alpha={self.mixup_beta_alpha}` must be > 0.")
        for name in ("adapter_num_layers", "adapter_kernel_size", "adapter_stride", "adapter_hidden_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"`{name}={getattr(self, name)}` must be >= 1.")
        if self.adapter_activation == "glu" and self.adapter_hidden_size % 2:
            raise ValueError(f"`adapter_hidden_size={self.adapter_hidden_size}` must be even with a GLU adapter.")
        if self.sampling_rate <= 0:
            raise ValueError(f"`sampling_rate={self.sampling_rate}` must be > 0.")
        if self.max_source_seconds is not None and self.max_source_seconds <= 0:
            raise ValueError(f"`max_source_seconds={self.max_source_seconds}` must be > 0 or None.")
        if not hasattr(self.text_config, "d_model") and not hasattr(self.text_config, "hidden_size"):
            raise ValueError(f"`text_config` ({type(self.text_config).__name__}) has no `d_model`/`hidden_size`.")

    @property
    def adapter_output_size(self) -> int:
        """Width of the speech embeddings: the translation model's `d_model`."""
        return getattr(self.text_config, "d_model", None) or self.text_config.hidden_size

    @property
    def adapter_downsampling(self) -> int:
        """How many speech-encoder frames make one adapter frame (4 by default: 20 ms -> 80 ms)."""
        return self.adapter_stride**self.adapter_num_layers

    @property
    def source_limit_seconds(self) -> float | None:
        """The one audio-length limit: `max_source_seconds`, capped by Whisper's window (`None`: no limit)."""
        limits = [x for x in (self.max_source_seconds, self.speech_window_seconds) if x is not None]
        return min(limits) if limits else None

    @property
    def uses_mixup(self) -> bool:
        """Whether training runs the alignment + mixup pass at all."""
        return self.alignment != "none" and self.mixup != "none"


__all__ = [
    "ADAPTER_ACTIVATIONS",
    "ALIGNMENTS",
    "ALIGNMENT_BACKENDS",
    "CTC_CLASSES",
    "DTW_ALIGN_SETTINGS",
    "MIXUPS",
    "MIXUP_LEVELS",
    "MIXUP_RATIO_SCHEDULES",
    "MIX_POSITIONS",
    "PRESETS",
    "PRESET_VALUES",
    "SIMILARITY_NORMALIZATIONS",
    "SPEECH_POSITIONS",
    "DTWAlignConfig",
]
