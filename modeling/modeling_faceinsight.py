"""FaceInsight model: transformers' LLaVA (`models/llava/modeling_llava.py`) plus a face-parsing modality and the
paper's facial-knowledge head.

Data flow for one image (`get_image_features`):

    pixel_values ──► vision tower ──► projector ─────────────────────────────► image tokens  ─┐
         │                                                                                     ├─► scattered into the
         └─► parser (SegFormer; only when no map is given) ─► label map ─► palette render ─►  │   LM's input embeddings
             parsing encoder (ViT) ─► pool to parsing_seq_length ─► projector ─► parsing tokens┘   (placeholders)
    mean(image tokens, parsing tokens) ─► CCM (GCN label classifiers) ─► attribute logits ─► LCM (loss / decisions)
                                                                              └─► knowledge tokens (after the parsing
                                                                                  tokens, when config.knowledge_tokens)

What differs from LLaVA, and why:

* `get_image_features` returns `FaceInsightImageOutput`: LLaVA's fields (the tower's outputs, `pooler_output` = image
  tokens per image) plus the parsing tokens, attribute logits and label maps of the same images, so that `generate`
  can encode every visual input once before prefill (`mm_encoder_outputs`) and the parsing branch sees the pixels.
* Two placeholder tokens (image, parsing); `get_placeholder_mask` returns a mask for each. Parsing placeholders may
  be absent from a prompt (the LM then reads image tokens only, as LLaVA's does); image placeholders must match.
  With knowledge tokens, each image's parsing placeholders hold its parsing tokens, then its knowledge tokens (the
  head's probabilities, for the LM to read: the paper does not say how its LM sees the head). With grounded words,
  the prompt's words naming a knowledge token's label, and the prompt after them up to the answer, also carry that
  token (`ground_words`): the answer then starts where the head's view of what was asked already is. `forward` takes
  `answer_mask` for this (the ForConditionalGeneration derives it from `labels`); LLaVA has no such input.
* `_expand_multimodal_outputs` repeats the parsing tokens and logits with the image tokens (beams, several returned
  sequences); transformers' own expansion knows only `pooler_output`.
* The loss adds the attribute head's BCE and logic terms to the LM loss, all weighted here and only here.
* Freezing is a training choice (`freeze(...)`), never saved: a loaded model trains every part, as LLaVA does. The
  parser always runs in eval mode (no gradient passes its argmax; it is trained on its own by `train-parser`).

This file is uploaded to the Hub as remote code: it imports only `torch`, `transformers` and same-folder modules.
"""

import math
import re
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, AutoModelForSemanticSegmentation, GenerationMixin, LogitsProcessor, PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_outputs import (
    BaseModelOutputWithPooling,
    MultimodalBaseModelOutputWithPast,
    MultimodalCausalLMOutputWithPast,
)
from transformers.modeling_utils import slice_logits_to_keep
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput, TransformersKwargs, torch_compilable_check
from transformers.utils.deprecation import deprecate_kwarg
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults
from transformers.utils.output_capturing import select_hidden_states

from .configuration_faceinsight import FaceInsightConfig
from .knowledge_faceinsight import (
    FaceInsightCorrelationConstraintModule,
    FaceInsightKnowledgeTokens,
    FaceInsightLogicalConstraintModule,
)
from .schema_faceinsight import DESCRIPTION_PIECE, FACE_PARTS, PARSE_THIS_IMAGE, description_variants

UNKNOWN_PARSING_LABEL = PARSE_THIS_IMAGE  # the earlier name


def _renamed(old: str, new: str):
    warnings.warn(
        f"`{old}` is deprecated and will be removed in faceinsight 0.3; use `{new}`", FutureWarning, stacklevel=3
    )


FREEZABLE_PARTS = ("vision_tower", "parser", "parsing_encoder", "language_model")


@dataclass
class FaceInsightImageOutput(BaseModelOutputWithPooling):
    """What `get_image_features` returns for N images. As LLaVA's: the image tower's `last_hidden_state`,
    `hidden_states`, `attentions`, and `pooler_output`, the projected image tokens (a list of N tensors
    (image_seq_length, text width)). FaceInsight adds, for the same images: `parsing_pooler_output` (the projected
    parsing tokens, a list of N tensors (parsing_seq_length, text width)), `face_label_logits` (N, num label nodes),
    `knowledge_pooler_output` (the knowledge tokens, N tensors (knowledge_seq_length, text width), None when the
    config has none), `parsing_maps` (N, H, W), the label maps the parsing branch read, and
    `face_label_decisions` (N, num label nodes, 0./1. in the logits' dtype, as outputs hold numbers), the head's
    logic-consistent decisions where the knowledge tokens were made from them (`config.knowledge_token_source ==
    "decisions"`), else None."""

    parsing_pooler_output: list[torch.FloatTensor] | None = None
    knowledge_pooler_output: list[torch.FloatTensor] | None = None
    face_label_logits: torch.FloatTensor | None = None
    parsing_maps: torch.LongTensor | None = None
    face_label_decisions: torch.FloatTensor | None = None

    def select_images(self, order: list[int]) -> "FaceInsightImageOutput":
        """The same output for the images `order` names (repeats allowed), every per-image field taken alike."""
        index = torch.tensor(order, dtype=torch.long)

        def pick(value):
            if isinstance(value, torch.Tensor):
                return value[index.to(value.device)]
            if isinstance(value, list):
                return [value[i] for i in order]
            if isinstance(value, tuple):
                return tuple(pick(item) for item in value)
            return value

        return type(self)(**{key: pick(value) for key, value in self.items()})

    @property
    def attribute_logits(self):
        _renamed("attribute_logits", "face_label_logits")
        return self.face_label_logits


