"""Building blocks of `DTWAlignForSpeechTranslation`: output types, the conv adapter, the encoder view used by
`generate`, the input checks of `forward`, and the position-embedding switch of the forward pass.
"""

import contextlib
import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSeq2SeqLM
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput

from .configuration_dtw_align import DTWAlignConfig
from .losses import ctc_loss_sum, ctc_targets
from .modeling_speech_encoders import check_audio_batch, load_speech_encoder, set_whisper_window


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
        loss_ctc (`torch.Tensor`, *optional*): the auxiliary cosine CTC loss (`ctc_weight > 0`, training), summed over
            samples and divided by the same denominator as the other terms.
        ctc_valid_frac (`torch.Tensor`, *optional*): share of the batch with enough frames for its CTC targets (the
            rest contribute 0 to `loss_ctc`).
    """

    loss_st: torch.Tensor | None = None
    loss_mt: torch.Tensor | None = None
    loss_mix: torch.Tensor | None = None
    loss_kl: torch.Tensor | None = None
    align_valid_frac: torch.Tensor | None = None
    align_frames_per_token: torch.Tensor | None = None
    align_seconds: torch.Tensor | None = None
    loss_ctc: torch.Tensor | None = None
    ctc_valid_frac: torch.Tensor | None = None


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


class DTWAlignCTCHead(nn.Module):
    """Cosine output layer of the auxiliary CTC loss: it scores exactly the similarity the alignment reads.

    `logits[b, n, v] = s * cos(f[b, n], e_v)` for every vocabulary entry `v` (the text embedding matrix is passed in,
    detached by the caller), and a last, blank class `s * cos(f[b, n], blank)`. `blank` is a learned `(D,)` vector,
    `s = exp(log_scale)` a learned scale (initialised to 10, clamped to [1, 100] as CLIP clamps its logit scale).
    Computed in float32 with autocast off, so a bf16 step scores the same cosines.
    """

    init_scale = 10.0
    max_scale = 100.0

    def __init__(self, width: int):
        super().__init__()
        self.blank = nn.Parameter(torch.randn(width) * width**-0.5)
        self.log_scale = nn.Parameter(torch.tensor(math.log(self.init_scale)))

    def scale(self) -> torch.Tensor:
        return self.log_scale.float().exp().clamp(1.0, self.max_scale)

    def forward(self, speech_embeds: torch.Tensor, vocab_embeds: torch.Tensor) -> torch.Tensor:
        """`(B, N, D)` frames and `(V, D)` text embeddings -> `(B, N, V + 1)` float32 logits, blank last."""
        with torch.autocast(device_type=speech_embeds.device.type, enabled=False):
            frames = nn.functional.normalize(speech_embeds.float(), dim=-1)
            classes = torch.cat([vocab_embeds.float(), self.blank.float()[None].to(vocab_embeds.device)])
            return self.scale() * frames @ nn.functional.normalize(classes, dim=-1).T

    def transcript_logits(self, speech_embeds, text_embeds, text_mask) -> torch.Tensor:
        """`ctc_classes="transcript"`: `(B, N, M + 1)` float32 logits `s * cos(f_n, e_j)` over each sample's own
        transcript positions (padding masked), and a last, blank class that is ruled out (-1e4). CTC over targets
        `0 .. M-1` then sums over exactly DTW's paths: every frame one token, stay or advance by one."""
        with torch.autocast(device_type=speech_embeds.device.type, enabled=False):
            frames = nn.functional.normalize(speech_embeds.float(), dim=-1)
            tokens = nn.functional.normalize(text_embeds.float(), dim=-1)
            logits = (self.scale() * frames @ tokens.transpose(1, 2)).masked_fill(~text_mask.bool()[:, None], -1e4)
            return nn.functional.pad(logits, (0, 1), value=-1e4)


class DTWAlignEncoderView(nn.Module):
    """What `get_encoder()` returns: the speech path up to the translation encoder. Owns no parameters.

    `GenerationMixin.generate` calls `get_encoder()(<main_input_name>=..., attention_mask=..., return_dict=True)` once
    and feeds the result back to `forward` as `encoder_outputs` at every decoding step.
    """

    def __init__(self, owner: nn.Module):
        super().__init__()
        object.__setattr__(self, "_owner", owner)  # not a submodule: no duplicate parameters in the state dict
        self.main_input_name = owner.main_input_name

    def forward(self, inputs=None, attention_mask=None, *, input_values=None, input_features=None, **kwargs):
        """`inputs`: the audio in the model's own kind (positional), else `input_values` / `input_features`."""
        audio = inputs if inputs is not None else pick_audio(self._owner, input_values, input_features)
        return self._owner.encode_speech(audio, attention_mask, sampling_rate=kwargs.get("sampling_rate"))


@contextlib.contextmanager
def translation_positions(encoder: nn.Module, mode: str, captured: list | None = None):
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


