"""DTW-Align: speech encoder -> conv adapter -> translation encoder-decoder shared by speech and text.

One training batch, in order (`DTWAlignForSpeechTranslation.forward`, one method per step, after the input checks):
1. `_st_pass`: audio -> speech encoder -> adapter -> speech embeddings f (B, N, D) -> translation encoder -> decoder.
2. `_mt_pass`: transcript -> text embeddings e (B, M, D) -> the same encoder -> decoder.
3. `_alignment_step`: `align(f, e)` assigns each speech frame one transcript token (no gradient; `alignment.py`).
4. `_mixup_pass`: `mix(...)` builds the mixed sequence (`mixup.py`) and runs it through the encoder (or, CMOT-style,
   mixes encoder outputs) and the decoder.
5. `_losses` (`losses.py`): label-smoothed CE of each pass, symmetric KL between the mixed pass and the ST / MT
   passes, the optional auxiliary CTC on the speech embeddings (`ctc_weight`), weighted by the config. Inference
   and evaluation run step 1 only.

Speech-encoder families (waveform `input_values`; Whisper / Speech2Text `input_features`) are handled in
`modeling_speech_encoders.py`; output types, the adapter and the input checks live in `modeling_dtw_align_blocks.py`.
"""

import copy
import math
import os

import torch
from torch import nn
from transformers import AutoModelForSeq2SeqLM, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput
from transformers.utils import logging

from .alignment import AlignmentOutput, align
from .configuration_dtw_align import DTWAlignConfig
from .losses import IGNORE_INDEX, label_smoothed_cross_entropy, shift_labels_right, symmetric_kl, weighted_total
from .mixup import mix, sample_mixup_ratio
from .modeling_dtw_align_blocks import (
    DTWAlignConvAdapter,
    DTWAlignCTCHead,
    DTWAlignEncoderOutput,
    DTWAlignEncoderView,
    DTWAlignSeq2SeqLMOutput,
    check_forward_inputs,
    check_text,
    ctc_step,
    load_parts,
    pick_audio,
    translation_positions,
)
from .modeling_speech_encoders import (
    FrozenEncoderCache,
    build_speech_encoder,
    check_audio_batch,
    encoder_output_lengths,
    feature_encoder_modules,
    feature_frames_axis,
    freeze_modules,
    run_speech_encoder,
    speech_input_name,
)
from .pipeline_dtw_align import register_speech_seq2seq


