"""DTW-Align: speech encoder -> conv adapter -> translation encoder-decoder shared by speech and text.

One training batch, in order (`DTWAlignForSpeechTranslation.forward`):
1. ST pass: audio -> speech encoder -> adapter -> speech embeddings f (B, N, D) -> translation encoder -> decoder.
2. MT pass: transcript -> text embeddings e (B, M, D) -> the same encoder -> decoder.
3. `align(f, e)` assigns each speech frame one transcript token (no gradient; `alignment.py`).
4. `mix(...)` builds the mixed sequence (`mixup.py`); the mixup pass runs it through the encoder (or, CMOT-style,
   mixes encoder outputs) and the decoder.
5. Losses (`losses.py`): label-smoothed CE of each pass, symmetric KL between the mixed pass and the ST / MT passes,
   weighted by the config. Inference and evaluation run step 1 only.
"""

import contextlib
import copy
import inspect
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSeq2SeqLM, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
from transformers.utils import logging

from .alignment import AlignmentOutput, align
from .configuration_dtw_align import DTWAlignConfig
from .losses import IGNORE_INDEX, label_smoothed_cross_entropy, symmetric_kl, weighted_total
from .mixup import mix, sample_mixup_ratio
from .modeling_speech_encoders import (
    build_speech_encoder,
    check_audio_batch,
    encoder_output_lengths,
    feature_encoder_modules,
    feature_frames_axis,
    freeze_modules,
    load_speech_encoder,
    run_speech_encoder,
    set_whisper_window,
    speech_input_name,
)


logger = logging.get_logger(__name__)


@dataclass
class DTWAlignEncoderOutput(BaseModelOutput):
    """Translation-encoder output for speech, with the frame mask the decoder's cross-attention needs.

    `generate` repeats every tensor field for beams, so the mask travels with the encoder states.

    Args:
        last_hidden_state (`torch.Tensor` of shape `(B, N, D)`): translation-encoder states, N adapter frames.
        attention_mask (`torch.Tensor` of shape `(B, N)`, long): 1 on real frames.
        speech_embeds (`torch.Tensor` of shape `(B, N, D)`): adapter outputs (the encoder's input embeddings).
    """

    attention_mask: torch.Tensor | None = None
    speech_embeds: torch.Tensor | None = None


@dataclass
class DTWAlignSeq2SeqLMOutput(Seq2SeqLMOutput):
    """[`Seq2SeqLMOutput`] of the speech pass, plus each DTW-Align loss term and alignment statistics.

    Args:
        loss (`torch.Tensor`): the weighted total (training) or the ST loss (evaluation); a per-token average.
        logits (`torch.Tensor` of shape `(B, L, V)`): speech-translation logits.
        loss_st, loss_mt, loss_mix, loss_kl (`torch.Tensor`, *optional*): unweighted terms, each a sum over target
            tokens divided by `num_items_in_batch` (or the batch's token count). `loss_kl` is the sum of the enabled
            symmetric KL terms. `None` when the term was not computed.
        align_valid_frac (`torch.Tensor`, *optional*): share of the batch that could be aligned (N_b >= M_b for dtw).
        align_frames_per_token (`torch.Tensor`, *optional*): adapter frames per transcript token over valid samples.
        align_seconds (`torch.Tensor`, *optional*): wall time of the alignment call.
    """

    loss_st: torch.Tensor | None = None
    loss_mt: torch.Tensor | None = None
    loss_mix: torch.Tensor | None = None
    loss_kl: torch.Tensor | None = None
    align_valid_frac: torch.Tensor | None = None
    align_frames_per_token: torch.Tensor | None = None
    align_seconds: torch.Tensor | None = None


