"""FaceInsight model: LLaVA-1.5 layout + face-parsing modality + facial-knowledge modules.

Data flow for one image:

    pixel_values ──► vision tower ──► projector ─────────────────────────────► image tokens  ─┐
         │                                                                                     ├─► scattered into the
         └─► parser (SegFormer; only when no map is given) ─► label map ─► palette render ─►  │   LM's input embeddings
             parsing encoder (ViT) ─► pool to parsing_seq_length ─► projector ─► parsing tokens┘
    mean(image tokens, parsing tokens) ─► CCM (GCN label classifiers) ─► attribute logits ─► LCM (loss / decisions)

This file is uploaded to the Hub as remote code: it imports only `torch`, `transformers` and same-folder modules.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, AutoModelForSemanticSegmentation, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_outputs import MultimodalBaseModelOutputWithPast, MultimodalCausalLMOutputWithPast
from transformers.modeling_utils import slice_logits_to_keep
from transformers.utils import ModelOutput

from .configuration_faceinsight import FaceInsightConfig
from .knowledge_faceinsight import FaceInsightCorrelationConstraintModule, FaceInsightLogicalConstraintModule

UNKNOWN_PARSING_LABEL = -1  # a parsing map filled with this value asks the in-model parser for that image


@dataclass
class FaceInsightModelOutputWithPast(MultimodalBaseModelOutputWithPast):
    """Adds the attribute logits (one row per image) and the label maps the parsing branch used."""

    attribute_logits: torch.FloatTensor | None = None
    parsing_maps: torch.LongTensor | None = None


@dataclass
class FaceInsightCausalLMOutputWithPast(MultimodalCausalLMOutputWithPast):
    """`loss` is the weighted total; `lm_loss`, `bce_loss` and `logic_loss` are its unweighted parts."""

    lm_loss: torch.FloatTensor | None = None
    bce_loss: torch.FloatTensor | None = None
    logic_loss: torch.FloatTensor | None = None
    attribute_logits: torch.FloatTensor | None = None
    parsing_maps: torch.LongTensor | None = None


@dataclass
class FaceInsightAttributePredictions(ModelOutput):
    """Structured predictions per image: logits and sigmoid probabilities per label node, and the logic-consistent
    0/1 decisions (exactly one value per categorical facet, no exclusion rule violated). Column order is
    `config.label_names`."""

    logits: torch.FloatTensor | None = None
    probabilities: torch.FloatTensor | None = None
    decisions: torch.BoolTensor | None = None
    parsing_maps: torch.LongTensor | None = None


class FaceInsightMultiModalProjector(nn.Module):
    """LLaVA-1.5's two-layer MLP from a vision width to the LM width."""

    def __init__(self, in_features: int, out_features: int, activation: str, bias: bool):
        super().__init__()
        self.linear_1 = nn.Linear(in_features, out_features, bias=bias)
        self.act = ACT2FN[activation]
        self.linear_2 = nn.Linear(out_features, out_features, bias=bias)

    def forward(self, features):
        return self.linear_2(self.act(self.linear_1(features)))


class FaceInsightParsingRenderer(nn.Module):
    """Label map (B, H, W) -> normalised 3-channel image (B, 3, size, size) with a fixed palette."""

    def __init__(self, config: FaceInsightConfig):
        super().__init__()
        self.config = config
        for name, value in self.compute_buffers().items():
            self.register_buffer(name, value, persistent=False)
        self.image_size = config.parsing_encoder_config.image_size

    def compute_buffers(self) -> dict[str, torch.Tensor]:
        return {
            "palette": torch.tensor(self.config.parsing_palette, dtype=torch.float32) / 255.0,
            "mean": torch.tensor(self.config.parsing_render_mean).view(1, 3, 1, 1),
            "std": torch.tensor(self.config.parsing_render_std).view(1, 3, 1, 1),
        }

    def forward(self, label_maps: torch.LongTensor, dtype: torch.dtype) -> torch.Tensor:
        if label_maps.shape[-2:] != (self.image_size, self.image_size):
            label_maps = F.interpolate(
                label_maps[:, None].float(), size=(self.image_size, self.image_size), mode="nearest"
            )[:, 0].long()
        rendered = self.palette[label_maps].permute(0, 3, 1, 2)
        return ((rendered - self.mean) / self.std).to(dtype)


