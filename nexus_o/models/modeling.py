"""`NexusOForConditionalGeneration`: Qwen2.5-VL + Whisper encoder + audio adapter (+ speech decoder).

Plain model code: it holds no processor or codec and builds nothing from checkpoint folders;
`nexus_o.bundle` does both (`load_model`, `from_components`, `OmniModel.chat`).

The model is composed, not re-implemented: `self.vl` is transformers' own
`Qwen2_5_VLForConditionalGeneration` (vision tower, merger, LLM, LM head), `self.audio_encoder`
is transformers' `WhisperEncoder`, and `self.audio_adapter` is ours. Audio embeddings replace
the `<|AUDIO|>` placeholder tokens of the input; everything else (image/video placement,
M-RoPE positions, caching) is Qwen2.5-VL's. Audio tokens are ordinary text positions in M-RoPE
(their `mm_token_type_ids` are 0). Without audio the forward pass is exactly Qwen2.5-VL's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel, Qwen2_5_VLForConditionalGeneration
from transformers.utils import ModelOutput
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from nexus_o.models.adapter import AudioAdapter
from nexus_o.models.configuration import NexusOConfig, strict_subconfig
from nexus_o.models.lm_loss import LMHead
from nexus_o.models.speech_decoder import SpeechDecoder
from nexus_o.models.vision_attention import use_single_call_attention
from nexus_o.models.speech_decoder_config import SpeechDecoderConfig
from nexus_o.processing.audio_encoding import encoder_frames


LM_LOSSES = ("hf", "chunked", "liger")


@dataclass
class NexusOOutput(ModelOutput):
    """loss = lm_loss (when labels are given) + speech_loss (when speech codes are given).

    logits [B, L, vocab]; hidden_states as Qwen2.5-VL returns them; speech_per_codebook_loss [K];
    speech_advance_loss: the "pointer" alignment's advance-head loss (inside speech_loss).
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    lm_loss: torch.Tensor | None = None
    speech_loss: torch.Tensor | None = None
    speech_per_codebook_loss: torch.Tensor | None = None
    speech_advance_loss: torch.Tensor | None = None
    cache: object | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


