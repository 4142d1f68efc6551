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

import copy
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForSeq2SeqLM, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
from transformers.utils import logging

from .alignment import align
from .configuration_dtw_align import DTWAlignConfig
from .losses import IGNORE_INDEX, label_smoothed_cross_entropy, symmetric_kl, weighted_total
from .mixup import mix, sample_mixup_ratio


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

    `GenerationMixin.generate` calls `get_encoder()(input_values=..., attention_mask=..., return_dict=True)` once and
    feeds the result back to `forward` as `encoder_outputs` at every decoding step.
    """

    main_input_name = "input_values"

    def __init__(self, owner: "DTWAlignForSpeechTranslation"):
        super().__init__()
        object.__setattr__(self, "_owner", owner)  # not a submodule: no duplicate parameters in the state dict

    def forward(self, input_values=None, attention_mask=None, **kwargs) -> DTWAlignEncoderOutput:
        return self._owner.encode_speech(input_values, attention_mask, sampling_rate=kwargs.get("sampling_rate"))


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


class DTWAlignForSpeechTranslation(DTWAlignPreTrainedModel, GenerationMixin):
    """DTW-Align end-to-end speech translation model.

    Submodules: `speech_encoder` (any Transformers audio encoder, HuBERT by default), `adapter`
    ([`DTWAlignConvAdapter`]), `mt` (a translation encoder-decoder such as `M2M100ForConditionalGeneration`, shared
    by the speech, text and mixup passes).

    Build it from pretrained parts with [`~DTWAlignForSpeechTranslation.from_pretrained_parts`], load a saved
    checkpoint with `from_pretrained` / `AutoModelForSpeechSeq2Seq`, translate speech with `generate(input_values,
    attention_mask)` and text with [`~DTWAlignForSpeechTranslation.generate_from_text`].
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
            speech_encoder if speech_encoder is not None else AutoModel.from_config(config.speech_config)
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
        self._training_progress = 0.0
        object.__setattr__(self, "_encoder_view", _EncoderView(self))
        self.post_init()

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
            speech_encoder_name_or_path (`str`): Hub id or directory of an audio encoder, e.g.
                `"facebook/hubert-base-ls960"` or `"utter-project/mHuBERT-147"`. Loaded with `AutoModel` (a CTC or
                pretraining checkpoint gives its base encoder).
            mt_name_or_path (`str`): Hub id or directory of the stage-1 translation model (`run_pretrain_mt.py`
                output), loaded with `AutoModelForSeq2SeqLM`.
            speech_kwargs, mt_kwargs (`dict`, *optional*): extra `from_pretrained` arguments of each part
                (`revision`, `token`, `dtype`, ...).
            **config_overrides: `DTWAlignConfig` fields (`alignment="dtw"`, `preset="cmot"`, ...). Keys prefixed
                `speech_` / `text_` override the speech / translation sub-config (`speech_layerdrop=0.0`,
                `speech_mask_time_prob=0.0`, `text_dropout=0.1`).

        Returns:
            [`DTWAlignForSpeechTranslation`] whose two parts carry the pretrained weights (the adapter is new).
        """
        speech_kwargs, mt_kwargs = dict(speech_kwargs or {}), dict(mt_kwargs or {})
        speech_over = {
            k[len("speech_") :]: config_overrides.pop(k) for k in list(config_overrides) if k.startswith("speech_")
        }
        text_over = {
            k[len("text_") :]: config_overrides.pop(k) for k in list(config_overrides) if k.startswith("text_")
        }
        hub_kwargs = {
            k: v for k, v in speech_kwargs.items() if k in ("revision", "token", "cache_dir", "local_files_only")
        }
        speech_config = AutoConfig.from_pretrained(speech_encoder_name_or_path, **hub_kwargs, **speech_over)
        hub_kwargs = {
            k: v for k, v in mt_kwargs.items() if k in ("revision", "token", "cache_dir", "local_files_only")
        }
        text_config = AutoConfig.from_pretrained(mt_name_or_path, **hub_kwargs, **text_over)
        speech = AutoModel.from_pretrained(speech_encoder_name_or_path, config=speech_config, **speech_kwargs)
        mt = AutoModelForSeq2SeqLM.from_pretrained(mt_name_or_path, config=text_config, **mt_kwargs)
        config = DTWAlignConfig(speech_config=speech.config, text_config=mt.config, **config_overrides)
        model = cls(config, speech_encoder=speech, mt_model=mt)
        if getattr(mt, "generation_config", None) is not None:
            for name in ("forced_bos_token_id", "num_beams", "max_length", "length_penalty"):
                value = getattr(mt.generation_config, name, None)
                if value is not None:
                    setattr(model.generation_config, name, value)
        return model

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

    def freeze_feature_encoder(self) -> None:
        """Stop gradients into the speech encoder's convolutional feature extractor (HuBERT/wav2vec 2.0 CNN)."""
        feature_extractor = getattr(self.speech_encoder, "feature_extractor", None)
        if feature_extractor is None:
            raise AttributeError(f"{type(self.speech_encoder).__name__} has no `feature_extractor` to freeze.")
        if hasattr(feature_extractor, "_freeze_parameters"):
            feature_extractor._freeze_parameters()
        else:
            feature_extractor.requires_grad_(False)

    def freeze_speech_encoder(self) -> None:
        """Stop gradients into the whole speech encoder (the adapter and the translation model still train)."""
        self.speech_encoder.requires_grad_(False)
        feature_extractor = getattr(self.speech_encoder, "feature_extractor", None)
        if feature_extractor is not None and hasattr(feature_extractor, "_requires_grad"):
            feature_extractor._requires_grad = False

    def set_training_progress(self, progress: float) -> None:
        """Share of training done, in [0, 1]; read by the `"linear"` mixup-ratio schedule (the trainer sets it)."""
        self._training_progress = float(progress)

    # ------------------------------------------------------------------ input checks

    def _check_audio(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None, sampling_rate: int | None):
        """Raise on audio the model cannot take, before any compute, naming the fix."""
        cfg = self.config
        if sampling_rate is not None and int(sampling_rate) != cfg.sampling_rate:
            raise ValueError(
                f"Audio is sampled at {sampling_rate} Hz but the speech encoder expects {cfg.sampling_rate} Hz; "
                f"resample first (e.g. `scipy.signal.resample_poly(wav, {cfg.sampling_rate}, {sampling_rate})`)."
            )
        if not torch.is_tensor(input_values):
            raise TypeError(f"`input_values` must be a tensor, got {type(input_values).__name__}; use the processor.")
        if input_values.dim() == 3 and min(input_values.shape[1], input_values.shape[2]) <= 8:
            raise ValueError(
                f"`input_values` has shape {tuple(input_values.shape)}: looks like multi-channel (stereo) audio. "
                "Average the channels to mono (`wav.mean(axis=channel_axis)`) before the processor."
            )
        if input_values.dim() != 2:
            raise ValueError(
                f"`input_values` must have shape (batch, samples) of mono audio, got {tuple(input_values.shape)}; "
                "add a batch dimension with `[None]` for one utterance, or use the processor."
            )
        if input_values.shape[1] == 0:
            raise ValueError("`input_values` is empty (0 samples); drop empty utterances before batching.")
        lengths = self._audio_lengths(input_values, attention_mask)
        if attention_mask is not None and attention_mask.shape != input_values.shape:
            raise ValueError(
                f"`attention_mask` {tuple(attention_mask.shape)} does not match `input_values` "
                f"{tuple(input_values.shape)}; pass the mask the processor returned with the audio."
            )
        empty = (lengths == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"Samples {empty} contain no audio (all padding); drop empty utterances before batching.")
        min_samples = self._min_audio_samples()
        short = (lengths < min_samples).nonzero().flatten().tolist()
        if short:
            raise ValueError(
                f"Samples {short} are shorter than {min_samples} samples ({min_samples / cfg.sampling_rate:.3f} s), "
                "the least the speech encoder and adapter need for one output frame; drop or pad them."
            )
        if cfg.max_source_seconds is not None:
            limit = int(cfg.max_source_seconds * cfg.sampling_rate)
            too_long = (lengths > limit).nonzero().flatten().tolist()
            if too_long:
                seconds = [round(lengths[i].item() / cfg.sampling_rate, 2) for i in too_long]
                raise ValueError(
                    f"Samples {too_long} last {seconds} s, above `max_source_seconds={cfg.max_source_seconds}`; "
                    "filter or cut long utterances, or raise `config.max_source_seconds`."
                )

    @staticmethod
    def _audio_lengths(input_values: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if attention_mask is None:
            return torch.full(
                (input_values.shape[0],), input_values.shape[1], dtype=torch.long, device=input_values.device
            )
        return attention_mask.long().sum(-1)

    def _min_audio_samples(self) -> int:
        """Fewest samples that give one adapter frame (400 samples = 25 ms for HuBERT/wav2vec 2.0)."""
        if not hasattr(self, "_min_samples_cache"):
            low, high = 1, 1 << 20  # frame counts grow with the sample count: binary search the first n with >= 1
            while low < high:
                mid = (low + high) // 2
                if self._speech_frame_lengths(torch.tensor([mid])).item() >= 1:
                    high = mid
                else:
                    low = mid + 1
            self._min_samples_cache = low
        return self._min_samples_cache

    def _speech_frame_lengths(self, sample_lengths: torch.Tensor) -> torch.Tensor:
        """Adapter frames per utterance for `sample_lengths` audio samples."""
        encoder_lengths = self.speech_encoder._get_feat_extract_output_lengths(sample_lengths)
        return self.adapter.output_lengths(encoder_lengths.long())

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
        empty = (text_attention_mask.sum(-1) == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"Transcripts {empty} are empty; drop utterances without a transcript.")
        return text_attention_mask.bool()

    # ------------------------------------------------------------------ passes

    def speech_embeddings(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Audio -> speech encoder -> adapter.

        Args:
            input_values (`torch.Tensor` of shape `(B, T)`): 16 kHz mono samples.
            attention_mask (`torch.Tensor` of shape `(B, T)`, *optional*): 1 on real samples.

        Returns:
            `(speech_embeds, frame_mask)`: `(B, N, D)` adapter outputs (N = T / 320 / 4 for HuBERT: 80 ms frames) and
            the `(B, N)` long mask of real frames.

        The sample mask goes to the speech encoder, as fairseq/CMOT pass their padding mask. Checkpoints with
        `feat_extract_norm="group"` (HuBERT base) normalise their first conv over the padded length, so their
        outputs still shift slightly with padding; `"layer"` checkpoints (large models) are padding-exact.
        """
        sample_lengths = self._audio_lengths(input_values, attention_mask)
        # The processor returns float32; a model loaded with `dtype=torch.bfloat16` needs its own dtype at the input.
        input_values = input_values.to(self.speech_encoder.dtype)
        hidden = self.speech_encoder(input_values, attention_mask=attention_mask).last_hidden_state
        encoder_lengths = self.speech_encoder._get_feat_extract_output_lengths(sample_lengths).long()
        speech_embeds, lengths = self.adapter(hidden, encoder_lengths)
        frame_mask = (torch.arange(speech_embeds.size(1), device=lengths.device)[None, :] < lengths[:, None]).long()
        return speech_embeds, frame_mask

    def encode_speech(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None, sampling_rate: int | None = None
    ) -> DTWAlignEncoderOutput:
        """Audio -> translation-encoder states, with the frame mask (what `generate` calls through `get_encoder`)."""
        self._check_audio(input_values, attention_mask, sampling_rate)
        return self._encode_speech(input_values, attention_mask)

    def _encode_speech(self, input_values: torch.Tensor, attention_mask: torch.Tensor | None) -> DTWAlignEncoderOutput:
        speech_embeds, frame_mask = self.speech_embeddings(input_values, attention_mask)
        encoded = self.mt.get_encoder()(inputs_embeds=speech_embeds, attention_mask=frame_mask)
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

    def _shift_labels(self, labels: torch.Tensor) -> torch.Tensor:
        start = self.config.decoder_start_token_id
        if start is None:
            raise ValueError("`config.decoder_start_token_id` is not set; set it to the decoder's start token (eos).")
        shifted = labels.new_zeros(labels.shape)
        shifted[:, 1:] = labels[:, :-1].clone()
        shifted[:, 0] = start
        return shifted.masked_fill(shifted == IGNORE_INDEX, self.config.pad_token_id)

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
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> DTWAlignSeq2SeqLMOutput:
        r"""
        Args:
            input_values (`torch.Tensor` of shape `(B, T)`): 16 kHz mono audio samples (the processor's output).
            attention_mask (`torch.Tensor` of shape `(B, T)`): 1 on real samples, 0 on padding.
            input_ids (`torch.Tensor` of shape `(B, M)`, *optional*): transcript token ids. In training mode they turn
                on the MT pass, the alignment and the mixup pass; ignored in evaluation mode.
            text_attention_mask (`torch.Tensor` of shape `(B, M)`, *optional*): 1 on real transcript tokens (default:
                `input_ids != pad_token_id`). Transcripts must be right-padded.
            labels (`torch.Tensor` of shape `(B, L)`, *optional*): translation token ids, -100 on padding.
            num_items_in_batch (`int` or `torch.Tensor`, *optional*): target tokens in the whole (accumulated) batch;
                the Trainer passes it. Token losses are sums divided by it (else by this batch's token count).
            sampling_rate (`int`, *optional*): checked against `config.sampling_rate` when given.

        Returns:
            [`DTWAlignSeq2SeqLMOutput`]: `loss` is the weighted total in training (ST + MT + mix + KL) and the ST loss
            in evaluation; `logits` are always the speech-translation logits.
        """
        cfg = self.config
        if cache is None and "past_key_values" in kwargs:
            cache = kwargs.pop("past_key_values")
        multitask = self.training and input_ids is not None

        # ---- checks, before any compute
        if encoder_outputs is None:
            if input_values is None:
                raise ValueError("Pass `input_values` (audio from the processor) or `encoder_outputs`.")
            self._check_audio(input_values, attention_mask, sampling_rate)
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
                "Alignment needs the speech embeddings: pass `input_values` instead of precomputed "
                "`encoder_outputs` in training, or use `encoder_outputs` from `model.get_encoder()`."
            )

        # ---- ST pass
        if encoder_outputs is None:
            encoder_outputs = self._encode_speech(input_values, attention_mask)
        elif not isinstance(encoder_outputs, DTWAlignEncoderOutput):
            states = (
                encoder_outputs[0] if isinstance(encoder_outputs, (tuple, list)) else encoder_outputs.last_hidden_state
            )
            encoder_outputs = DTWAlignEncoderOutput(last_hidden_state=states)
        frame_mask = encoder_outputs.attention_mask
        if frame_mask is None:
            frame_mask = torch.ones(encoder_outputs.last_hidden_state.shape[:2], dtype=torch.long, device=self.device)
        if labels is not None and decoder_input_ids is None:
            decoder_input_ids = self._shift_labels(labels)
        st = self._decode(
            encoder_outputs.last_hidden_state,
            frame_mask,
            decoder_input_ids,
            decoder_attention_mask,
            cache=cache,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
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

        # ---- losses
        eps = cfg.label_smoothing
        label_mask = labels.ne(IGNORE_INDEX)
        denom = num_items_in_batch if num_items_in_batch is not None else label_mask.sum()
        denom = torch.as_tensor(denom, device=st.logits.device, dtype=torch.float32).clamp(min=1)
        out.loss_st = label_smoothed_cross_entropy(st.logits, labels, eps)[0] / denom
        if not multitask:
            out.loss = out.loss_st
            return out

        # ---- MT pass: transcript embeddings through the same encoder and decoder
        text_embeds = self.embed_text(input_ids)
        mt_encoded = self.mt.get_encoder()(inputs_embeds=text_embeds, attention_mask=text_mask.long())
        mt_logits = self._decode(mt_encoded.last_hidden_state, text_mask.long(), decoder_input_ids).logits
        out.loss_mt = label_smoothed_cross_entropy(mt_logits, labels, eps)[0] / denom

        # ---- alignment (no gradient) and mixup pass
        if cfg.alignment != "none":
            speech_embeds = encoder_outputs.speech_embeds
            alignment = align(
                speech_embeds.detach(),
                text_embeds.detach(),
                frame_mask.bool(),
                text_mask,
                method=cfg.alignment,
                backend=cfg.alignment_backend,
                strict=cfg.alignment_strict,
                window=cfg.alignment_window,
            )
            valid = alignment.valid.to(frame_mask.device)
            out.align_valid_frac = valid.float().mean()
            frames, tokens = frame_mask.sum(-1)[valid].sum(), text_mask.sum(-1)[valid].sum()
            out.align_frames_per_token = frames.float() / tokens.clamp(min=1).float()
            out.align_seconds = torch.tensor(float(alignment.seconds))
            if cfg.uses_mixup and bool(valid.any()):
                idx = valid.nonzero().flatten()
                if cfg.mix_position == "encoder_input":
                    speech_units, text_units = speech_embeds[idx], text_embeds[idx]
                else:
                    speech_units, text_units = (
                        encoder_outputs.last_hidden_state[idx],
                        mt_encoded.last_hidden_state[idx],
                    )
                ratio = sample_mixup_ratio(
                    idx.numel(),
                    schedule=cfg.mixup_ratio_schedule,
                    ratio=cfg.mixup_ratio,
                    ratio_min=cfg.mixup_ratio_min,
                    ratio_max=cfg.mixup_ratio_max,
                    beta_alpha=cfg.mixup_beta_alpha,
                    progress=self._training_progress,
                    device=speech_units.device,
                )
                mixed = mix(
                    speech_units,
                    text_units,
                    alignment.frame_to_token.to(idx.device)[idx],
                    frame_mask[idx],
                    text_mask[idx],
                    kind=cfg.mixup,
                    level=cfg.mixup_level,
                    ratio=ratio,
                    prob=cfg.discrete_mixup_prob,
                )
                mix_mask = mixed.attention_mask.long()
                mix_states = mixed.mixed
                if cfg.mix_position == "encoder_input":
                    mix_states = self.mt.get_encoder()(
                        inputs_embeds=mix_states, attention_mask=mix_mask
                    ).last_hidden_state
                mix_logits = self._decode(mix_states, mix_mask, decoder_input_ids[idx]).logits
                out.loss_mix = label_smoothed_cross_entropy(mix_logits, labels[idx], eps)[0] / denom
                kl = mix_logits.new_zeros((), dtype=torch.float32)
                if cfg.kl_st_mix:
                    kl = kl + symmetric_kl(st.logits[idx], mix_logits, label_mask[idx])
                if cfg.kl_mt_mix:
                    kl = kl + symmetric_kl(mt_logits[idx], mix_logits, label_mask[idx])
                out.loss_kl = kl / denom
            elif cfg.uses_mixup:
                logger.warning_once(
                    "No sample of this batch could be aligned (every sample has fewer speech frames than transcript "
                    "tokens); the mixup pass is skipped for it. Check `align/valid_frac` and `align/frames_per_token`."
                )
        out.loss = weighted_total(
            {"st": out.loss_st, "mt": out.loss_mt, "mix": out.loss_mix, "kl": out.loss_kl},
            {"st": cfg.st_weight, "mt": cfg.mt_weight, "mix": cfg.mix_weight, "kl": cfg.kl_weight},
        )
        return out

    # ------------------------------------------------------------------ generation

    @torch.no_grad()
    def generate(self, input_values: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None, **kwargs):
        """Translate speech (beam search, forced target-language token, ... as `GenerationMixin.generate`).

        Args:
            input_values (`torch.Tensor` of shape `(B, T)`): 16 kHz mono audio; `attention_mask` (B, T) marks samples.
            **kwargs: generation arguments (`num_beams`, `max_new_tokens`, `forced_bos_token_id` from
                `processor.generation_kwargs()`, ...). A whole training batch may be passed: its transcript
                (`input_ids`, `text_attention_mask`) and `labels` are ignored, because `GenerationMixin` would read
                `input_ids` as a decoder prompt (this is what `Seq2SeqTrainer(predict_with_generate=True)` sends).

        Without audio, `generate(input_ids=..., attention_mask=...)` translates text through the MT path (same as
        [`~DTWAlignForSpeechTranslation.generate_from_text`]).

        Returns:
            `torch.Tensor` of shape `(B, L)` (or a `GenerateOutput` with `return_dict_in_generate=True`), starting
            with `decoder_start_token_id`.
        """
        if input_values is None:
            input_values = kwargs.pop("inputs", None)
        if input_values is None and kwargs.get("encoder_outputs") is None and kwargs.get("input_ids") is not None:
            text_mask = kwargs.pop("text_attention_mask", None)
            text_mask = attention_mask if text_mask is None else text_mask
            kwargs.pop("labels", None)
            return self.generate_from_text(kwargs.pop("input_ids"), text_mask, **kwargs)
        for key in ("input_ids", "text_attention_mask", "labels"):
            kwargs.pop(key, None)
        sampling_rate = kwargs.pop("sampling_rate", None)
        if sampling_rate is not None and input_values is not None:
            self._check_audio(input_values, attention_mask, sampling_rate)
        return super().generate(input_values, attention_mask=attention_mask, **kwargs)

    @torch.no_grad()
    def generate_from_text(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **generate_kwargs
    ) -> torch.Tensor:
        """Translate transcripts with the MT path (text embeddings -> shared encoder -> decoder).

        Args:
            input_ids (`torch.Tensor` of shape `(B, M)`): right-padded source token ids.
            attention_mask (`torch.Tensor` of shape `(B, M)`, *optional*): default `input_ids != pad_token_id`.
            **generate_kwargs: passed to `generate` (`num_beams`, `max_new_tokens`, ...); defaults come from
                `self.generation_config`, as for speech.

        Returns:
            `torch.Tensor` of shape `(B, L)`: generated target ids.
        """
        attention_mask = self._check_text(input_ids, attention_mask).long()
        generation_config = copy.deepcopy(generate_kwargs.pop("generation_config", None) or self.generation_config)
        unused = generation_config.update(**generate_kwargs)
        return self.mt.generate(
            input_ids=input_ids, attention_mask=attention_mask, generation_config=generation_config, **unused
        )


__all__ = [
    "DTWAlignConvAdapter",
    "DTWAlignEncoderOutput",
    "DTWAlignForSpeechTranslation",
    "DTWAlignPreTrainedModel",
    "DTWAlignSeq2SeqLMOutput",
]