class FaceInsightParserInputNormalizer(nn.Module):
    """pixel_values are normalised for the vision tower; the parser wants its own mean/std: x * scale + shift."""

    def __init__(self, config: FaceInsightConfig):
        super().__init__()
        self.config = config
        for name, value in self.compute_buffers().items():
            self.register_buffer(name, value, persistent=False)

    def compute_buffers(self) -> dict[str, torch.Tensor]:
        image_mean = torch.tensor(self.config.image_mean).view(1, 3, 1, 1)
        image_std = torch.tensor(self.config.image_std).view(1, 3, 1, 1)
        parser_mean = torch.tensor(self.config.parser_image_mean).view(1, 3, 1, 1)
        parser_std = torch.tensor(self.config.parser_image_std).view(1, 3, 1, 1)
        return {"scale": image_std / parser_std, "shift": (image_mean - parser_mean) / parser_std}

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return pixel_values * self.scale.to(pixel_values.dtype) + self.shift.to(pixel_values.dtype)


def _select_features(outputs, layer: int, strategy: str) -> torch.Tensor:
    features = outputs.last_hidden_state if layer == -1 else outputs.hidden_states[layer]
    return features[:, 1:] if strategy == "default" else features


def _pool_tokens(features: torch.Tensor, length: int) -> torch.Tensor:
    """Average-pool (B, T, d) tokens to (B, length, d): over the 2-D patch grid when both counts are squares."""
    tokens = features.shape[1]
    if tokens == length:
        return features
    side, target_side = math.isqrt(tokens), math.isqrt(length)
    if side * side == tokens and target_side * target_side == length:
        grid = features.transpose(1, 2).reshape(features.shape[0], -1, side, side)
        return F.adaptive_avg_pool2d(grid, target_side).flatten(2).transpose(1, 2)
    return F.adaptive_avg_pool1d(features.transpose(1, 2), length).transpose(1, 2)


class FaceInsightPreTrainedModel(PreTrainedModel):
    config: FaceInsightConfig
    config_class = FaceInsightConfig
    base_model_prefix = "model"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_attention_backend = True
    _can_compile_fullgraph = False
    _no_split_modules = []

    def _init_weights(self, module):
        super()._init_weights(module)
        if getattr(module, "is_gcn_layer", False):
            init.normal_(module.weight, std=module.in_features**-0.5)
        if hasattr(module, "compute_buffers"):  # config-derived, non-persistent buffers (absent from checkpoints)
            for name, value in module.compute_buffers().items():
                init.copy_(getattr(module, name), value)
        if isinstance(module, FaceInsightCorrelationConstraintModule):
            if module.node_embeddings is not None:
                init.normal_(module.node_embeddings, std=0.02)
            init.zeros_(module.label_bias)
            if module.region_readout is not None:
                init.zeros_(module.region_readout)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """As in transformers; loading replaces parameters, so the config's freezing is applied again afterwards."""
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        model.apply_freezing()
        return loaded

    def apply_freezing(self):
        """Give no gradients to the components the config marks frozen (vision tower, parser, parsing encoder, LM)."""
        base = self.model if isinstance(self, FaceInsightForConditionalGeneration) else self
        frozen = {
            "vision_tower": self.config.freeze_vision_tower,
            "parser": self.config.freeze_parser,
            "parsing_encoder": self.config.freeze_parsing_encoder,
            "language_model": self.config.freeze_language_model,
        }
        for name, is_frozen in frozen.items():
            getattr(base, name).requires_grad_(not is_frozen)
        if base is not self:
            self.lm_head.requires_grad_(not self.config.freeze_language_model)

    def refresh_config_buffers(self):
        """Recompute every config-derived buffer (C_hat, rules, palette, normalisation) after the config changed;
        shapes may change (e.g. more rules), so the buffers are replaced, on their current device."""
        for module in self.modules():
            if hasattr(module, "compute_buffers"):
                for name, value in module.compute_buffers().items():
                    module.register_buffer(name, value.to(getattr(module, name).device), persistent=False)

    def _check_and_adjust_attn_implementation(self, attn_implementation, is_init_check: bool = False, **kwargs):
        if attn_implementation is not None and attn_implementation.startswith("flash_attention"):
            if not torch.cuda.is_available():
                raise ValueError(
                    f"attn_implementation={attn_implementation!r} needs a CUDA GPU and the flash-attn package "
                    "(pip install 'faceinsight[flash]'); no CUDA device is visible here. Use 'sdpa' (default) or "
                    "'eager' on CPU."
                )
        return super()._check_and_adjust_attn_implementation(attn_implementation, is_init_check, **kwargs)