class DTWAlignConvAdapter(nn.Module):
    """Strided 1-D convolutions from speech-encoder frames to the translation model's width.

    fairseq's `Conv1dSubsampler` (CMOT): each layer is `Conv1d(kernel k, stride s, padding k // 2)`; with the GLU
    activation each conv outputs twice the channels and the GLU halves them. Frames past each sample's length are
    zeroed before every conv, so padding never leaks into real frames (a padded batch gives the same outputs as
    batch size 1). Length rule per layer: `floor((L + 2 * (k // 2) - k) / s) + 1`.
    """

    def __init__(self, config: DTWAlignConfig):
        super().__init__()
        speech_width = getattr(config.speech_config, "output_hidden_size", None) or config.speech_config.hidden_size
        self.kernel_size, self.stride = config.adapter_kernel_size, config.adapter_stride
        self.activation = config.adapter_activation
        out_width, hidden = config.adapter_output_size, config.adapter_hidden_size
        glu = self.activation == "glu"
        self.convs = nn.ModuleList()
        in_ch = speech_width
        for i in range(config.adapter_num_layers):
            last = i == config.adapter_num_layers - 1
            out_ch = (2 * out_width if glu else out_width) if last else hidden
            conv = nn.Conv1d(in_ch, out_ch, self.kernel_size, self.stride, padding=self.kernel_size // 2)
            conv._is_dtw_align_adapter = True  # read by DTWAlignPreTrainedModel._init_weights
            self.convs.append(conv)
            in_ch = hidden // 2 if glu else hidden
        self.layer_norm = nn.LayerNorm(out_width) if config.adapter_layer_norm else None

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Adapter frames for `lengths` speech-encoder frames (long tensor of any shape)."""
        for _ in self.convs:
            lengths = self._conv_lengths(lengths)
        return lengths

    def forward(self, hidden_states: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C) speech-encoder frames with (B,) lengths -> (B, N, D) speech embeddings and (B,) lengths."""
        x = hidden_states.transpose(1, 2)
        for i, conv in enumerate(self.convs):
            steps = torch.arange(x.size(-1), device=x.device)
            x = x * (steps[None, :] < lengths[:, None]).unsqueeze(1).to(x.dtype)
            x = conv(x)
            lengths = self._conv_lengths(lengths)
            if self.activation == "glu":
                x = nn.functional.glu(x, dim=1)
            elif i < len(self.convs) - 1:
                x = nn.functional.gelu(x)
        x = x.transpose(1, 2)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return x, lengths

    def _conv_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        pad = self.kernel_size // 2
        return (torch.div(lengths + 2 * pad - self.kernel_size, self.stride, rounding_mode="floor") + 1).clamp(min=0)


class _EncoderView(nn.Module):
    """What `get_encoder()` returns: the speech path up to the translation encoder. Owns no parameters.

    `GenerationMixin.generate` calls `get_encoder()(<main_input_name>=..., attention_mask=..., return_dict=True)` once
    and feeds the result back to `forward` as `encoder_outputs` at every decoding step.
    """

    def __init__(self, owner: "DTWAlignForSpeechTranslation"):
        super().__init__()
        object.__setattr__(self, "_owner", owner)  # not a submodule: no duplicate parameters in the state dict
        self.main_input_name = owner.main_input_name

    def forward(self, inputs=None, attention_mask=None, *, input_values=None, input_features=None, **kwargs):
        """`inputs`: the audio in the model's own kind (positional), else `input_values` / `input_features`."""
        audio = inputs if inputs is not None else self._owner._pick_audio(input_values, input_features)
        return self._owner.encode_speech(audio, attention_mask, sampling_rate=kwargs.get("sampling_rate"))


class DTWAlignPreTrainedModel(PreTrainedModel):
    config: DTWAlignConfig
    config_class = DTWAlignConfig
    base_model_prefix = "dtw_align"
    main_input_name = "input_values"
    input_modalities = ("audio", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True

    def _init_weights(self, module):
        if isinstance(module, nn.Conv1d) and getattr(module, "_is_dtw_align_adapter", False):
            # PyTorch's default conv init (fan-in scaled, as fairseq's Conv1dSubsampler gets): the generic normal(0,
            # 0.02) would make the adapter output of a 768 x 5 fan-in tiny next to the text embeddings.
            bound = 1.0 / (module.in_channels * module.kernel_size[0]) ** 0.5
            init.kaiming_uniform_(module.weight, a=5**0.5)
            init.uniform_(module.bias, -bound, bound)
            return
        super()._init_weights(module)


@contextlib.contextmanager
def _positions(encoder: nn.Module, mode: str, captured: list | None = None):
    """Zero the translation encoder's position embeddings (`mode="none"`) or record them (`captured`)."""
    table = getattr(encoder, "embed_positions", None)
    if table is None:
        if mode == "none":
            raise ValueError(
                f"`speech_positions='none'` needs a translation encoder with an `embed_positions` module; "
                f"{type(encoder).__name__} has none. Use `speech_positions='sinusoidal'`."
            )
        yield
        return

    def hook(module, args, output):
        if captured is not None:
            captured.append(output)
        return torch.zeros_like(output) if mode == "none" else None

    handle = table.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


class DTWAlignForSpeechTranslation(DTWAlignPreTrainedModel, GenerationMixin):
    """DTW-Align end-to-end speech translation model.

    Submodules: `speech_encoder` (any Transformers audio encoder: HuBERT by default, wav2vec 2.0, WavLM,
    data2vec-audio on 16 kHz samples; the Whisper or Speech2Text encoder on mel features, see
    `modeling_speech_encoders.py`), `adapter` ([`DTWAlignConvAdapter`]), `mt` (a translation encoder-decoder such as
    `M2M100ForConditionalGeneration`, shared by the speech, text and mixup passes).

    Build it from pretrained parts with [`~DTWAlignForSpeechTranslation.from_pretrained_parts`], load a saved
    checkpoint with `from_pretrained` / `AutoModelForSpeechSeq2Seq`, translate speech with
    `generate(**processor(audio=...))` and text with [`~DTWAlignForSpeechTranslation.generate_from_text`]. The audio
    batch key is `model.main_input_name`: `"input_values"` (waveform encoders) or `"input_features"` (mel encoders).
    """

    # Trainer: pass `num_items_in_batch`; our losses are sums divided by it, so the Trainer must not divide by the
    # gradient-accumulation steps again (DTWAlignTrainer sets `loss_is_scaled_for_ga = True` to match).
    accepts_loss_kwargs = True

    def __init__(
        self,
        config: DTWAlignConfig,
        speech_encoder: PreTrainedModel | None = None,
        mt_model: PreTrainedModel | None = None,
    ):
        super().__init__(config)
        self.speech_encoder = (
            speech_encoder if speech_encoder is not None else build_speech_encoder(config.speech_config)
        )
        self.adapter = DTWAlignConvAdapter(config)
        self.mt = mt_model if mt_model is not None else AutoModelForSeq2SeqLM.from_config(config.text_config)
        # Keep the sub-configs and the loaded modules the same objects, so edits through either stay in sync.
        self.config.speech_config = self.speech_encoder.config
        self.config.text_config = self.mt.config
        # Parts built directly (not via from_config/from_pretrained) leave their attention implementation unresolved;
        # give them the one resolved for the whole model.
        for sub_config in (self.config.speech_config, self.config.text_config):
            if getattr(sub_config, "_attn_implementation", None) is None:
                sub_config._attn_implementation = self.config._attn_implementation
        self.main_input_name = speech_input_name(self.config.speech_config)
        self._training_progress = 0.0
        object.__setattr__(self, "_encoder_view", _EncoderView(self))
        self.post_init()
        gen = self.generation_config
        if gen is not None and gen.max_length is None and gen.max_new_tokens is None:
            # fairseq's default length bound (max_len_b = 200, as CMOT decodes), within the decoder's positions; set
            # so that a plain `generate()` neither stops at transformers' model-agnostic 20 tokens nor warns.
            limit = getattr(self.config.text_config, "max_position_embeddings", None) or 200
            gen.max_new_tokens = min(200, limit - 1)

    # ------------------------------------------------------------------ composition and housekeeping

    @classmethod
    def from_pretrained_parts(
        cls,
        speech_encoder_name_or_path: str,
        mt_name_or_path: str,
        *,
        speech_kwargs: dict | None = None,
        mt_kwargs: dict | None = None,
        **config_overrides,
    ) -> "DTWAlignForSpeechTranslation":
        """Compose a model from a pretrained speech encoder and a stage-1 translation checkpoint.

        Args:
            speech_encoder_name_or_path (`str`): Hub id or directory of an audio encoder: a waveform encoder
                (`"facebook/hubert-base-ls960"`, `"utter-project/mHuBERT-147"`; a CTC or pretraining checkpoint gives
                its base encoder) or a mel encoder (`"openai/whisper-base"` or any Whisper / Speech2Text checkpoint,
                full model or encoder only: the encoder is taken).
            mt_name_or_path (`str`): Hub id or directory of the stage-1 translation model (`run_pretrain_mt.py`
                output), loaded with `AutoModelForSeq2SeqLM`.
            speech_kwargs, mt_kwargs (`dict`, *optional*): extra `from_pretrained` arguments of each part
                (`revision`, `token`, `dtype`, ...).
            **config_overrides: `DTWAlignConfig` fields (`alignment="dtw"`, `preset="cmot"`,
                `speech_window_seconds=10` for Whisper, ...). Keys prefixed `speech_` / `text_` override the speech /
                translation sub-config (`speech_layerdrop=0.0`, `speech_mask_time_prob=0.0`, `text_dropout=0.1`).

        Returns:
            [`DTWAlignForSpeechTranslation`] whose two parts carry the pretrained weights (the adapter is new).
        """
        speech_kwargs, mt_kwargs = dict(speech_kwargs or {}), dict(mt_kwargs or {})
        window = config_overrides.pop("speech_window_seconds", None)
        overrides = {"speech_": {}, "text_": {}}
        for prefix, found in overrides.items():
            for key in [k for k in config_overrides if k.startswith(prefix)]:
                found[key[len(prefix) :]] = config_overrides.pop(key)
        hub = ("revision", "token", "cache_dir", "local_files_only")
        speech_config = AutoConfig.from_pretrained(
            speech_encoder_name_or_path, **{k: v for k, v in speech_kwargs.items() if k in hub}, **overrides["speech_"]
        )
        text_config = AutoConfig.from_pretrained(
            mt_name_or_path, **{k: v for k, v in mt_kwargs.items() if k in hub}, **overrides["text_"]
        )
        changed = False
        if speech_config.model_type == "whisper" and window is not None:
            changed = set_whisper_window(speech_config, float(window))
        speech = load_speech_encoder(
            speech_encoder_name_or_path, speech_config, positions_changed=changed, **speech_kwargs
        )
        mt = AutoModelForSeq2SeqLM.from_pretrained(mt_name_or_path, config=text_config, **mt_kwargs)
        config = DTWAlignConfig(
            speech_config=speech.config, text_config=mt.config, speech_window_seconds=window, **config_overrides
        )
        model = cls(config, speech_encoder=speech, mt_model=mt)
        if getattr(mt, "generation_config", None) is not None:
            for name in ("forced_bos_token_id", "num_beams", "max_length", "max_new_tokens", "length_penalty"):
                value = getattr(mt.generation_config, name, None)
                if value is not None:
                    setattr(model.generation_config, name, value)
                    if name == "max_length":  # one length bound, or generate warns about both
                        model.generation_config.max_new_tokens = None
        return model

    def update_dtw_align(self, **overrides) -> "DTWAlignForSpeechTranslation":
        """Change DTW-Align settings of this built or loaded model: [`DTWAlignConfig.update_dtw_align`].

        Presets expand (`update_dtw_align(preset="cmot")`); architecture fields raise. Every setting is read from the
        config at each forward, so no module needs rebuilding. Returns the model.
        """
        self.config.update_dtw_align(**overrides)
        return self

    def get_encoder(self, modality: str | None = None):
        if modality == "audio" or modality is None:
            return self._encoder_view
        return self.mt.get_encoder()

    def get_decoder(self):
        return self.mt.get_decoder()

    def get_input_embeddings(self) -> nn.Module:
        return self.mt.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.mt.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.mt.get_output_embeddings()

    def resize_token_embeddings(
        self, new_num_tokens=None, pad_to_multiple_of=None, mean_resizing=True
    ) -> nn.Embedding:
        """Resize the translation model's shared vocabulary (input embeddings, LM head, `text_config.vocab_size`).

        The vocabulary lives in `mt` alone, so this is `self.mt.resize_token_embeddings`; the speech path has none.
        """
        embeddings = self.mt.resize_token_embeddings(new_num_tokens, pad_to_multiple_of, mean_resizing)
        self.config.text_config.vocab_size = embeddings.num_embeddings
        return embeddings

    def freeze_feature_encoder(self) -> None:
        """Stop gradients into the speech encoder's convolutional front end (HuBERT/wav2vec 2.0 CNN, Whisper's two
        convolutions, Speech2Text's conv subsampler)."""
        freeze_modules(feature_encoder_modules(self.speech_encoder))

    def freeze_speech_encoder(self) -> None:
        """Stop gradients into the whole speech encoder (the adapter and the translation model still train)."""
        self.speech_encoder.requires_grad_(False)
        for module in self.speech_encoder.modules():
            if hasattr(module, "_requires_grad"):
                module._requires_grad = False

    def set_training_progress(self, progress: float) -> None:
        """Share of training done, in [0, 1]; read by the `"linear"` mixup-ratio schedule (the trainer sets it)."""
        self._training_progress = float(progress)

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Teacher-forcing decoder inputs: `labels` shifted right behind `decoder_start_token_id`, -100 -> pad.

        The name `SpeechEncoderDecoderModel` and `DataCollatorForSeq2Seq` use; stage 1 (text-only MT) calls it too.
        """
        start = self.config.decoder_start_token_id
        if start is None:
            raise ValueError("`config.decoder_start_token_id` is not set; set it to the decoder's start token (eos).")
        shifted = labels.new_zeros(labels.shape)
        shifted[:, 1:] = labels[:, :-1].clone()
        shifted[:, 0] = start
        return shifted.masked_fill(shifted == IGNORE_INDEX, self.config.pad_token_id)

    # ------------------------------------------------------------------ input checks

    def _pick_audio(self, input_values: torch.Tensor | None, input_features: torch.Tensor | None):
        """The audio tensor of whichever key was passed; raises if it is the wrong kind for this speech encoder."""
        if input_values is not None and input_features is not None:
            raise ValueError("Pass either `input_values` or `input_features`, not both.")
        given = (
            "input_values" if input_values is not None else "input_features" if input_features is not None else None
        )
        if given is not None and given != self.main_input_name:
            raise ValueError(
                f"This model's speech encoder ({self.config.speech_config.model_type}) takes `{self.main_input_name}`, "
                f"got `{given}`; prepare the audio with this model's processor (`DTWAlignProcessor.from_pretrained`)."
            )
        return input_values if input_values is not None else input_features

    def _check_audio(self, audio: torch.Tensor, attention_mask: torch.Tensor | None, sampling_rate: int | None):
        """Raise on audio the model cannot take, before any compute, naming the sample and the fix."""
        check_audio_batch(self, audio, attention_mask, sampling_rate)

    def _audio_lengths(self, audio: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """Real input units per utterance: samples (waveform) or 10 ms feature frames (mel encoders)."""
        if attention_mask is not None:
            return attention_mask.long().sum(-1)
        axis = 1 if self.main_input_name == "input_values" else feature_frames_axis(self.config.speech_config)
        return torch.full((audio.shape[0],), audio.shape[axis], dtype=torch.long, device=audio.device)

    def _speech_frame_lengths(self, input_lengths: torch.Tensor) -> torch.Tensor:
        """Adapter frames per utterance for `input_lengths` input units."""
        return self.adapter.output_lengths(encoder_output_lengths(self.speech_encoder, input_lengths))

    def _check_text(self, input_ids: torch.Tensor, text_attention_mask: torch.Tensor | None) -> torch.Tensor:
        if input_ids.dim() != 2:
            raise ValueError(
                f"`input_ids` (transcript) must have shape (batch, tokens), got {tuple(input_ids.shape)}."
            )
        if text_attention_mask is None:
            text_attention_mask = input_ids.ne(self.config.pad_token_id)
        if text_attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"`text_attention_mask` {tuple(text_attention_mask.shape)} does not match `input_ids` "
                f"{tuple(input_ids.shape)}."
            )
        return text_attention_mask.bool()

    # ------------------------------------------------------------------ passes

    def speech_embeddings(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        *,
        input_features: torch.Tensor | None = None,
        spec_augment: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Audio -> speech encoder -> adapter.

        Args:
            input_values (`torch.Tensor` of shape `(B, T)`): 16 kHz samples (waveform encoders); or, for mel
                encoders, `input_features` (`(B, n_mels, W)` Whisper, `(B, T, n_mels)` Speech2Text), passed under
                either name.
            attention_mask (`torch.Tensor`, *optional*): 1 on real samples / feature frames (the processor's).
            spec_augment (`bool`): `False` runs a waveform encoder without SpecAugment even in training mode.

        Returns:
            `(speech_embeds, frame_mask)`: `(B, N, D)` adapter outputs (80 ms frames for HuBERT and Whisper with the
            default stride-4 adapter, 160 ms for Speech2Text) and the `(B, N)` long mask of real frames, computed
            from the real lengths (Whisper's padded window frames are masked out here).
        """
        audio = input_values if input_values is not None else input_features
        lengths = self._audio_lengths(audio, attention_mask)
        # The processor returns float32; a model loaded with `dtype=torch.bfloat16` needs its own dtype at the input.
        audio = audio.to(self.speech_encoder.dtype)
        hidden = run_speech_encoder(self.speech_encoder, audio, attention_mask, spec_augment=spec_augment)
        speech_embeds, lengths = self.adapter(hidden, encoder_output_lengths(self.speech_encoder, lengths))
        frame_mask = (torch.arange(speech_embeds.size(1), device=lengths.device)[None, :] < lengths[:, None]).long()
        return speech_embeds, frame_mask

    def encode_speech(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        sampling_rate: int | None = None,
        *,
        input_features: torch.Tensor | None = None,
    ) -> DTWAlignEncoderOutput:
        """Audio -> translation-encoder states, with the frame mask (what `generate` calls through `get_encoder`)."""
        audio = input_values if input_values is not None else input_features
        self._check_audio(audio, attention_mask, sampling_rate)
        return self._encode_speech(audio, attention_mask)

    def _encode_speech(self, audio, attention_mask, spec_augment: bool = True) -> DTWAlignEncoderOutput:
        speech_embeds, frame_mask = self.speech_embeddings(audio, attention_mask, spec_augment=spec_augment)
        encoder = self.mt.get_encoder()
        with _positions(encoder, self.config.speech_positions):
            encoded = encoder(inputs_embeds=speech_embeds, attention_mask=frame_mask)
        return DTWAlignEncoderOutput(
            last_hidden_state=encoded.last_hidden_state, attention_mask=frame_mask, speech_embeds=speech_embeds
        )

    def embed_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Transcript ids -> the translation model's (scaled) input embeddings, `(B, M, D)`."""
        return self.mt.get_input_embeddings()(input_ids)

    def _decode(self, encoder_states, encoder_mask, decoder_input_ids, decoder_attention_mask=None, **kwargs):
        return self.mt(
            encoder_outputs=BaseModelOutput(last_hidden_state=encoder_states),
            attention_mask=encoder_mask,
            decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask,
            **kwargs,
        )

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        text_attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
        encoder_outputs: DTWAlignEncoderOutput | tuple | None = None,
        cache=None,
        use_cache: bool | None = None,
        num_items_in_batch: torch.Tensor | int | None = None,
        sampling_rate: int | None = None,
        input_features: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> DTWAlignSeq2SeqLMOutput:
        r"""
        Args:
            input_values (`torch.Tensor` of shape `(B, T)`): 16 kHz mono audio samples (waveform encoders).
            input_features (`torch.Tensor`): log-mel features (Whisper `(B, n_mels, W)`, Speech2Text `(B, T, n_mels)`)
                instead of `input_values` for mel encoders; the processor emits the right key (`model.main_input_name`).
            attention_mask (`torch.Tensor` of shape `(B, T)`): 1 on real samples / feature frames, 0 on padding.
            input_ids (`torch.Tensor` of shape `(B, M)`, *optional*): transcript token ids. In training mode they turn
                on the MT pass, the alignment and the mixup pass; ignored in evaluation mode.
            text_attention_mask (`torch.Tensor` of shape `(B, M)`, *optional*): 1 on real transcript tokens (default:
                `input_ids != pad_token_id`). Transcripts must be right-padded.
            labels (`torch.Tensor` of shape `(B, L)`, *optional*): translation token ids, -100 on padding.
            use_cache (`bool`, *optional*): decoder cache; defaults to `False` whenever `labels` are given (training
                and evaluation build no cache), and reaches every decoder pass.
            num_items_in_batch (`int` or `torch.Tensor`, *optional*): target tokens in the whole (accumulated) batch;
                the Trainer passes it. Token losses are sums divided by it (else by this batch's token count).
            sampling_rate (`int`, *optional*): checked against `config.sampling_rate` when given.

        Returns:
            [`DTWAlignSeq2SeqLMOutput`]: `loss` is the weighted total in training (ST + MT + mix + KL) and the ST loss
            in evaluation; `logits` are always the speech-translation logits. Logged statistics are tensors.

        The input checks make one device-to-host copy per call (all per-sample checks at once); nothing else in the
        training step synchronises unless `config.alignment_timing` is on.
        """
        cfg = self.config
        if cache is None and "past_key_values" in kwargs:
            cache = kwargs.pop("past_key_values")
        if use_cache is None and labels is not None:
            use_cache = False
        audio = self._pick_audio(input_values, input_features)
        multitask = self.training and input_ids is not None
        text_mask = self._check_inputs(
            audio,
            attention_mask,
            sampling_rate,
            input_ids,
            text_attention_mask,
            labels,
            decoder_input_ids,
            encoder_outputs,
            multitask,
        )
        if labels is not None and decoder_input_ids is None:
            decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        # CMOT runs HuBERT unmasked while aligning (features extracted with mask=False): see `mask_aligned_speech`.
        spec_augment = not (multitask and cfg.alignment != "none") or cfg.mask_aligned_speech
        encoder_outputs, st = self._st_pass(
            audio, attention_mask, encoder_outputs, decoder_input_ids, decoder_attention_mask, spec_augment,
            cache=cache, use_cache=use_cache, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )  # fmt: skip
        out = DTWAlignSeq2SeqLMOutput(
            logits=st.logits,
            cache=st.cache,
            decoder_hidden_states=st.decoder_hidden_states,
            decoder_attentions=st.decoder_attentions,
            cross_attentions=st.cross_attentions,
            encoder_last_hidden_state=encoder_outputs.last_hidden_state,
        )
        if labels is None:
            return out
        logits, valid = {"st": st.logits}, None
        if multitask:
            text_embeds, text_positions, mt_states, logits["mt"] = self._mt_pass(
                input_ids, text_mask, decoder_input_ids, use_cache
            )
            if cfg.alignment != "none":
                alignment = self._alignment_step(out, encoder_outputs, text_embeds, text_mask)
                valid = alignment.valid.to(labels.device)
                if cfg.uses_mixup:
                    speech = (encoder_outputs.speech_embeds, encoder_outputs.last_hidden_state)
                    text = (text_embeds, mt_states, text_positions)
                    logits["mix"] = self._mixup_pass(
                        speech, text, alignment, encoder_outputs.attention_mask, text_mask, decoder_input_ids,
                        use_cache,
                    )  # fmt: skip
        return self._losses(out, logits, labels, num_items_in_batch, valid)

    def _check_inputs(self, audio, attention_mask, sampling_rate, input_ids, text_attention_mask, labels,
                      decoder_input_ids, encoder_outputs, multitask):  # fmt: skip
        """Every check of `forward`, before any compute; returns the transcript mask (or `None`)."""
        cfg = self.config
        if encoder_outputs is None and audio is None:
            raise ValueError(f"Pass `{self.main_input_name}` (audio from the processor) or `encoder_outputs`.")
        if multitask and labels is None:
            raise ValueError(
                "`input_ids` (transcript) was given in training mode without `labels` (translation): the MT and mixup "
                "passes need the translation; pass `labels` from the collator."
            )
        if self.training and labels is not None and input_ids is None and (cfg.uses_mixup or cfg.mt_weight > 0):
            raise ValueError(
                f"Training with alignment={cfg.alignment!r}, mixup={cfg.mixup!r}, mt_weight={cfg.mt_weight} needs the "
                "transcript: pass `input_ids` (and `text_attention_mask`) from the collator, or set `alignment='none'` "
                "and `mt_weight=0` for plain speech-translation training."
            )
        if labels is None and decoder_input_ids is None and encoder_outputs is None:
            raise ValueError(
                "Pass `labels` (training/evaluation) or `decoder_input_ids`; to translate use `generate`."
            )
        text_mask = self._check_text(input_ids, text_attention_mask) if multitask else None
        precomputed = encoder_outputs is not None and getattr(encoder_outputs, "speech_embeds", None) is None
        if multitask and cfg.alignment != "none" and precomputed:
            raise ValueError(
                f"Alignment needs the speech embeddings: pass `{self.main_input_name}` instead of precomputed "
                "`encoder_outputs` in training, or use `encoder_outputs` from `model.get_encoder()`."
            )
        if encoder_outputs is None:
            check_audio_batch(self, audio, attention_mask, sampling_rate, text_mask=text_mask)
        elif text_mask is not None:
            check_audio_batch(self, None, None, None, text_mask=text_mask)
        return text_mask

    def _st_pass(self, audio, attention_mask, encoder_outputs, decoder_input_ids, decoder_attention_mask,
                 spec_augment, **decode_kwargs):  # fmt: skip
        """Step 1: audio -> speech encoder -> adapter -> translation encoder -> decoder (or given encoder outputs)."""
        if encoder_outputs is None:
            encoder_outputs = self._encode_speech(audio, attention_mask, spec_augment=spec_augment)
        elif not isinstance(encoder_outputs, DTWAlignEncoderOutput):
            states = (
                encoder_outputs[0] if isinstance(encoder_outputs, (tuple, list)) else encoder_outputs.last_hidden_state
            )
            encoder_outputs = DTWAlignEncoderOutput(last_hidden_state=states)
        if encoder_outputs.attention_mask is None:
            states = encoder_outputs.last_hidden_state
            encoder_outputs.attention_mask = torch.ones(states.shape[:2], dtype=torch.long, device=states.device)
        st = self._decode(
            encoder_outputs.last_hidden_state,
            encoder_outputs.attention_mask,
            decoder_input_ids,
            decoder_attention_mask,
            **decode_kwargs,
        )
        return encoder_outputs, st

    def _mt_pass(self, input_ids, text_mask, decoder_input_ids, use_cache):
        """Step 2: transcript embeddings through the same encoder and decoder.

        Returns `(text_embeds, text_positions, encoder_states, logits)`; `text_positions` are the position embeddings
        the encoder added (recorded for the mixed input when `speech_positions="none"`, else `None`).
        """
        text_embeds = self.embed_text(input_ids)
        encoder = self.mt.get_encoder()
        captured = [] if self.config.speech_positions == "none" else None
        with _positions(encoder, "sinusoidal", captured):
            states = encoder(inputs_embeds=text_embeds, attention_mask=text_mask.long()).last_hidden_state
        logits = self._decode(states, text_mask.long(), decoder_input_ids, use_cache=use_cache).logits
        return text_embeds, (captured[0] if captured else None), states, logits

    def _alignment_step(self, out, encoder_outputs, text_embeds, text_mask) -> AlignmentOutput:
        """Step 3: `align` the speech embeddings with the transcript embeddings (no gradient); fills the statistics."""
        cfg = self.config
        frame_mask = encoder_outputs.attention_mask
        alignment = align(
            encoder_outputs.speech_embeds.detach(),
            text_embeds.detach(),
            frame_mask.bool(),
            text_mask,
            method=cfg.alignment,
            backend=cfg.alignment_backend,
            strict=cfg.alignment_strict,
            window=cfg.alignment_window,
            **_new_align_kwargs(cfg),
        )
        valid = alignment.valid.to(frame_mask.device)
        out.align_valid_frac = valid.float().mean()
        frames = (frame_mask.sum(-1) * valid).sum()
        tokens = (text_mask.sum(-1) * valid).sum()
        out.align_frames_per_token = frames.float() / tokens.clamp(min=1).float()
        if cfg.alignment_timing and alignment.seconds is not None:
            out.align_seconds = torch.as_tensor(alignment.seconds, dtype=torch.float32)
        return alignment

    def _mixup_pass(self, speech, text, alignment, frame_mask, text_mask, decoder_input_ids, use_cache):
        """Step 4: mix speech and text along the alignment, encode (DTW-Align) or not (CMOT), decode.

        Runs on the whole batch, so no host synchronisation picks the aligned samples: a sample that could not be
        aligned has every frame at -1, mixes to its pure text (token level) or pure speech (frame level), and
        `_losses` masks its targets out of the mixup and KL terms.
        """
        cfg = self.config
        speech_embeds, speech_states = speech
        text_embeds, text_states, text_positions = text
        at_input = cfg.mix_position == "encoder_input"
        if at_input and text_positions is not None:  # speech_positions="none": mix what each pass fed the encoder
            text_embeds = text_embeds + text_positions.to(text_embeds.dtype)
        ratio = sample_mixup_ratio(
            speech_embeds.size(0),
            schedule=cfg.mixup_ratio_schedule,
            ratio=cfg.mixup_ratio,
            ratio_min=cfg.mixup_ratio_min,
            ratio_max=cfg.mixup_ratio_max,
            beta_alpha=cfg.mixup_beta_alpha,
            progress=self._training_progress,
            device=speech_embeds.device,
        )
        mixed = mix(
            speech_embeds if at_input else speech_states,
            text_embeds if at_input else text_states,
            alignment.frame_to_token.to(frame_mask.device),
            frame_mask,
            text_mask,
            kind=cfg.mixup,
            level=cfg.mixup_level,
            ratio=ratio,
            prob=cfg.discrete_mixup_prob,
        )
        mix_mask, mix_states = mixed.attention_mask.long(), mixed.mixed
        if at_input:
            encoder = self.mt.get_encoder()
            with _positions(encoder, cfg.speech_positions):
                mix_states = encoder(inputs_embeds=mix_states, attention_mask=mix_mask).last_hidden_state
        return self._decode(mix_states, mix_mask, decoder_input_ids, use_cache=use_cache).logits

    def _losses(self, out, logits, labels, num_items_in_batch, valid) -> DTWAlignSeq2SeqLMOutput:
        """Step 5: label-smoothed CE of each pass, symmetric KL terms, the weighted total (`losses.py`)."""
        cfg = self.config
        eps, label_mask = cfg.label_smoothing, labels.ne(IGNORE_INDEX)
        denom = num_items_in_batch if num_items_in_batch is not None else label_mask.sum()
        denom = torch.as_tensor(denom, device=labels.device, dtype=torch.float32).clamp(min=1)
        out.loss_st = label_smoothed_cross_entropy(logits["st"], labels, eps)[0] / denom
        if "mt" in logits:
            out.loss_mt = label_smoothed_cross_entropy(logits["mt"], labels, eps)[0] / denom
        if "mix" in logits:
            mix_mask = label_mask & valid[:, None]
            mix_labels = labels.masked_fill(~mix_mask, IGNORE_INDEX)
            out.loss_mix = label_smoothed_cross_entropy(logits["mix"], mix_labels, eps)[0] / denom
            kl = logits["mix"].new_zeros((), dtype=torch.float32)
            if cfg.kl_st_mix:
                kl = kl + symmetric_kl(logits["st"], logits["mix"], mix_mask)
            if cfg.kl_mt_mix:
                kl = kl + symmetric_kl(logits["mt"], logits["mix"], mix_mask)
            out.loss_kl = kl / denom
        if "mt" not in logits:  # evaluation, or plain ST training without a transcript
            out.loss = out.loss_st
            return out
        out.loss = weighted_total(
            {"st": out.loss_st, "mt": out.loss_mt, "mix": out.loss_mix, "kl": out.loss_kl},
            {"st": cfg.st_weight, "mt": cfg.mt_weight, "mix": cfg.mix_weight, "kl": cfg.kl_weight},
        )
        return out

    # ------------------------------------------------------------------ generation

    @torch.no_grad()
    def generate(self, inputs: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None, **kwargs):
        """Translate speech (beam search, forced target-language token, ... as `GenerationMixin.generate`).

        Args:
            inputs (`torch.Tensor`): the audio, also accepted as `input_values` (waveform encoders, `(B, T)` 16 kHz)
                or `input_features` (mel encoders); `attention_mask` marks real samples / frames.
            **kwargs: generation arguments (`num_beams`, `max_new_tokens`, `forced_bos_token_id` from
                `processor.generation_kwargs()`, ...). A whole training batch may be passed: its transcript
                (`input_ids`, `text_attention_mask`) and `labels` are ignored, because `GenerationMixin` would read
                `input_ids` as a decoder prompt (this is what `Seq2SeqTrainer(predict_with_generate=True)` sends).

        Without audio, `generate(input_ids=..., attention_mask=...)` translates text through the MT path (same as
        [`~DTWAlignForSpeechTranslation.generate_from_text`]). The audio is checked (finite, lengths, shapes) first.

        Returns:
            `torch.Tensor` of shape `(B, L)` (or a `GenerateOutput` with `return_dict_in_generate=True`), starting
            with `decoder_start_token_id`.
        """
        if inputs is None:
            inputs = self._pick_audio(kwargs.pop("input_values", None), kwargs.pop("input_features", None))
        if inputs is None and kwargs.get("encoder_outputs") is None and kwargs.get("input_ids") is not None:
            kwargs.pop("labels", None)
            return self.generate_from_text(kwargs.pop("input_ids"), attention_mask, **kwargs)
        for key in ("input_ids", "text_attention_mask", "labels"):
            kwargs.pop(key, None)
        sampling_rate = kwargs.pop("sampling_rate", None)
        if inputs is not None:
            self._check_audio(inputs, attention_mask, sampling_rate)
        return super().generate(inputs, attention_mask=attention_mask, **kwargs)

    @torch.no_grad()
    def generate_from_text(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        text_attention_mask: torch.Tensor | None = None,
        **generate_kwargs,
    ) -> torch.Tensor:
        """Translate transcripts with the MT path (text embeddings -> shared encoder -> decoder).

        Args:
            input_ids (`torch.Tensor` of shape `(B, M)`): right-padded source token ids.
            attention_mask, text_attention_mask (`torch.Tensor` of shape `(B, M)`, *optional*): the source mask under
                either name (`processor(text=...)` returns `text_attention_mask`, so
                `model.generate_from_text(**processor(text=[...]))` works); default `input_ids != pad_token_id`.
            **generate_kwargs: passed to `generate` (`num_beams`, `max_new_tokens`, ...); defaults come from
                `self.generation_config`, as for speech.

        Returns:
            `torch.Tensor` of shape `(B, L)`: generated target ids.
        """
        if attention_mask is not None and text_attention_mask is not None:
            raise ValueError("Pass the source mask as `attention_mask` or `text_attention_mask`, not both.")
        attention_mask = self._check_text(
            input_ids, attention_mask if attention_mask is not None else text_attention_mask
        )
        check_audio_batch(self, None, None, None, text_mask=attention_mask)
        generation_config = copy.deepcopy(generate_kwargs.pop("generation_config", None) or self.generation_config)
        unused = generation_config.update(**generate_kwargs)
        return self.mt.generate(
            input_ids=input_ids, attention_mask=attention_mask.long(), generation_config=generation_config, **unused
        )


def _new_align_kwargs(cfg: DTWAlignConfig) -> dict:
    """The alignment options of the redesigned `align()` (normalization, diagonal prior, timing), passed only when
    they differ from their defaults, so that this model also runs with an `align` that predates them."""
    wanted, accepted = {}, inspect.signature(align).parameters
    if cfg.alignment_timing and "timed" in accepted:  # an older `align` times every call anyway
        wanted["timed"] = True
    if cfg.alignment_normalization != "none":
        wanted["normalization"] = cfg.alignment_normalization
    if cfg.alignment_diagonal_prior:
        wanted["diagonal_prior"] = float(cfg.alignment_diagonal_prior)
    missing = [name for name in wanted if name not in accepted]
    if missing:
        raise ValueError(
            f"This version of `dtw_align_hf.alignment.align` has no {missing} option; leave "
            f"{[f'alignment_{n}' for n in missing]} at their defaults or update the package."
        )
    return wanted


__all__ = [
    "DTWAlignConvAdapter",
    "DTWAlignEncoderOutput",
    "DTWAlignForSpeechTranslation",
    "DTWAlignPreTrainedModel",
    "DTWAlignSeq2SeqLMOutput",
]