def ctc_step(model, speech_embeds, frame_mask, input_ids, text_mask, text_embeds) -> tuple[torch.Tensor, torch.Tensor]:
    """The auxiliary CTC of a multitask step: adapter frames vs transcript tokens through `model.ctc_head`.

    The classes are text embeddings as `model.embed_text` produces them (any embedding scale included: the cosine
    ignores it), without gradient, so the loss moves the speech side only: the whole vocabulary plus the learned
    blank (`ctc_classes="vocab"`, BOS/EOS/pad left out of the targets), or the sample's own transcript positions, all
    of them as DTW aligns them, without blank (`"transcript"`). Returns the summed loss (divide it like the other
    terms) and the share of samples with enough frames.
    """
    cfg, embeddings = model.config, model.get_input_embeddings()
    frame_lengths = frame_mask.to(speech_embeds.device).sum(-1)
    if cfg.ctc_classes == "transcript":
        logits = model.ctc_head.transcript_logits(speech_embeds, text_embeds.detach(), text_mask)
        positions = torch.arange(text_mask.size(1), device=text_mask.device).expand(text_mask.shape)
        loss, feasible = ctc_loss_sum(logits, frame_lengths, positions, text_mask.sum(-1))
        return loss, feasible.float().mean()
    vocab_size = getattr(embeddings, "num_embeddings", None) or cfg.text_config.vocab_size
    with torch.no_grad():
        vocab = model.embed_text(torch.arange(vocab_size, device=input_ids.device)[None])[0]
    targets, lengths = ctc_targets(input_ids, text_mask, (cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id))
    logits = model.ctc_head(speech_embeds, vocab)
    loss, feasible = ctc_loss_sum(logits, frame_lengths, targets, lengths)
    return loss, feasible.float().mean()


def pick_audio(model, input_values: torch.Tensor | None, input_features: torch.Tensor | None):
    """The audio tensor of whichever key was passed; raises if it is the wrong kind for this speech encoder."""
    if input_values is not None and input_features is not None:
        raise ValueError("Pass either `input_values` or `input_features`, not both.")
    given = "input_values" if input_values is not None else "input_features" if input_features is not None else None
    if given is not None and given != model.main_input_name:
        raise ValueError(
            f"This model's speech encoder ({model.config.speech_config.model_type}) takes `{model.main_input_name}`, "
            f"got `{given}`; prepare the audio with this model's processor (`DTWAlignProcessor.from_pretrained`)."
        )
    return input_values if input_values is not None else input_features


def check_text(model, input_ids: torch.Tensor, text_attention_mask: torch.Tensor | None) -> torch.Tensor:
    if input_ids.dim() != 2:
        raise ValueError(f"`input_ids` (transcript) must have shape (batch, tokens), got {tuple(input_ids.shape)}.")
    if text_attention_mask is None:
        text_attention_mask = input_ids.ne(model.config.pad_token_id)
    if text_attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"`text_attention_mask` {tuple(text_attention_mask.shape)} does not match `input_ids` "
            f"{tuple(input_ids.shape)}."
        )
    return text_attention_mask.bool()


def check_forward_inputs(model, audio, attention_mask, sampling_rate, input_ids, text_attention_mask, labels,
                  decoder_input_ids, encoder_outputs, multitask):  # fmt: skip
    """Every check of `forward`, before any compute; returns the transcript mask (or `None`)."""
    cfg = model.config
    if encoder_outputs is None and audio is None:
        raise ValueError(f"Pass `{model.main_input_name}` (audio from the processor) or `encoder_outputs`.")
    if multitask and labels is None:
        raise ValueError(
            "`input_ids` (transcript) was given in training mode without `labels` (translation): the MT and mixup "
            "passes need the translation; pass `labels` from the collator."
        )
    needs_text = cfg.uses_mixup or cfg.mt_weight > 0 or cfg.ctc_weight > 0
    if model.training and labels is not None and input_ids is None and needs_text:
        raise ValueError(
            f"Training with alignment={cfg.alignment!r}, mixup={cfg.mixup!r}, mt_weight={cfg.mt_weight}, "
            f"ctc_weight={cfg.ctc_weight} needs the transcript: pass `input_ids` (and `text_attention_mask`) from the "
            "collator, or set `alignment='none'`, `mt_weight=0` and `ctc_weight=0` for plain speech-translation "
            "training."
        )
    if labels is None and decoder_input_ids is None and encoder_outputs is None:
        raise ValueError("Pass `labels` (training/evaluation) or `decoder_input_ids`; to translate use `generate`.")
    text_mask = check_text(model, input_ids, text_attention_mask) if multitask else None
    precomputed = encoder_outputs is not None and getattr(encoder_outputs, "speech_embeds", None) is None
    if multitask and (cfg.alignment != "none" or cfg.ctc_weight > 0) and precomputed:
        raise ValueError(
            f"Alignment and CTC need the speech embeddings: pass `{model.main_input_name}` instead of precomputed "
            "`encoder_outputs` in training, or use `encoder_outputs` from `model.get_encoder()`."
        )
    if encoder_outputs is None:
        check_audio_batch(model, audio, attention_mask, sampling_rate, text_mask=text_mask)
    elif text_mask is not None:
        check_audio_batch(model, None, None, None, text_mask=text_mask)
    return text_mask


def load_parts(
    speech_encoder_name_or_path: str,
    mt_name_or_path: str,
    speech_kwargs: dict,
    mt_kwargs: dict,
    config_overrides: dict,
):
    """The two pretrained parts and the `DTWAlignConfig` of `DTWAlignForSpeechTranslation.from_pretrained_parts`."""
    config_overrides = dict(config_overrides)
    speech_kwargs, mt_kwargs = dict(speech_kwargs), dict(mt_kwargs)
    window = config_overrides.pop("speech_window_seconds", None)
    overrides = {"speech_": {}, "text_": {}}
    for prefix, found in overrides.items():
        # `speech_positions` etc. are DTWAlignConfig fields, not sub-config overrides
        for key in [k for k in config_overrides if k.startswith(prefix) and not hasattr(DTWAlignConfig, k)]:
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
    return speech, mt, config


__all__ = [
    "DTWAlignCTCHead",
    "DTWAlignConvAdapter",
    "DTWAlignEncoderOutput",
    "DTWAlignEncoderView",
    "DTWAlignSeq2SeqLMOutput",
    "check_forward_inputs",
    "check_text",
    "ctc_step",
    "load_parts",
    "pick_audio",
    "translation_positions",
]