class FaceInsightModel(FaceInsightPreTrainedModel):
    """Vision tower, parsing branch, projectors, knowledge modules and the language model (without LM head)."""

    def __init__(self, config: FaceInsightConfig):
        super().__init__(config)
        text_width = config.text_config.hidden_size
        self.vision_tower = AutoModel.from_config(config.vision_config)
        self.multi_modal_projector = FaceInsightMultiModalProjector(
            config.vision_config.hidden_size, text_width, config.projector_hidden_act, config.multimodal_projector_bias
        )
        self.parser = AutoModelForSemanticSegmentation.from_config(config.parser_config)
        self.parsing_renderer = FaceInsightParsingRenderer(config)
        self.parsing_encoder = AutoModel.from_config(config.parsing_encoder_config)
        self.parsing_projector = FaceInsightMultiModalProjector(
            config.parsing_encoder_config.hidden_size,
            text_width,
            config.projector_hidden_act,
            config.multimodal_projector_bias,
        )
        self.correlation_module = FaceInsightCorrelationConstraintModule(config)
        self.logic_module = FaceInsightLogicalConstraintModule(config)
        self.language_model = AutoModel.from_config(config.text_config)
        self.parser_input_normalizer = FaceInsightParserInputNormalizer(config)
        self.post_init()
        self.apply_freezing()

    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    # -------------------------------------------------------------------------------------------------------------
    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> projected image tokens (B, image_seq_length, text width)."""
        layer = self.config.vision_feature_layer
        outputs = self.vision_tower(pixel_values, output_hidden_states=layer != -1, return_dict=True)
        features = _select_features(outputs, layer, self.config.vision_feature_select_strategy)
        return self.multi_modal_projector(features)

    @torch.no_grad()
    def parse_faces(self, pixel_values: torch.Tensor) -> torch.LongTensor:
        """The in-model parser's label maps (B, H, W) at the resolution of `pixel_values`."""
        parser_inputs = self.parser_input_normalizer(pixel_values)
        logits = self.parser(pixel_values=parser_inputs, return_dict=True).logits
        logits = F.interpolate(logits.float(), size=pixel_values.shape[-2:], mode="bilinear", align_corners=False)
        return logits.argmax(1)

    def resolve_parsing_maps(self, pixel_values: torch.Tensor, parsing_maps: torch.LongTensor | None):
        """Caller-supplied maps take precedence; images whose map is missing (None or all -1) are parsed here."""
        num_labels = self.config.parser_config.num_labels
        if parsing_maps is None:
            return self.parse_faces(pixel_values)
        if parsing_maps.dim() != 3 or parsing_maps.shape[0] != pixel_values.shape[0]:
            raise ValueError(
                f"parsing_maps must have shape (num_images, height, width) with num_images={pixel_values.shape[0]} "
                f"(one per image), got {tuple(parsing_maps.shape)}"
            )
        parsing_maps = parsing_maps.long()
        low, high = int(parsing_maps.min()), int(parsing_maps.max())
        if low < UNKNOWN_PARSING_LABEL or high >= num_labels:
            raise ValueError(
                f"parsing_maps holds labels in [{low}, {high}]; valid labels are 0..{num_labels - 1} "
                f"(and {UNKNOWN_PARSING_LABEL} for 'parse this image')"
            )
        missing = (parsing_maps == UNKNOWN_PARSING_LABEL).flatten(1).any(1)
        if missing.any():
            parsed = self.parse_faces(pixel_values[missing])
            if parsed.shape[-2:] != parsing_maps.shape[-2:]:
                parsed = F.interpolate(parsed[:, None].float(), size=parsing_maps.shape[-2:], mode="nearest")[:, 0]
            parsing_maps = parsing_maps.clone()
            parsing_maps[missing] = parsed.long()
        return parsing_maps

    def get_parsing_features(self, parsing_maps: torch.LongTensor, dtype: torch.dtype) -> torch.Tensor:
        """Label maps -> projected parsing tokens (B, parsing_seq_length, text width)."""
        rendered = self.parsing_renderer(parsing_maps, dtype)
        layer = self.config.parsing_feature_layer
        outputs = self.parsing_encoder(rendered, output_hidden_states=layer != -1, return_dict=True)
        features = _select_features(outputs, layer, self.config.parsing_feature_select_strategy)
        return self.parsing_projector(_pool_tokens(features, self.config.parsing_seq_length))

    def region_pooled_features(self, image_features: torch.Tensor, parsing_maps: torch.LongTensor):
        """Image tokens averaged within each parsing region: (B, R, d) features and (B, R) which regions are present.
        A token counts towards a region by the share of its pixels that carry the region's label."""
        num_regions = self.config.parser_config.num_labels
        side = int(round(image_features.shape[1] ** 0.5))
        if side * side != image_features.shape[1]:
            raise ValueError(f"region_readout needs a square grid of image tokens, got {image_features.shape[1]} "
                             "tokens; set config.region_readout=False for this vision tower")  # fmt: skip
        one_hot = F.one_hot(parsing_maps.long().clamp(0, num_regions - 1), num_regions).permute(0, 3, 1, 2)
        shares = F.adaptive_avg_pool2d(one_hot.to(image_features.dtype), side).flatten(2)  # (B, R, T)
        mass = shares.sum(-1, keepdim=True)
        return (shares / mass.clamp(min=1e-6)) @ image_features, mass.squeeze(-1) > 0

    def attribute_logits(self, image_features: torch.Tensor, parsing_features: torch.Tensor,
                         parsing_maps: torch.LongTensor | None = None) -> torch.Tensor:  # fmt: skip
        # each modality weighs the same, whatever its token count (parsing tokens are pooled to fewer)
        pooled = (image_features.mean(1) + parsing_features.mean(1)) / 2
        regions = present = None
        if self.config.region_readout and parsing_maps is not None:
            regions, present = self.region_pooled_features(image_features, parsing_maps)
        return self.correlation_module(pooled, self.get_input_embeddings(), regions, present)

    def encode_visual(self, pixel_values: torch.FloatTensor, parsing_maps: torch.LongTensor | None = None):
        """Both visual branches and the attribute head: (image tokens, parsing tokens, attribute logits, maps used)."""
        pixel_values = pixel_values.to(self.vision_tower.dtype)
        image_features = self.get_image_features(pixel_values)
        used_maps = self.resolve_parsing_maps(pixel_values, parsing_maps)
        parsing_features = self.get_parsing_features(used_maps, image_features.dtype)
        logits = self.attribute_logits(image_features, parsing_features, used_maps)
        return image_features, parsing_features, logits, used_maps

    def _has_placeholders(self, input_ids: torch.LongTensor) -> bool:
        placeholders = (input_ids == self.config.image_token_id) | (input_ids == self.config.parsing_token_id)
        return bool(placeholders.any())

    def _scatter(self, input_ids, inputs_embeds, token_id, features, what):
        mask = input_ids == token_id
        found, expected = int(mask.sum()), features.shape[0] * features.shape[1]
        if found == 0:
            return inputs_embeds
        if found != expected:
            raise ValueError(
                f"{what} tokens and features do not match: the text holds {found} {what} placeholder tokens but "
                f"{features.shape[0]} image(s) give {expected} ({features.shape[1]} each). Build inputs with "
                "FaceInsightProcessor, one <image> per image, and do not truncate them."
            )
        return inputs_embeds.masked_scatter(mask.unsqueeze(-1), features.to(inputs_embeds.dtype))

    # -------------------------------------------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        parsing_maps: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache=None,
        inputs_embeds: torch.FloatTensor | None = None,
        **kwargs,
    ) -> FaceInsightModelOutputWithPast:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds")
        if parsing_maps is not None and pixel_values is None:
            raise ValueError("parsing_maps were given without pixel_values; pass the images they belong to")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)

        attribute_logits = used_maps = None
        if pixel_values is not None:
            image_features, parsing_features, attribute_logits, used_maps = self.encode_visual(
                pixel_values, parsing_maps
            )
            if input_ids is not None:
                inputs_embeds = self._scatter(
                    input_ids, inputs_embeds, self.config.image_token_id, image_features, "image"
                )
                inputs_embeds = self._scatter(
                    input_ids, inputs_embeds, self.config.parsing_token_id, parsing_features, "parsing"
                )
        elif (
            input_ids is not None
            and (cache is None or cache.get_seq_length() == 0)
            and self._has_placeholders(input_ids)
        ):
            # checked in prefill only: decode steps never carry placeholders and must not pay for a device sync
            raise ValueError("The text holds image/parsing placeholder tokens but no pixel_values were given")

        outputs = self.language_model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            **kwargs,
        )
        return FaceInsightModelOutputWithPast(
            last_hidden_state=outputs.last_hidden_state,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            attribute_logits=attribute_logits,
            parsing_maps=used_maps,
        )