class _ImageOutputFields:
    """What an output reads from its `image_outputs` (a `FaceInsightImageOutput`, None when no image was encoded)."""

    @property
    def face_label_logits(self):
        return None if self.image_outputs is None else self.image_outputs.face_label_logits

    @property
    def attribute_logits(self):
        _renamed("attribute_logits", "face_label_logits")
        return self.face_label_logits

    @property
    def parsing_maps(self):
        return None if self.image_outputs is None else self.image_outputs.parsing_maps


@dataclass
class FaceInsightModelOutputWithPast(_ImageOutputFields, MultimodalBaseModelOutputWithPast):
    """LLaVA's output; `image_outputs` is a `FaceInsightImageOutput` (None when no image was encoded)."""


@dataclass
class FaceInsightCausalLMOutputWithPast(_ImageOutputFields, MultimodalCausalLMOutputWithPast):
    """`loss` is the weighted total; `lm_loss`, `bce_loss` and `logic_loss` are its unweighted parts
    (`loss = lm_loss_weight * lm_loss + bce_loss_weight * bce_loss + logic_loss_weight * logic_loss`)."""

    lm_loss: torch.FloatTensor | None = None
    bce_loss: torch.FloatTensor | None = None
    logic_loss: torch.FloatTensor | None = None


@dataclass
class FaceInsightFaceLabelPredictions(ModelOutput):
    """Structured predictions per image: logits and sigmoid probabilities per label node, the logic-consistent
    0/1 decisions (exactly one value per categorical facet, no rule violated), the parsing maps used and each map's
    face share (the share of its pixels that are face parts: a face-presence signal). `trained` (per label node)
    says which nodes any training data covered (None: not recorded). Column order is `config.label_names`."""

    logits: torch.FloatTensor | None = None
    probabilities: torch.FloatTensor | None = None
    decisions: torch.BoolTensor | None = None
    parsing_maps: torch.LongTensor | None = None
    face_shares: torch.FloatTensor | None = None
    trained: torch.BoolTensor | None = None


def _select_features(hidden_states, feature_layer: int | list[int], strategy: str) -> torch.Tensor:
    """LLaVA's selection: the hidden states of one layer (or several, concatenated), CLS dropped for "default"."""
    layers = [feature_layer] if isinstance(feature_layer, int) else feature_layer
    selected = [hidden_states[layer] for layer in layers]
    if strategy == "default":
        selected = [features[:, 1:] for features in selected]
    return torch.cat(selected, dim=-1)


FaceInsightAttributePredictions = FaceInsightFaceLabelPredictions  # the earlier name


class FaceInsightMultiModalProjector(nn.Module):
    """LLaVA-1.5's two-layer MLP from a vision width (times the feature layers used) to the LM width."""

    def __init__(self, config: FaceInsightConfig, vision_config, feature_layer: int | list[int]):
        super().__init__()
        text_width = config.text_config.hidden_size
        in_features = vision_config.hidden_size * (1 if isinstance(feature_layer, int) else len(feature_layer))
        self.linear_1 = nn.Linear(in_features, text_width, bias=config.multimodal_projector_bias)
        self.act = ACT2FN[config.projector_hidden_act]
        self.linear_2 = nn.Linear(text_width, text_width, bias=config.multimodal_projector_bias)

    def forward(self, features):
        return self.linear_2(self.act(self.linear_1(features)))


def class_shares(label_maps: torch.LongTensor, num_classes: int, side: int, dtype: torch.dtype) -> torch.Tensor:
    """(B, H, W) label maps -> (B, num_classes, side, side): each cell's share of pixels per class."""
    one_hot = F.one_hot(label_maps.long().clamp(0, num_classes - 1), num_classes).permute(0, 3, 1, 2)
    return F.adaptive_avg_pool2d(one_hot.to(dtype), side)


class FaceInsightLabelPatchEncoder(nn.Module):
    """The parsing map's classes embedded directly (`parsing_encoder_type="label_patches"`): (B, H, W) label maps ->
    (B, parsing_seq_length, width) tokens. The map is pooled to `parsing_map_resolution` cells a side, each cell the
    share of its pixels per class (so a thin lip or brow still counts), and each patch of the square token grid is one
    linear embedding of its cells' shares (a ViT's patch embedding over classes instead of colours), plus a learned
    position, layer-normalised. No texture to read, so no transformer layers: the geometry is in the patch."""

    def __init__(self, config: FaceInsightConfig):
        super().__init__()
        self.num_classes = config.parser_config.num_labels
        side = math.isqrt(config.parsing_seq_length)
        self.resolution = config.parsing_map_resolution or 4 * side
        width = config.parsing_encoder_config.hidden_size
        patch = self.resolution // side
        self.patch_embedding = nn.Conv2d(self.num_classes, width, kernel_size=patch, stride=patch)
        self.position_embedding = nn.Parameter(torch.zeros(side * side, width))
        self.norm = nn.LayerNorm(width)

    def forward(self, label_maps: torch.LongTensor, dtype: torch.dtype) -> torch.Tensor:
        shares = class_shares(label_maps, self.num_classes, self.resolution, dtype)
        tokens = self.patch_embedding(shares).flatten(2).transpose(1, 2) + self.position_embedding.to(dtype)
        return self.norm(tokens)


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
            size = (self.image_size, self.image_size)
            label_maps = F.interpolate(label_maps[:, None].float(), size=size, mode="nearest")[:, 0].long()
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


DESCRIPTION_PROMPT_WINDOW = 16  # a description question ends at most this many tokens before generation starts