logger = logging.get_logger(__name__)
# The ASR pipeline decodes by class name: make it use `generate` for this model, also for remote code (no package).
register_speech_seq2seq()


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
        if isinstance(module, DTWAlignCTCHead):  # a unit-norm random blank, scale 10
            init.normal_(module.blank, std=module.blank.numel() ** -0.5)
            init.constant_(module.log_scale, math.log(module.init_scale))
            return
        super()._init_weights(module)


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
        # Always built (D + 1 floats), so `update_dtw_align(ctc_weight=...)` and save/load need no rebuilding; it
        # trains only while `ctc_weight > 0` (see `update_dtw_align`).
        self.ctc_head = DTWAlignCTCHead(config.adapter_output_size)
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
        self._speech_cache: FrozenEncoderCache | None = None
        object.__setattr__(self, "_encoder_view", DTWAlignEncoderView(self))
        self.post_init()
        self._sync_ctc_trainable()
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
                translation sub-config (`speech_layerdrop=0.0`, `speech_mask_time_prob=0.0`, `text_dropout=0.1`),
                except `DTWAlignConfig`'s own fields (`speech_positions`, `speech_window_seconds`).

        Returns:
            [`DTWAlignForSpeechTranslation`] whose two parts carry the pretrained weights (the adapter is new).
        """
        speech, mt, config = load_parts(
            speech_encoder_name_or_path, mt_name_or_path, speech_kwargs or {}, mt_kwargs or {}, config_overrides
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

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded  # (model, info) with output_loading_info=True
        model._sync_ctc_trainable()  # loading re-creates the parameters
        return loaded

    def update_dtw_align(self, **overrides) -> "DTWAlignForSpeechTranslation":
        """Change DTW-Align settings of this built or loaded model: [`DTWAlignConfig.update_dtw_align`].

        Presets expand (`update_dtw_align(preset="cmot")`); architecture fields raise. Every setting is read from the
        config at each forward, so no module needs rebuilding. `ctc_weight` / `ctc_classes` also switch `ctc_head`
        trainable or frozen (`_sync_ctc_trainable`): change them before the optimizer is built. Returns the model.
        """
        self.config.update_dtw_align(**overrides)
        self._sync_ctc_trainable()
        return self

    def _sync_ctc_trainable(self) -> None:
        """`ctc_head` trains only while `ctc_weight > 0`; its blank only with `ctc_classes="vocab"` (no unused
        trainable parameter, which DDP without `find_unused_parameters` rejects)."""
        on = self.config.ctc_weight > 0
        self.ctc_head.log_scale.requires_grad_(on)
        self.ctc_head.blank.requires_grad_(on and self.config.ctc_classes == "vocab")

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

    def cache_speech_encoder_outputs(self, enabled: bool = True, directory: str | os.PathLike | None = None) -> None:
        """Compute the frozen speech encoder's output once per utterance and reuse it (`FrozenEncoderCache`).

        Call `freeze_speech_encoder()` first: a trainable encoder's outputs change every step. Cached outputs are the
        encoder's eval-mode outputs (no dropout or SpecAugment), in training and at inference alike. With `directory`
        they are kept on disk too and shared by later runs of the same encoder.
        """
        if not enabled:
            self._speech_cache = None
            return
        if any(p.requires_grad for p in self.speech_encoder.parameters()):
            raise ValueError(
                "cache_speech_encoder_outputs needs a frozen speech encoder (its outputs would change as it trains): "
                "call model.freeze_speech_encoder() first (run scripts: --freeze_speech_encoder)."
            )
        self._speech_cache = FrozenEncoderCache(directory)

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
        return shift_labels_right(labels, start, self.config.pad_token_id)

    # ------------------------------------------------------------------ input checks

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
        if self._speech_cache is not None:
            hidden = self._speech_cache(self.speech_encoder, audio, attention_mask, lengths)
        else:
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
        with translation_positions(encoder, self.config.speech_positions):
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
        audio = pick_audio(self, input_values, input_features)
        multitask = self.training and input_ids is not None
        text_mask = check_forward_inputs(
            self,
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
        logits, valid, ctc = {"st": st.logits}, None, None
        if multitask:
            text_embeds, text_positions, mt_states, logits["mt"] = self._mt_pass(
                input_ids, text_mask, decoder_input_ids, use_cache
            )
            if cfg.ctc_weight > 0:  # auxiliary CTC on the frames DTW aligns (`ctc_step`)
                speech, frame_mask = encoder_outputs.speech_embeds, encoder_outputs.attention_mask
                ctc, out.ctc_valid_frac = ctc_step(self, speech, frame_mask, input_ids, text_mask, text_embeds)
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
        return self._losses(out, logits, labels, num_items_in_batch, valid, ctc)

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
        with translation_positions(encoder, "sinusoidal", captured):
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
            normalization=cfg.alignment_normalization,
            diagonal_prior=float(cfg.alignment_diagonal_prior),
            timed=cfg.alignment_timing,
        )
        valid = alignment.valid.to(frame_mask.device)
        out.align_valid_frac = valid.float().mean()
        frames = (frame_mask.sum(-1) * valid).sum()
        tokens = (text_mask.sum(-1) * valid).sum()
        out.align_frames_per_token = frames.float() / tokens.clamp(min=1).float()
        if cfg.alignment_timing:
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
            with translation_positions(encoder, cfg.speech_positions):
                mix_states = encoder(inputs_embeds=mix_states, attention_mask=mix_mask).last_hidden_state
        return self._decode(mix_states, mix_mask, decoder_input_ids, use_cache=use_cache).logits

    def _losses(self, out, logits, labels, num_items_in_batch, valid, ctc=None) -> DTWAlignSeq2SeqLMOutput:
        """Step 5: label-smoothed CE of each pass, symmetric KL terms, the summed `ctc` loss (if computed), the
        weighted total (`losses.py`). Every term is divided by the same denominator."""
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
        if ctc is not None:
            out.loss_ctc = ctc / denom
        if "mt" not in logits:  # evaluation, or plain ST training without a transcript
            out.loss = out.loss_st
            return out
        out.loss = weighted_total(
            {"st": out.loss_st, "mt": out.loss_mt, "mix": out.loss_mix, "kl": out.loss_kl, "ctc": out.loss_ctc},
            {
                "st": cfg.st_weight,
                "mt": cfg.mt_weight,
                "mix": cfg.mix_weight,
                "kl": cfg.kl_weight,
                "ctc": cfg.ctc_weight,
            },
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
            inputs = pick_audio(self, kwargs.pop("input_values", None), kwargs.pop("input_features", None))
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
        attention_mask = check_text(
            self, input_ids, attention_mask if attention_mask is not None else text_attention_mask
        )
        check_audio_batch(self, None, None, None, text_mask=attention_mask)
        generation_config = copy.deepcopy(generate_kwargs.pop("generation_config", None) or self.generation_config)
        unused = generation_config.update(**generate_kwargs)
        return self.mt.generate(
            input_ids=input_ids, attention_mask=attention_mask.long(), generation_config=generation_config, **unused
        )


__all__ = [
    "DTWAlignConvAdapter",
    "DTWAlignEncoderOutput",
    "DTWAlignForSpeechTranslation",
    "DTWAlignPreTrainedModel",
    "DTWAlignSeq2SeqLMOutput",
]