class FaceInsightForConditionalGeneration(FaceInsightPreTrainedModel, GenerationMixin):
    """FaceInsight with the LM head: chat generation and structured face predictions from one forward pass."""

    _tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}

    def __init__(self, config: FaceInsightConfig):
        super().__init__(config)
        self.model = FaceInsightModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()
        self.apply_freezing()

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.lm_head

    # -------------------------------------------------------------------------------------------------------------
    def _attribute_losses(self, attribute_logits, attribute_labels):
        """BCE over labelled nodes (labels -100 are masked: facets a dataset lacks) and the logic violation loss."""
        expected = (attribute_logits.shape[0], self.config.num_attribute_labels)
        if tuple(attribute_labels.shape) != expected:
            raise ValueError(
                f"attribute_labels must have shape (num_images, num_attribute_labels) = {expected}, got "
                f"{tuple(attribute_labels.shape)}; columns follow config.label_names, -100 marks unknown labels"
            )
        attribute_labels = attribute_labels.to(attribute_logits.device)
        known = attribute_labels != -100
        targets = attribute_labels.float()
        if bool(((targets != 0) & (targets != 1) & known).any()):
            raise ValueError("attribute_labels must hold 0, 1 or -100 (unknown)")
        logits = attribute_logits.float()
        per_label = F.binary_cross_entropy_with_logits(logits, targets.clamp(0, 1), reduction="none")
        bce_loss = (per_label * known).sum() / known.sum().clamp(min=1)
        logic_loss = self.model.logic_module.loss(torch.sigmoid(logits))
        return bce_loss, logic_loss

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        parsing_maps: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache=None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        attribute_labels: torch.Tensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        **kwargs,
    ) -> FaceInsightCausalLMOutputWithPast:
        r"""
        labels: token ids for the LM loss (-100 ignored), shape (batch, sequence).
        attribute_labels: per-image label-node targets (num_images, num_attribute_labels), 0/1, -100 where unknown.
        parsing_maps: optional label maps (num_images, H, W) in 0..18; -1 everywhere asks the in-model parser.
        """
        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        outputs = self.model(
            input_ids=input_ids,
            pixel_values=pixel_values,
            parsing_maps=parsing_maps,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            **kwargs,
        )
        hidden_states = slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep)
        logits = self.lm_head(hidden_states)

        lm_loss = bce_loss = logic_loss = None
        if labels is not None:
            lm_loss = self.loss_function(
                logits=logits,
                labels=labels,
                vocab_size=self.config.text_config.vocab_size,
                num_items_in_batch=num_items_in_batch,
            )
        if attribute_labels is not None:
            if outputs.attribute_logits is None:
                raise ValueError("attribute_labels were given without pixel_values; attributes are predicted per image")
            bce_loss, logic_loss = self._attribute_losses(outputs.attribute_logits, attribute_labels)
        elif labels is not None and outputs.attribute_logits is not None:
            logic_loss = self.model.logic_module.loss(torch.sigmoid(outputs.attribute_logits.float()))

        weighted = [
            (self.config.lm_loss_weight, lm_loss),
            (self.config.bce_loss_weight, bce_loss),
            (self.config.logic_loss_weight, logic_loss),
        ]
        parts = [weight * part for weight, part in weighted if part is not None]
        loss = torch.stack(parts).sum() if parts else None

        return FaceInsightCausalLMOutputWithPast(
            loss=loss,
            lm_loss=lm_loss,
            bce_loss=bce_loss,
            logic_loss=logic_loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            attribute_logits=outputs.attribute_logits,
            parsing_maps=outputs.parsing_maps,
        )

    @torch.no_grad()
    def predict_attributes(
        self, pixel_values: torch.FloatTensor, parsing_maps: torch.LongTensor | None = None
    ) -> FaceInsightAttributePredictions:
        """Structured per-image predictions; needs no text (the attribute head reads only the visual tokens)."""
        if parsing_maps is not None:
            parsing_maps = parsing_maps.to(self.device)
        _, _, logits, used_maps = self.model.encode_visual(pixel_values.to(self.device), parsing_maps)
        logits = logits.float()
        probabilities = torch.sigmoid(logits)
        return FaceInsightAttributePredictions(
            logits=logits,
            probabilities=probabilities,
            decisions=self.model.logic_module.decide(probabilities),
            parsing_maps=used_maps,
        )

    def prepare_inputs_for_generation(self, *args, parsing_maps=None, is_first_iteration=False, **kwargs):
        """Images and parsing maps go in the first step only; later steps read the KV cache."""
        model_inputs = super().prepare_inputs_for_generation(*args, is_first_iteration=is_first_iteration, **kwargs)
        if is_first_iteration or not kwargs.get("use_cache", True):
            model_inputs["parsing_maps"] = parsing_maps
        else:
            model_inputs.pop("pixel_values", None)
        return model_inputs


__all__ = ["FaceInsightPreTrainedModel", "FaceInsightModel", "FaceInsightForConditionalGeneration"]