class FaceInsightGroundedDescriptions(LogitsProcessor):
    """Descriptions that state only what the knowledge head decided: transformers' `LogitsProcessor` hook, which
    `generate` (and so `pipeline("image-text-to-text")`) applies. Per row asking for a description, `candidates` are
    the token ids of every description the decisions allow (`description_variants`: the facts decided, in the words
    and sentence order training descriptions use, with any opening, verb and pair of notable absences); at each step
    only the tokens that continue one of them are left, and the end-of-sequence token once one is complete. The LM
    chooses among them by its own scores; a row with no candidates (another question) is left as it is."""

    def __init__(self, candidates: list[list[list[int]] | None], prompt_length: int, eos_token_id: int):
        self.candidates, self.prompt_length, self.eos_token_id = candidates, prompt_length, eos_token_id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        constrained = scores.clone()
        for row, sequences in enumerate(self.candidates):
            if not sequences:
                continue
            written = input_ids[row, self.prompt_length :].tolist()
            alive = [sequence for sequence in sequences if sequence[: len(written)] == written]
            if not alive:  # a finished row (padding after its end) or one written past the constraint
                continue
            allowed = sorted({seq[len(written)] if len(seq) > len(written) else self.eos_token_id for seq in alive})
            keep = torch.full_like(scores[row], -math.inf)
            keep[allowed] = scores[row, allowed]
            constrained[row] = keep
        return constrained