def _unit_rms(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """x [..., H] scaled to root-mean-square 1 over H (no learned weight)."""
    return x * torch.rsqrt(x.float().pow(2).mean(dim=-1, keepdim=True) + eps).to(x.dtype)


def _is_packed(position_ids: torch.Tensor | None) -> bool:
    """Whether position_ids are Qwen2.5-VL's packed layout [4, B, L] (text row + 3 M-RoPE rows)."""
    return position_ids is not None and position_ids.ndim == 3 and position_ids.shape[0] == 4


class NexusOPreTrainedModel(PreTrainedModel):
    config_class = NexusOConfig
    base_model_prefix = ""
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["Qwen2_5_VLDecoderLayer", "Qwen2_5_VLVisionBlock", "WhisperEncoderLayer"]

    def enable_input_require_grads(self) -> None:
        """Make the inputs of checkpointed blocks require grad only where their blocks train.

        transformers (called by `activation_checkpointing_enable`) hooks the input embeddings of
        every sub-model, the vision tower's patch embedding and Whisper's first conv included, so
        that their outputs require grad: with checkpointing on, the frozen encoders' blocks then
        ran backward although nothing in them trains. Here each hook asks, at every call, whether
        its part (LLM, ViT blocks without the merger, Whisper) has a trainable parameter, so a
        freeze applied before or after checkpointing is honoured.
        """
        def only_if_trainable(params):
            def hook(module, inputs, output):
                if torch.is_grad_enabled() and any(p.requires_grad for p in params()):
                    output.requires_grad_(True)
            return hook

        visual = self.vl.model.visual
        parts = [
            (self.get_input_embeddings(), lambda: self.vl.model.language_model.parameters()),
            (visual.patch_embed, lambda: (p for n, p in visual.named_parameters() if not n.startswith("merger."))),
            (self.audio_encoder.conv1, lambda: self.audio_encoder.parameters()),
        ]
        self.disable_input_require_grads()
        self._require_grads_hooks = [module.register_forward_hook(only_if_trainable(params))
                                     for module, params in parts]

    def _init_weights(self, module: nn.Module) -> None:
        # Sub-models (Qwen2.5-VL, Whisper) initialise themselves; this covers our own modules.
        std = self.config.vl_config.text_config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
        elif isinstance(module, SpeechDecoder) and module.text_end is not None:
            nn.init.zeros_(module.text_end)  # streaming's "whole text seen" vector starts at no effect


class NexusOForConditionalGeneration(NexusOPreTrainedModel):
    """The omni model. Submodules: `vl`, `audio_encoder`, `audio_adapter` (and `speech_decoder`)."""

    def __init__(self, config: NexusOConfig):
        super().__init__(config)
        self.vl = Qwen2_5_VLForConditionalGeneration(config.vl_config)
        use_single_call_attention(self.vl.model.visual)  # one attention call per layer, not one per window
        self.vl.lm_head = LMHead.wrap(self.vl.lm_head)  # the same weight; can also give the LM loss
        self.audio_encoder = WhisperEncoder(config.audio_config)
        ad = config.adapter_config
        self.audio_adapter = AudioAdapter(
            stack_frames=ad.stack_frames, input_size=ad.input_size,
            intermediate_size=ad.intermediate_size, output_size=ad.output_size, hidden_act=ad.hidden_act)
        self.speech_decoder = None
        if config.speech_decoder_config is not None:
            self.speech_decoder = SpeechDecoder.from_config(config.speech_decoder_config)
        self.post_init()

    # -- Hugging Face plumbing -------------------------------------------------------------
    def get_input_embeddings(self) -> nn.Module:
        return self.vl.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.vl.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.vl.get_output_embeddings()

    def resize_token_embeddings(self, *args, **kwargs):
        """Resize the LLM's embeddings and keep `config.vl_config` in step."""
        out = self.vl.resize_token_embeddings(*args, **kwargs)
        if not isinstance(self.vl.lm_head, LMHead):  # transformers makes a new nn.Linear
            self.vl.lm_head = LMHead.wrap(self.vl.lm_head)
        self.config.vl_config.text_config.vocab_size = self.vl.config.text_config.vocab_size
        return out

    def add_speech_decoder(self, values: dict) -> None:
        """Give a model without speech output a freshly initialised speech decoder."""
        cfg = strict_subconfig(SpeechDecoderConfig, values, "speech_decoder_config")
        llm = self.config.vl_config.text_config.hidden_size
        if cfg.llm_hidden_size != llm:
            raise ValueError(f"speech_decoder_config.llm_hidden_size={cfg.llm_hidden_size} does not match "
                             f"vl_config.text_config.hidden_size={llm}")
        self.config.speech_decoder_config = cfg
        device = self.get_input_embeddings().weight.device
        self.speech_decoder = SpeechDecoder.from_config(cfg)
        self.speech_decoder.apply(self._init_weights)
        self.speech_decoder.to(device)

    # -- audio --------------------------------------------------------------------------------
    def encode_audio(self, input_features: torch.Tensor, feature_lens: torch.Tensor,
                     audio_clip_ids: torch.Tensor) -> torch.Tensor:
        """Encode audio windows and turn each clip into LLM embeddings.

        input_features [W, n_mels, 2 * max_source_positions]: one row per encoder window.
        feature_lens [W]: valid mel frames of each window.
        audio_clip_ids [W]: the clip each window belongs to (windows of a clip are consecutive,
            clips numbered 0..C-1 in input order).
        Returns [sum of tokens over clips, llm_hidden]: the clips' tokens, concatenated in order.
        """
        expected = self.audio_encoder.config.max_source_positions * 2
        if input_features.ndim != 3 or input_features.shape[-1] != expected:
            raise ValueError(f"input_features must be [windows, n_mels, {expected}], got "
                             f"{tuple(input_features.shape)}")
        if not (feature_lens.shape[0] == audio_clip_ids.shape[0] == input_features.shape[0]):
            raise ValueError(f"input_features has {input_features.shape[0]} windows but feature_lens has "
                             f"{feature_lens.shape[0]} and audio_clip_ids {audio_clip_ids.shape[0]}")
        hidden = self._run_audio_encoder(input_features)  # [W, P, D]
        valid = [hidden[w, : encoder_frames(int(n))] for w, n in enumerate(feature_lens.tolist())]
        clips: list[list[torch.Tensor]] = []
        for w, clip in enumerate(audio_clip_ids.tolist()):
            if clip == len(clips):
                clips.append([])
            elif clip != len(clips) - 1:
                raise ValueError(f"audio_clip_ids must number windows' clips consecutively from 0, got "
                                 f"{audio_clip_ids.tolist()}")
            clips[-1].append(valid[w])
        return self.audio_adapter([torch.cat(frames) for frames in clips])  # one call for all clips

    def enable_audio_encoder_cache(self, enabled: bool = True) -> None:
        """Memoise the outputs of a frozen audio encoder per window (keyed by its features).

        For CPU training with a frozen encoder (the tiny world): each clip is encoded once, then
        every epoch reuses it. Refused while any encoder weight trains, since outputs would go stale.
        """
        if enabled and any(p.requires_grad for p in self.audio_encoder.parameters()):
            raise ValueError("the audio encoder cache needs a frozen audio encoder (it has trainable weights)")
        self.__dict__["_audio_cache"] = {} if enabled else None

    def _run_audio_encoder(self, input_features: torch.Tensor) -> torch.Tensor:
        dtype = self.audio_encoder.conv1.weight.dtype
        cache = self.__dict__.get("_audio_cache")
        if cache is None:
            return self.audio_encoder(input_features.to(dtype)).last_hidden_state
        keys = [hashlib.sha1(w.detach().cpu().numpy().tobytes()).hexdigest() for w in input_features]
        todo = [i for i, k in enumerate(keys) if k not in cache]
        if todo:
            with torch.no_grad():
                fresh = self.audio_encoder(input_features[todo].to(dtype)).last_hidden_state
            for i, out in zip(todo, fresh):
                cache[keys[i]] = out
        return torch.stack([cache[k] for k in keys])

    def embed_inputs(self, input_ids: torch.LongTensor, input_features: torch.Tensor,
                     feature_lens: torch.Tensor, audio_clip_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings with the audio placeholders replaced: [B, L, hidden]."""
        audio = self.encode_audio(input_features, feature_lens, audio_clip_ids)  # before the lookup: see forward
        embeds = self.get_input_embeddings()(input_ids)
        audio = audio.to(embeds.dtype)
        mask = input_ids == self.config.audio_token_id
        if int(mask.sum()) != audio.shape[0]:
            raise ValueError(f"the input holds {int(mask.sum())} audio placeholder tokens but the audio "
                             f"clips give {audio.shape[0]} audio embeddings; build inputs with "
                             f"NexusOProcessor so the counts match")
        return embeds.masked_scatter(mask.unsqueeze(-1), audio)

    # -- forward ----------------------------------------------------------------------------
    def forward(self, input_ids: torch.LongTensor | None = None, attention_mask: torch.Tensor | None = None,
                input_features: torch.Tensor | None = None, feature_lens: torch.Tensor | None = None,
                audio_clip_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None,
                speech_codes: torch.Tensor | None = None, speech_code_lengths: torch.Tensor | None = None,
                speech_text_mask: torch.Tensor | None = None, speech_token_index: torch.Tensor | None = None,
                touch_all_encoders: bool = False, lm_loss: str = "hf", **kwargs) -> NexusOOutput:
        """Forward pass.

        input_ids [B, L], attention_mask [B, L]; audio as in `encode_audio`; every other keyword
        (pixel_values, image_grid_thw, pixel_values_videos, video_grid_thw, mm_token_type_ids,
        second_per_grid_ts, labels, cache, use_cache, ...) goes to Qwen2.5-VL unchanged.
        Speech output (stage 3): speech_codes [B, K, T] (right-padded), speech_code_lengths [B],
        speech_text_mask [B, L] (the reply-text tokens whose last hidden states condition the
        speech decoder) add the decoder's loss; speech_token_index [B, T] (the reply token spoken
        at each frame) is what the "pointer" alignment trains on.
        touch_all_encoders: run every encoder even when the batch lacks its modality (zero
        contribution), so ZeRO-3 / FSDP ranks seeing different modalities cannot hang.
        Packed samples (`nexus_o.train.packing`): position_ids [4, B, L] (text positions restarting
        at each sample, then each sample's M-RoPE rows) and no attention_mask; Qwen2.5-VL uses the
        positions as given and masks block-diagonally (`_check_packed`).
        lm_loss (with labels): "hf", Qwen2.5-VL's loss on full fp32 logits; "chunked" or "liger",
        the LM head's `linear_cross_entropy` (no logits: `logits` is None), computed in the head's
        forward so that FSDP2 and ZeRO-3 hold its weight whole (`nexus_o.models.lm_loss`).
        """
        if lm_loss not in LM_LOSSES:
            raise ValueError(f"lm_loss must be one of {LM_LOSSES}, got {lm_loss!r}")
        if attention_mask is None and _is_packed(kwargs.get("position_ids")):
            self._check_packed(kwargs)
        if self.training:  # a training step never reads a KV cache: do not build one (the config's use_cache is on)
            kwargs.setdefault("use_cache", False)
        # touch_all_encoders: every rank calls Whisper, the token embeddings, the ViT, then
        # Qwen2.5-VL (LLM, LM head), each once and in that order, whatever its batch holds. FSDP and
        # ZeRO-3 gather each block's weights as it runs, so ranks that ran them in different orders
        # would exchange mismatched shards; ZeRO-3 moreover records the module order of one step,
        # requires it to be the same on every rank, and prefetches the next steps by it.
        idle = self._idle_audio_term() if touch_all_encoders and input_features is None else None
        if input_features is not None:
            if input_ids is None:
                raise ValueError("audio input needs input_ids (to find the audio placeholders)")
            if feature_lens is None or audio_clip_ids is None:
                raise ValueError("input_features needs feature_lens and audio_clip_ids (NexusOProcessor "
                                 "returns all three)")
            inputs_embeds = self.embed_inputs(input_ids, input_features, feature_lens, audio_clip_ids)
        elif input_ids is not None and bool((input_ids == self.config.audio_token_id).any()):
            raise ValueError("the input holds audio placeholder tokens but no input_features were given")
        elif touch_all_encoders and inputs_embeds is None and input_ids is not None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
        if touch_all_encoders:
            inputs_embeds, vision = self._embed_vision_once(input_ids, inputs_embeds, kwargs)
            if vision is not None:
                idle = vision if idle is None else idle + vision
        want_speech = speech_codes is not None
        if want_speech:
            if self.speech_decoder is None:
                raise ValueError("speech_codes were given but the model has no speech decoder")
            if speech_text_mask is None:
                raise ValueError("speech_codes need speech_text_mask (the reply tokens to speak)")
            kwargs["output_hidden_states"] = True
        labels = kwargs.pop("labels", None) if lm_loss != "hf" else None
        if labels is not None:  # the LLM without its head, then the head's loss (no logits)
            num_items = kwargs.pop("num_items_in_batch", None)
            kwargs.pop("logits_to_keep", None)
            out = self.vl.model(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds,
                                **kwargs)
            loss, logits = self.vl.lm_head(out.last_hidden_state, labels, num_items, impl=lm_loss), None
        else:
            out = self.vl(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs)
            loss, logits = out.loss, out.logits
        result = NexusOOutput(loss=loss, logits=logits, lm_loss=loss, cache=out.cache, hidden_states=out.hidden_states)
        if want_speech:
            condition = self.speech_condition(out.hidden_states[-1], input_ids)
            speech = self.speech_decoder(condition, speech_text_mask, speech_codes, speech_code_lengths,
                                         token_index=speech_token_index)
            result.speech_loss, result.speech_per_codebook_loss = speech.loss, speech.per_codebook_loss
            result.speech_advance_loss = speech.advance_loss
            result.loss = speech.loss if result.loss is None else result.loss + speech.loss
        if idle is not None and result.loss is not None:
            result.loss = result.loss + idle
        return result

    def _check_packed(self, kwargs: dict) -> None:
        """Packed inputs must run without a cache: transformers builds the block-diagonal mask from the
        positions only when there is none (and `use_cache` defaults to on). Flash attention reads the
        samples' boundaries from the positions only in a batch of one row; with several rows it would
        attend across samples, so that is refused."""
        if kwargs.get("use_cache") or kwargs.get("cache") is not None:
            raise ValueError("packed inputs (position_ids [4, B, L], no attention_mask) cannot use a cache")
        kwargs["use_cache"] = False
        rows = kwargs["position_ids"].shape[1]
        backend = self.vl.model.language_model.config._attn_implementation or ""
        if "flash" in backend and rows > 1:
            raise ValueError(f"{backend} finds packed samples from positions only in one row, but the batch has "
                             f"{rows}; pack into one row (SamplePacker(row_tokens=None))")

    def speech_condition(self, last_hidden: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        """What conditions the speech decoder: last hidden states [B, L, H] (+ token embeddings).

        With token embeddings each term is scaled to unit RMS first: the last hidden state comes
        out of the LLM's final norm (RMS ~1) while embeddings are small (RMS ~0.03 in the tiny
        world), so a plain sum would drown the token identity the embedding is there to carry.
        """
        if self.config.speech_decoder_config.add_token_embeddings:
            embeds = self.get_input_embeddings()(input_ids).to(last_hidden.dtype)
            return _unit_rms(last_hidden) + _unit_rms(embeds)
        return last_hidden

    def _idle_audio_term(self) -> torch.Tensor:
        """0 x (audio encoder + adapter on one silent window): the same graph on every rank."""
        window = self.audio_encoder.config.max_source_positions * 2
        feats = self.audio_adapter.linear_1.weight.new_zeros(1, self.audio_encoder.config.num_mel_bins, window)
        return 0.0 * self.encode_audio(feats, torch.tensor([window]), torch.tensor([0])).sum()

    def _idle_vision_term(self) -> torch.Tensor:
        """0 x (vision tower + merger on one blank merge block): the same graph on every rank."""
        vision = self.config.vl_config.vision_config
        merge = vision.spatial_merge_size
        dim = vision.in_channels * vision.temporal_patch_size * vision.patch_size ** 2
        weight = self.audio_adapter.linear_1.weight
        grid = torch.tensor([[1, merge, merge]], device=weight.device)
        pixels = weight.new_zeros(merge * merge, dim).type(self.vl.model.visual.dtype)
        return 0.0 * self.vl.model.visual(pixels, grid_thw=grid).pooler_output.sum()

    def _embed_vision_once(self, input_ids: torch.Tensor | None, embeds: torch.Tensor,
                           kwargs: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Image and video features in one call of the vision tower, scattered into `embeds` [B, L, H].

        For touch_all_encoders (see `forward`). Qwen2.5-VL calls the tower inside its own forward
        (after its outer modules), once for images and again for videos, so ranks holding an image,
        a video or neither would call modules in different orders or counts. Here every rank calls
        it once, before `self.vl`: on all patches (pixel_values [P, C*tp*p*p], then
        pixel_values_videos, with their grids [N, 3]), or on a blank merge block when the batch has
        none. Pixel values leave `kwargs` (the grids stay: they place M-RoPE positions).
        Returns (embeds with the features in, the blank block's 0 x term or None).
        """
        visual, config = self.vl.model.visual, self.vl.config
        parts = []  # (placeholder token id, pixels, grids)
        for key, grid_key, token in (("pixel_values", "image_grid_thw", config.image_token_id),
                                     ("pixel_values_videos", "video_grid_thw", config.video_token_id)):
            pixels = kwargs.pop(key, None)
            if pixels is not None:
                parts.append((token, pixels, kwargs[grid_key]))
        if not parts:
            return embeds, self._idle_vision_term()
        if input_ids is None:
            raise ValueError("images and videos need input_ids (to find their placeholders)")
        grids = torch.cat([grid for _, _, grid in parts])
        pixels = torch.cat([p for _, p, _ in parts]).type(visual.dtype)
        features = visual(pixels, grid_thw=grids).pooler_output.to(embeds.device, embeds.dtype)  # [tokens, H]
        sizes = [int(grid.prod(-1).sum()) // visual.spatial_merge_size ** 2 for _, _, grid in parts]
        for (token, _, _), feats in zip(parts, features.split(sizes)):
            mask = input_ids == token
            if int(mask.sum()) != feats.shape[0]:
                raise ValueError(f"the input holds {int(mask.sum())} placeholders of token {token} but its "
                                 f"media give {feats.shape[0]} features")
            embeds = embeds.masked_scatter(mask.unsqueeze(-1), feats)
        return embeds, None

    # -- generation ---------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None,
                 input_features: torch.Tensor | None = None, feature_lens: torch.Tensor | None = None,
                 audio_clip_ids: torch.Tensor | None = None, **kwargs):
        """Text generation with Qwen2.5-VL's `generate` (all its options), audio merged first.

        Returns what `Qwen2_5_VLForConditionalGeneration.generate` returns: token ids [B, L + new].
        """
        if input_features is not None:
            kwargs["inputs_embeds"] = self.embed_inputs(input_ids, input_features, feature_lens,
                                                        audio_clip_ids)
        return self.vl.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