class FaceInsightPreTrainedModel(PreTrainedModel):
    config: FaceInsightConfig
    base_model_prefix = "model"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_attention_backend = True
    _can_compile_fullgraph = False  # the parsing branch validates maps and parses on demand (data-dependent)
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
            if module.parsing_readout is not None:
                init.zeros_(module.parsing_readout)
        if isinstance(module, FaceInsightLabelPatchEncoder):
            init.normal_(module.position_embedding, std=0.02)
        if isinstance(module, FaceInsightKnowledgeTokens):  # one shared direction to start (see its docstring)
            init.copy_(module.evidence, torch.randn(1, module.evidence.shape[1]).mul(0.02).expand_as(module.evidence))

    @classmethod
    def is_custom_code(cls) -> bool:
        """False, so that weight initialisation treats FaceInsight as transformers treats its own models.
        transformers hands a custom-code model's flag down to every sub-model, and then skips the `_init_weights` of
        modules without parameters of their own (for remote code that writes weights in place, outside
        `transformers.initialization`). That would leave the library's own towers (SigLIP's attention, say) initialised
        differently when loaded from a checkpoint that lacks them than when built. FaceInsight initialises through
        `transformers.initialization` only and ties parameters, never modules, which is all the flag guards against."""
        return False

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
    """Vision tower, parsing branch, projectors, knowledge head and the language model (without LM head)."""

    def __init__(self, config: FaceInsightConfig):
        super().__init__(config)
        self.vision_tower = AutoModel.from_config(config.vision_config)
        self.multi_modal_projector = FaceInsightMultiModalProjector(
            config, config.vision_config, config.vision_feature_layer
        )
        self.parser = AutoModelForSemanticSegmentation.from_config(config.parser_config)
        self.parser_input_normalizer = FaceInsightParserInputNormalizer(config)
        self.parsing_renderer = FaceInsightParsingRenderer(config)
        self.parsing_encoder = (
            FaceInsightLabelPatchEncoder(config)
            if config.parsing_encoder_type == "label_patches"
            else AutoModel.from_config(config.parsing_encoder_config)
        )
        self.parsing_projector = FaceInsightMultiModalProjector(
            config, config.parsing_encoder_config, config.parsing_feature_layer
        )
        self.correlation_module = FaceInsightCorrelationConstraintModule(config)
        self.logic_module = FaceInsightLogicalConstraintModule(config)
        self.knowledge_tokens = FaceInsightKnowledgeTokens(config) if config.knowledge_tokens else None
        self.language_model = AutoModel.from_config(config.text_config)
        self.frozen_parts = set()
        # training only, not saved: the share of faces whose knowledge tokens are made from their labels
        self.knowledge_teacher_forcing = 0.0
        self.post_init()

    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    # -- training choices ---------------------------------------------------------------------------------------------
    def freeze(self, *parts: str):
        """Give `parts` (of FREEZABLE_PARTS) no gradients, and keep them in eval mode while the rest trains, so
        their dropout and BatchNorm statistics never move (open_clip's `lock_image_tower`, for every tower). A
        training recipe's choice: it is not saved, and a loaded model trains every part."""
        unknown = sorted(set(parts) - set(FREEZABLE_PARTS))
        if unknown:
            raise ValueError(f"freeze: unknown parts {unknown}; FaceInsight's parts are {list(FREEZABLE_PARTS)}")
        for part in parts:
            getattr(self, part).requires_grad_(False).eval()  # `train` below keeps it so
        self.frozen_parts.update(parts)
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        for part in ("parser", *sorted(self.frozen_parts)):  # the parser: no gradient passes its argmax
            getattr(self, part).eval()
        return self

    # -- the parsing branch -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def parse_faces(self, pixel_values: torch.Tensor) -> torch.LongTensor:
        """The in-model parser's label maps (B, H, W) at the resolution of `pixel_values`."""
        parser_inputs = self.parser_input_normalizer(pixel_values)
        size = self.config.parser_image_size
        if size is not None and tuple(parser_inputs.shape[-2:]) != (size, size):
            parser_inputs = F.interpolate(parser_inputs, size=(size, size), mode="bilinear", align_corners=False)
        logits = self.parser(pixel_values=parser_inputs, return_dict=True).logits
        # channels-last: the same values, the upsampling and the per-pixel argmax over classes ~6x faster on a CPU
        logits = logits.float().contiguous(memory_format=torch.channels_last)
        logits = F.interpolate(logits, size=pixel_values.shape[-2:], mode="bilinear", align_corners=False)
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
        parsing_maps = parsing_maps.to(pixel_values.device).long()
        low, high = int(parsing_maps.min()), int(parsing_maps.max())
        if low < PARSE_THIS_IMAGE or high >= num_labels:
            raise ValueError(
                f"parsing_maps holds labels in [{low}, {high}]; valid labels are 0..{num_labels - 1} "
                f"(and {PARSE_THIS_IMAGE} for 'parse this image')"
            )
        missing = (parsing_maps == PARSE_THIS_IMAGE).flatten(1).any(1)
        if missing.any():
            parsed = self.parse_faces(pixel_values[missing])
            if parsed.shape[-2:] != parsing_maps.shape[-2:]:
                parsed = F.interpolate(parsed[:, None].float(), size=parsing_maps.shape[-2:], mode="nearest")[:, 0]
            parsing_maps = parsing_maps.clone()
            parsing_maps[missing] = parsed.long()
        return parsing_maps

    def get_parsing_features(self, parsing_maps: torch.LongTensor, dtype: torch.dtype) -> torch.Tensor:
        """Label maps -> projected parsing tokens (B, parsing_seq_length, text width)."""
        if self.config.parsing_encoder_type == "label_patches":
            return self.parsing_projector(self.parsing_encoder(parsing_maps, dtype))
        rendered = self.parsing_renderer(parsing_maps, dtype)
        layer = self.config.parsing_feature_layer
        outputs = self.parsing_encoder(rendered, output_hidden_states=layer, return_dict=True)
        features = _select_features(outputs.hidden_states, layer, self.config.parsing_feature_select_strategy)
        tokens, length = features.shape[1], self.config.parsing_seq_length
        if tokens != length:  # average-pooled to parsing_seq_length: over the 2-D patch grid when both are squares
            side, target_side = math.isqrt(tokens), math.isqrt(length)
            if side * side == tokens and target_side * target_side == length:
                grid = features.transpose(1, 2).reshape(features.shape[0], -1, side, side)
                features = F.adaptive_avg_pool2d(grid, target_side).flatten(2).transpose(1, 2)
            else:
                features = F.adaptive_avg_pool1d(features.transpose(1, 2), length).transpose(1, 2)
        return self.parsing_projector(features)

    # -- the knowledge head -------------------------------------------------------------------------------------------
    def region_pooled_features(self, image_features: torch.Tensor, parsing_maps: torch.LongTensor):
        """Image tokens averaged within each parsing region: (B, R, d) features and (B, R) which regions are present.
        A token counts towards a region by the share of its pixels that carry the region's label."""
        num_regions = self.config.parser_config.num_labels
        side = math.isqrt(image_features.shape[1])
        if side * side != image_features.shape[1]:
            raise ValueError(
                f"region_readout needs a square grid of image tokens, got {image_features.shape[1]} tokens; set "
                "config.region_readout=False for this vision tower"
            )
        shares = class_shares(parsing_maps, num_regions, side, image_features.dtype).flatten(2)  # (B, R, T)
        mass = shares.sum(-1, keepdim=True)
        return (shares / mass.clamp(min=1e-6)) @ image_features, mass.squeeze(-1) > 0

    def knowledge_head_logits(self, image_features, parsing_features, parsing_maps=None) -> torch.Tensor:
        """(B, num label nodes) from both modalities' tokens: the paper's CCM, plus the region read-out."""
        # each modality weighs the same, whatever its token count (parsing tokens are pooled to fewer)
        pooled = (image_features.mean(1) + parsing_features.mean(1)) / 2
        regions = present = None
        if self.config.region_readout and parsing_maps is not None:
            regions, present = self.region_pooled_features(image_features, parsing_maps)
        return self.correlation_module(pooled, self.get_input_embeddings(), regions, present, parsing_features)

    # -- LLaVA's interface --------------------------------------------------------------------------------------------
    @merge_with_config_defaults
    @can_return_tuple
    @select_hidden_states("vision_feature_layer")
    def get_image_features(
        self,
        pixel_values: torch.FloatTensor,
        parsing_maps: torch.LongTensor | None = None,
        vision_feature_layer: int | list[int] | None = None,
        vision_feature_select_strategy: str | None = None,
        knowledge_labels: torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple | FaceInsightImageOutput:
        """Every visual input of N images: image tokens (as LLaVA's), parsing tokens, attribute logits and the label
        maps used. `parsing_maps` (N, H, W) in 0..18, -1 where the in-model parser should parse; None parses all.
        `knowledge_labels` (N, num_label_nodes; training only): the faces' labels, for knowledge teacher forcing."""
        pixel_values = pixel_values.to(self.vision_tower.dtype)
        image_outputs = self.vision_tower(pixel_values, return_dict=True, **kwargs)
        selected = _select_features(image_outputs.hidden_states, vision_feature_layer, vision_feature_select_strategy)
        image_features = self.multi_modal_projector(selected)
        used_maps = self.resolve_parsing_maps(pixel_values, parsing_maps)
        parsing_features = self.get_parsing_features(used_maps, image_features.dtype)
        face_label_logits = self.knowledge_head_logits(image_features, parsing_features, used_maps)
        knowledge_features = decided = None  # what the head perceives, as tokens for the LM, when the config has them
        if self.knowledge_tokens is not None:
            read = face_label_logits.detach()

            def certain(zero_one):  # 0/1 labels or decisions as the logits of a sure head: the same for both
                return (2 * zero_one.to(read.dtype) - 1) * 8.0

            if self.config.knowledge_token_source == "decisions":  # what the structured prediction says, as certain
                decided = self.logic_module.decide(self.logic_module.probabilities(read))
                read = certain(decided)
            # knowledge teacher forcing (training only): for a random `knowledge_teacher_forcing` share of the faces,
            # the tokens read their known labels as certain logits (+-8) instead of the head's, so the LM learns to
            # read them from a clean signal; unknown labels (-100) keep the head's; a shape mismatch is the loss's
            forcing = self.training and self.knowledge_teacher_forcing > 0 and knowledge_labels is not None
            if forcing and knowledge_labels.shape == read.shape:
                labels = knowledge_labels.to(read.device)
                chosen = torch.rand(labels.shape[0], 1, device=read.device) < self.knowledge_teacher_forcing
                read = torch.where(chosen & (labels != -100), certain(labels.clamp(min=0)), read)
            node_inputs = self.correlation_module.node_inputs(self.get_input_embeddings())
            knowledge_features = self.knowledge_tokens(read, node_inputs)
        return FaceInsightImageOutput(
            last_hidden_state=image_outputs.last_hidden_state,
            pooler_output=list(image_features),
            hidden_states=image_outputs.hidden_states,
            attentions=image_outputs.attentions,
            parsing_pooler_output=list(parsing_features),
            knowledge_pooler_output=None if knowledge_features is None else list(knowledge_features),
            face_label_logits=face_label_logits,
            parsing_maps=used_maps,
            face_label_decisions=None if decided is None else decided.to(face_label_logits.dtype),
        )

    def placeholder_positions(self, input_ids, inputs_embeds, token_id: int) -> torch.BoolTensor:
        """(B, T) where `token_id` stands, read from `input_ids` or, without them, from the embeddings."""
        if input_ids is not None:
            return input_ids == token_id
        placeholder = self.get_input_embeddings()(torch.tensor(token_id, device=inputs_embeds.device))
        return (inputs_embeds == placeholder).all(-1)

    def get_placeholder_mask(self, input_ids, inputs_embeds, image_features, parsing_features):
        """LLaVA's `get_placeholder_mask` for both of FaceInsight's placeholders: (image mask, parsing mask), each
        (B, T, 1), from `input_ids` or `inputs_embeds`. Image placeholders must match the image features one to one;
        parsing placeholders must match the parsing features, or be absent (the LM then reads image tokens only)."""
        image_mask = self.placeholder_positions(input_ids, inputs_embeds, self.config.image_token_id)
        parsing_mask = self.placeholder_positions(input_ids, inputs_embeds, self.config.parsing_token_id)
        n_image, n_parsing = image_mask.sum(), parsing_mask.sum()
        torch_compilable_check(
            n_image * inputs_embeds.shape[-1] == image_features.numel(),
            lambda: (
                f"Image features and image tokens do not match, tokens: {int(n_image)}, features: "
                f"{image_features.shape[0]} (build inputs with FaceInsightProcessor, one <image> per image, untruncated)"
            ),
        )
        torch_compilable_check(
            (n_parsing == 0) | (n_parsing * inputs_embeds.shape[-1] == parsing_features.numel()),
            lambda: (
                f"Parsing features and parsing tokens do not match, tokens: {int(n_parsing)}, features: "
                f"{parsing_features.shape[0]} (each image's parsing tokens follow its image tokens)"
            ),
        )
        return image_mask.unsqueeze(-1), parsing_mask.unsqueeze(-1)

    def merge_visual_tokens(self, input_ids, inputs_embeds, image_outputs: FaceInsightImageOutput, answer_mask=None):
        """inputs_embeds with the image tokens, and each image's parsing then knowledge tokens, scattered into their
        placeholders; with grounded words (`config.ground_knowledge_words`), the prompt's words naming a knowledge
        token's label, and what follows them up to an answer, carry that token of the image they follow.
        `answer_mask` (B, T): the model's own answers, never grounded."""
        image_features = torch.cat(image_outputs.pooler_output).to(inputs_embeds.device, inputs_embeds.dtype)
        if image_outputs.parsing_pooler_output is None:
            raise ValueError(
                "The pre-encoded image output carries no parsing tokens (generate's prefill_chunk_size keeps image "
                "tokens only, which FaceInsight cannot use); generate without prefill chunking"
            )
        per_image = image_outputs.parsing_pooler_output
        if image_outputs.knowledge_pooler_output is not None:
            per_image = [torch.cat(pair) for pair in zip(per_image, image_outputs.knowledge_pooler_output)]
        parsing_features = torch.cat(per_image).to(inputs_embeds.device, inputs_embeds.dtype)
        image_mask, parsing_mask = self.get_placeholder_mask(input_ids, inputs_embeds, image_features, parsing_features)
        text_embeds = inputs_embeds
        inputs_embeds = inputs_embeds.masked_scatter(image_mask, image_features)
        if parsing_mask.any():
            inputs_embeds = inputs_embeds.masked_scatter(parsing_mask, parsing_features)
        # words are grounded only where the prompt carries the knowledge tokens (parsing placeholders are all there
        # or none are): a prompt without them, such as LLaVA's processor renders, reads as LLaVA's would
        grounded = self.config.ground_knowledge_words and image_outputs.knowledge_pooler_output is not None
        if grounded and parsing_mask.any():
            grounding = self.ground_words(input_ids, text_embeds, image_mask.squeeze(-1), image_outputs, answer_mask)
            inputs_embeds = inputs_embeds + grounding
        return inputs_embeds

    def ground_words(self, input_ids, text_embeds, image_mask, image_outputs, answer_mask=None) -> torch.Tensor:
        """(B, T, d): what grounded words add to the text (`FaceInsightKnowledgeTokens.ground_words`), each position
        reading the knowledge tokens of the image it follows. Without `input_ids` the words are found where their
        tokens' embedding rows stand in `text_embeds`, as `placeholder_positions` finds placeholders."""
        if input_ids is None:
            input_ids = torch.full(text_embeds.shape[:2], -1, dtype=torch.long, device=text_embeds.device)
            vocabulary = self.knowledge_tokens.word_ids.unique()
            for token_id in vocabulary[vocabulary >= 0].tolist():
                input_ids[self.placeholder_positions(None, text_embeds, token_id)] = token_id
        starts = image_mask & ~nn.functional.pad(image_mask, (1, 0))[:, :-1]  # the first token of each image
        image_index = starts.flatten().cumsum(0).view_as(image_mask) - 1  # the last image begun, row-major
        image_index = torch.where(starts.cumsum(1) > 0, image_index, -1)  # none before a row's first image
        knowledge = torch.stack(image_outputs.knowledge_pooler_output).to(text_embeds.device, text_embeds.dtype)
        return self.knowledge_tokens.ground_words(input_ids, image_index, knowledge, answer_mask)

    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        parsing_maps: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache=None,
        inputs_embeds: torch.FloatTensor | None = None,
        vision_feature_layer: int | list[int] | None = None,
        vision_feature_select_strategy: str | None = None,
        mm_encoder_outputs: dict[str, FaceInsightImageOutput] | None = None,
        knowledge_labels: torch.Tensor | None = None,
        answer_mask: torch.BoolTensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple | FaceInsightModelOutputWithPast:
        if (input_ids is None) ^ (inputs_embeds is not None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        if pixel_values is not None and mm_encoder_outputs is not None:
            raise ValueError("You cannot specify both pixel_values and mm_encoder_outputs at the same time")
        if parsing_maps is not None and pixel_values is None:
            raise ValueError("parsing_maps were given without pixel_values; pass the images they belong to")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)

        mm_encoder_outputs = dict(mm_encoder_outputs) if mm_encoder_outputs is not None else {}
        if mm_encoder_outputs.get("image") is None and pixel_values is not None:
            mm_encoder_outputs["image"] = self.get_image_features(
                pixel_values=pixel_values,
                parsing_maps=parsing_maps,
                vision_feature_layer=vision_feature_layer,
                vision_feature_select_strategy=vision_feature_select_strategy,
                knowledge_labels=knowledge_labels,
                return_dict=True,
                **kwargs,
            )
        image_outputs = mm_encoder_outputs.get("image")
        if image_outputs is not None:
            inputs_embeds = self.merge_visual_tokens(input_ids, inputs_embeds, image_outputs, answer_mask)

        outputs = self.language_model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            **kwargs,
        )
        return FaceInsightModelOutputWithPast(**outputs, image_outputs=image_outputs)


class FaceInsightForConditionalGeneration(FaceInsightPreTrainedModel, GenerationMixin):
    """FaceInsight with the LM head: chat generation and structured face predictions from one forward pass."""

    _tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}
    _tp_plan = {"lm_head": "colwise_gather_output"}

    def __init__(self, config: FaceInsightConfig):
        super().__init__(config)
        self.model = FaceInsightModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def freeze(self, *parts: str):
        """`FaceInsightModel.freeze`; freezing the language model freezes its head too."""
        self.model.freeze(*parts)
        if "language_model" in parts:
            self.lm_head.requires_grad_(False)
        return self

    def get_image_features(
        self, pixel_values, parsing_maps=None, vision_feature_layer=None, vision_feature_select_strategy=None, **kwargs
    ):
        return self.model.get_image_features(
            pixel_values=pixel_values,
            parsing_maps=parsing_maps,
            vision_feature_layer=vision_feature_layer,
            vision_feature_select_strategy=vision_feature_select_strategy,
            **kwargs,
        )

    def resize_token_embeddings(self, *args, **kwargs):
        """As transformers' resize; label prompts whose token ids a smaller vocabulary drops become learned node
        inputs of the CCM, starting from what the prompts gave before the resize, and if it drops a grounded word's
        tokens, no word is grounded (nor a description, if it drops one of theirs)."""
        head = self.model.correlation_module
        before = head.node_inputs(self.get_input_embeddings()).detach().clone()
        embeddings = super().resize_token_embeddings(*args, **kwargs)
        ids = self.config.label_prompt_token_ids
        if ids is not None and max(max(row) for row in ids) >= embeddings.num_embeddings:
            self.config.label_prompt_token_ids = None
            head.learn_node_inputs(before)
        words = self.config.knowledge_word_token_ids  # spellings the smaller vocabulary cannot write are dropped
        if words is not None and any(i >= embeddings.num_embeddings for names in words for ids in names for i in ids):
            self.config.knowledge_word_token_ids = None
            self.refresh_config_buffers()
        spelled = self.config.description_token_ids  # and so are the descriptions' (then none is grounded)
        if spelled is not None:
            spellings = [*spelled["questions"], *spelled["pieces"].values()]
            if any(i >= embeddings.num_embeddings for ids in spellings for i in ids):
                self.config.description_token_ids = None
        return embeddings

    # -- the loss: LM + the attribute head's BCE and logic terms, weighted here only ---------------------------------
    def _losses(self, logits, image_outputs, labels, face_labels, num_images_in_batch, **kwargs):
        """(total, LM, BCE, logic) losses, each None when its targets are absent; the total weighs them by the
        config's loss weights. The face-label losses are per image (BCE over its labelled nodes, -100 marking nodes
        a dataset lacks; the mean rule violation), summed over images and divided by `num_images_in_batch` (the
        images of the whole accumulated, all-process batch, as `num_items_in_batch` counts tokens), or averaged over
        this batch's images."""
        config = self.config
        face_label_logits = None if image_outputs is None else image_outputs.face_label_logits
        lm_loss = bce_loss = logic_loss = None
        if labels is not None:
            lm_loss = self.loss_function(
                logits=logits, labels=labels, vocab_size=config.text_config.vocab_size, **kwargs
            )
        if face_labels is not None and face_label_logits is None:
            raise ValueError("face_labels were given without pixel_values; face labels are predicted per image")
        if face_label_logits is not None and (labels is not None or face_labels is not None):
            head_logits = face_label_logits.float()
            images = head_logits.shape[0]
            if num_images_in_batch is not None:
                images = torch.as_tensor(num_images_in_batch, device=head_logits.device).clamp(min=1)
            logic_loss = self.model.logic_module.loss(torch.sigmoid(head_logits), reduction="none").sum() / images
        if face_labels is not None:
            expected = (face_label_logits.shape[0], config.num_label_nodes)
            if tuple(face_labels.shape) != expected:
                raise ValueError(
                    f"face_labels must have shape (num_images, num_label_nodes) = {expected}, got "
                    f"{tuple(face_labels.shape)}; columns follow config.label_names, -100 marks unknown labels"
                )
            face_labels = face_labels.to(head_logits.device)
            known, targets = face_labels != -100, face_labels.float()
            if bool(((targets != 0) & (targets != 1) & known).any()):
                raise ValueError("face_labels must hold 0, 1 or -100 (unknown)")
            per_label = F.binary_cross_entropy_with_logits(head_logits, targets.clamp(0, 1), reduction="none")
            bce_loss = ((per_label * known).sum(1) / known.sum(1).clamp(min=1)).sum() / images
        weights = (config.lm_loss_weight, config.bce_loss_weight, config.logic_loss_weight)
        parts = [weight * part for weight, part in zip(weights, (lm_loss, bce_loss, logic_loss)) if part is not None]
        return (torch.stack(parts).sum() if parts else None), lm_loss, bce_loss, logic_loss

    @can_return_tuple
    @deprecate_kwarg("past_key_values", "5.40.0", new_name="cache")
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.FloatTensor | None = None,
        parsing_maps: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache=None,
        inputs_embeds: torch.FloatTensor | None = None,
        vision_feature_layer: int | list[int] | None = None,
        vision_feature_select_strategy: str | None = None,
        labels: torch.LongTensor | None = None,
        face_labels: torch.Tensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        mm_encoder_outputs: dict[str, FaceInsightImageOutput] | None = None,
        num_images_in_batch: int | torch.Tensor | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple | FaceInsightCausalLMOutputWithPast:
        r"""
        labels: token ids for the LM loss (-100 ignored), shape (batch, sequence); `shift_labels` and
            `num_items_in_batch` reach the loss as in transformers' LLaVA.
        face_labels: per-image label-node targets (num_images, num_label_nodes), 0/1, -100 where unknown.
        parsing_maps: optional label maps (num_images, H, W) in 0..18; -1 everywhere asks the in-model parser.
        num_images_in_batch: images of the whole accumulated batch (the Trainer's `num_items_in_batch`, for images);
            the BCE and logic terms are then sums over this batch's images divided by it.
        """
        if "attribute_labels" in kwargs:
            _renamed("attribute_labels", "face_labels")
            face_labels = kwargs.pop("attribute_labels")
        outputs = self.model(
            input_ids=input_ids,
            pixel_values=pixel_values,
            parsing_maps=parsing_maps,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            inputs_embeds=inputs_embeds,
            vision_feature_layer=vision_feature_layer,
            vision_feature_select_strategy=vision_feature_select_strategy,
            mm_encoder_outputs=mm_encoder_outputs,
            knowledge_labels=face_labels if self.training else None,
            answer_mask=self.answer_mask(labels, kwargs.get("shift_labels")),
            **kwargs,
        )
        hidden_states = slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep)
        logits = self.lm_head(hidden_states)
        loss, lm_loss, bce_loss, logic_loss = self._losses(
            logits, outputs.image_outputs, labels, face_labels, num_images_in_batch, **kwargs
        )
        return FaceInsightCausalLMOutputWithPast(
            loss=loss,
            lm_loss=lm_loss,
            bce_loss=bce_loss,
            logic_loss=logic_loss,
            logits=logits,
            cache=outputs.cache,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            image_outputs=outputs.image_outputs,
        )

    @staticmethod
    def answer_mask(labels=None, shift_labels=None) -> torch.BoolTensor | None:
        """(B, T) True at the tokens the model is trained to write (labels != -100; `shift_labels` give token t's
        label at t - 1), None without labels (generation: the whole input is prompt)."""
        if labels is not None:
            return labels != -100
        if shift_labels is not None:
            return nn.functional.pad(shift_labels != -100, (1, 0))[:, :-1]
        return None

    @torch.no_grad()
    def predict_face_labels(
        self, pixel_values: torch.FloatTensor, parsing_maps: torch.LongTensor | None = None
    ) -> FaceInsightFaceLabelPredictions:
        """Structured per-image predictions over every label node; needs no text (the knowledge head reads only the
        visual tokens)."""
        image_outputs = self.model.get_image_features(pixel_values.to(self.device), parsing_maps, return_dict=True)
        logits = image_outputs.face_label_logits.float()
        probabilities = self.model.logic_module.probabilities(logits)  # calibrated, where the config says how
        decisions = self.logic_consistent_decisions(image_outputs, probabilities)
        labelled = self.config.labelled_faces
        # per map, the share of pixels labelled as a face part (skin, nose, eyes, brows, mouth, lips)
        face_parts = [int(i) for i, name in self.config.parser_config.id2label.items() if name in FACE_PARTS]
        face_parts = torch.tensor(face_parts, device=image_outputs.parsing_maps.device)
        return FaceInsightFaceLabelPredictions(
            logits=logits,
            probabilities=probabilities,
            decisions=decisions,
            parsing_maps=image_outputs.parsing_maps,
            face_shares=torch.isin(image_outputs.parsing_maps, face_parts).flatten(1).float().mean(1),
            trained=None if labelled is None else torch.tensor([count > 0 for count in labelled]),
        )

    def logic_consistent_decisions(self, image_outputs: FaceInsightImageOutput, probabilities=None) -> torch.Tensor:
        """(N, num label nodes) bool: the decisions made for the knowledge tokens when there are some, else the LCM's
        search on the (calibrated) `probabilities`, computed from the logits when not given."""
        if image_outputs.face_label_decisions is not None:
            return image_outputs.face_label_decisions.bool()
        logic = self.model.logic_module
        return logic.decide(
            logic.probabilities(image_outputs.face_label_logits) if probabilities is None else probabilities
        )

    def predict_attributes(self, *args, **kwargs) -> FaceInsightFaceLabelPredictions:
        """The earlier name of `predict_face_labels` (it predicts every label node, not only the attributes)."""
        _renamed("predict_attributes", "predict_face_labels")
        return self.predict_face_labels(*args, **kwargs)

    def face_shares(self, parsing_maps: torch.LongTensor) -> torch.FloatTensor:
        """Deprecated: read `predict_face_labels(...).face_shares` (per map, the share of face-part pixels)."""
        _renamed("FaceInsightForConditionalGeneration.face_shares", "predict_face_labels(...).face_shares")
        parts = [int(i) for i, name in self.config.parser_config.id2label.items() if name in FACE_PARTS]
        return torch.isin(parsing_maps, torch.tensor(parts, device=parsing_maps.device)).flatten(1).float().mean(1)

    # -- grounded descriptions ------------------------------------------------------------------------------------------
    def _get_logits_processor(self, generation_config, *args, **kwargs):
        """transformers' logits processors, plus `FaceInsightGroundedDescriptions` for the rows that ask for a
        description (`config.grounded_descriptions`)."""
        processors = super()._get_logits_processor(generation_config, *args, **kwargs)
        grounded = self.grounded_description_processor(
            kwargs.get("encoder_input_ids"), kwargs.get("model_kwargs") or {}, generation_config
        )
        if grounded is not None:
            processors.append(grounded)
        return processors

    def grounded_description_processor(self, prompt_ids, model_kwargs: dict, generation_config):
        """The processor that keeps each description to its image's decisions, or None where there is nothing to
        ground: the config's switch off, no prompt ids or images, no end-of-sequence token, no row asking for a
        description. `prompt_ids` are generate's inputs before beams or returned sequences repeat them."""
        spelled = self.config.description_token_ids
        image_outputs = (model_kwargs.get("mm_encoder_outputs") or {}).get("image")
        eos = generation_config.eos_token_id
        eos = eos[0] if isinstance(eos, (list, tuple)) and eos else eos
        if not (self.config.grounded_descriptions and spelled) or prompt_ids is None or image_outputs is None:
            return None
        if eos is None or prompt_ids.dim() != 2 or prompt_ids.is_floating_point():
            return None
        expand = max(generation_config.num_beams or 1, generation_config.num_return_sequences or 1)
        rows = prompt_ids.repeat_interleave(expand, dim=0)  # as generate expands them, and their images with them
        per_row = (rows == self.config.image_token_id).sum(-1) // self.config.image_seq_length
        last_images = torch.where(per_row > 0, per_row.cumsum(0) - 1, -1)  # each row's last image, -1 for none
        decisions = self.logic_consistent_decisions(image_outputs)
        candidates = []
        for row, last_image in zip(rows.tolist(), last_images.tolist()):
            asks = last_image >= 0 and self._asks_for_description(row, spelled["questions"])
            candidates.append(self.description_candidates(decisions[last_image]) if asks else None)
        if not any(candidates):
            return None
        return FaceInsightGroundedDescriptions(candidates, prompt_ids.shape[1], int(eos))

    @staticmethod
    def _asks_for_description(row: list[int], questions: list[list[int]]) -> bool:
        """A description question's tokens end within DESCRIPTION_PROMPT_WINDOW tokens of the prompt's end."""
        for question in questions:
            tail = row[-(DESCRIPTION_PROMPT_WINDOW + len(question)) :]
            for start in range(len(tail) - len(question) + 1):
                if tail[start : start + len(question)] == question:
                    return True
        return False

    def description_candidates(self, decisions: torch.Tensor) -> list[list[int]] | None:
        """The token ids of every description one face's decisions allow (None when a piece has no spelling)."""
        pieces = self.config.description_token_ids["pieces"]
        labels = self.config.decided_labels(decisions.tolist())
        candidates = []
        for text in description_variants(labels):
            spelled = [pieces.get(piece) for piece in re.findall(DESCRIPTION_PIECE, text)]
            if any(ids is None for ids in spelled):
                return None
            candidates.append([i for ids in spelled for i in ids])
        return candidates

    def _expand_multimodal_outputs(self, input_ids, mm_encoder_output, expand_size=1, inputs_embeds=None):
        """generate() repeats each sample `expand_size` times (beams, several returned sequences), and each sample's
        images go with it: [A, B] -> [A, B, A, B] for a sample holding A and B. Every per-image field is repeated,
        the parsing tokens and attribute logits with the image tokens."""
        image_outputs = mm_encoder_output.get("image")
        if image_outputs is None or expand_size == 1:
            return mm_encoder_output
        if input_ids is not None and input_ids.numel() == 0:
            input_ids = None
        mask = self.model.placeholder_positions(input_ids, inputs_embeds, self.config.image_token_id)
        per_sample = (mask.sum(-1) // self.config.image_seq_length).tolist()
        starts = [sum(per_sample[:sample]) for sample in range(len(per_sample))]
        order = [
            start + k for start, count in zip(starts, per_sample) for _ in range(expand_size) for k in range(count)
        ]
        return {**mm_encoder_output, "image": image_outputs.select_images(order)}


__all__ = ["FaceInsightPreTrainedModel", "FaceInsightModel", "FaceInsightForConditionalGeneration"]
