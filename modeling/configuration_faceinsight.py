"""FaceInsight configuration.

This file is uploaded to the Hub as remote code: it imports only `torch`/`transformers` and same-folder modules.

The label space is one list of graph nodes built from a *facet schema*:

* binary attributes (CelebA/LFWA style), one node each, named as given (``"Eyeglasses"``);
* categorical facets (age bin, gender, race, expression), one node per value, named ``"facet:value"``
  (``"expression:Happiness"``). Exactly one value of a categorical facet is true for a face.

The knowledge fields (correlation matrix, logic rules) refer to those node names.
"""

import copy
import math

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec
from transformers.utils import logging

logger = logging.get_logger(__name__)

# --------------------------------------------------------------------------------------------------------------------
# The face-parsing label scheme: CelebAMask-HQ's 19 classes. One place shared by the model, processor, tools and tests.
# --------------------------------------------------------------------------------------------------------------------
CELEBAMASK_HQ_LABELS = (
    "background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)  # fmt: skip
NUM_PARSING_LABELS = len(CELEBAMASK_HQ_LABELS)
# The classes that are the face itself: their share of a parsing map is the face-presence signal.
FACE_PARTS = ("skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip")

# The palette used by the CelebAMask-HQ / face-parsing.PyTorch visualisations (one RGB colour per label).
CELEBAMASK_HQ_PALETTE = (
    (0, 0, 0), (204, 0, 0), (76, 153, 0), (204, 204, 0), (51, 51, 255), (204, 0, 204), (0, 255, 255),
    (255, 204, 204), (102, 51, 0), (255, 0, 0), (102, 204, 0), (255, 255, 0), (0, 0, 153), (0, 0, 204),
    (255, 51, 153), (0, 204, 204), (0, 51, 0), (255, 153, 51), (0, 204, 0),
)  # fmt: skip

# --------------------------------------------------------------------------------------------------------------------
# The default facet schema: CelebA's 40 attributes, FairFace's age bins/gender/race, RAF-DB's 7 basic expressions.
# --------------------------------------------------------------------------------------------------------------------
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose",
    "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses",
    "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young",
)  # fmt: skip
DEFAULT_CATEGORICAL_FACETS = {
    "age": ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+"],
    "gender": ["Male", "Female"],
    "race": ["White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern"],
    "expression": ["Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral"],
}
LOGIC_RULE_TYPES = ("exclusion", "implication")
# Relations that hold by the meaning of the schema's names, whatever the data: the logic module always has them (so
# the `gender` facet and CelebA's `Male` attribute can never disagree), on top of the configured or mined rules.
DEFINITIONAL_RULES = (
    {"type": "implication", "a": "Male", "b": "gender:Male"},
    {"type": "implication", "a": "gender:Male", "b": "Male"},
)
# Where each Auto class finds its FaceInsight class in a saved folder (remote code). `save_pretrained` writes only
# the entry of the class it saves, so the config carries them all.
_MODEL_CLASS = "modeling_faceinsight.FaceInsightForConditionalGeneration"
AUTO_MAP = {
    "AutoConfig": "configuration_faceinsight.FaceInsightConfig",
    "AutoModel": _MODEL_CLASS,
    "AutoModelForImageTextToText": _MODEL_CLASS,
    "AutoModelForVision2Seq": _MODEL_CLASS,
    "AutoProcessor": "processing_faceinsight.FaceInsightProcessor",
    "AutoImageProcessor": "image_processing_faceinsight.FaceInsightImageProcessor",
}
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def categorical_node_name(facet: str, value: str) -> str:
    return f"{facet}:{value}"


def default_label_prompt(node_name: str) -> str:
    """The text whose token embeddings initialise a label's graph node (T_p^0 in the paper)."""
    if ":" in node_name:
        facet, value = node_name.split(":", 1)
        return f"a face whose {facet} is {value.replace('_', ' ')}"
    return f"a face with the attribute {node_name.replace('_', ' ').lower()}"


class FaceInsightConfig(PreTrainedConfig):
    r"""
    Configuration of a FaceInsight model: a LLaVA-1.5 style vision-language model with a face-parsing modality and
    facial-knowledge modules (Li et al., "FaceInsight: A Multimodal Large Language Model for Face Perception", 2025).

    Args:
        vision_config: config of the image tower (any transformers vision model, e.g. SigLIP or CLIP vision).
        text_config: config of the causal language model (Llama, Qwen2, SmolLM2, ...).
        parser_config: SegFormer config of the in-model face parser (19 CelebAMask-HQ labels).
        parsing_encoder_config: config of the ViT that encodes the rendered parsing map; defaults to a copy of
            `vision_config` (separate weights, initialisable from the same checkpoint).
        image_token_id / parsing_token_id: ids of the two placeholder tokens the processor expands `<image>` into.
        image_seq_length: image tokens per image (must match the vision tower's selected patch count).
        parsing_seq_length: parsing tokens per image (the parsing encoder's patches are average-pooled to this).
        binary_attributes / categorical_facets: the facet schema (graph nodes, see the module docstring).
        label_prompts / label_prompt_token_ids: per-node text and its token ids (written by the builder, which owns
            the tokenizer); without ids the node inputs are learned embeddings.
        correlation_matrix: the re-weighted label correlation matrix C_hat (N x N, self loops included); identity
            when no label statistics are known. `correlation_tau`/`correlation_omega` record how it was built.
        gcn_hidden_sizes: hidden sizes of the Correlation Constraint Module's GCN (output size is the LM width).
        region_readout: add to the CCM's logits a parsing-guided read-out: image tokens averaged within each face
            region of the parsing map, read by a learned vector per (label, region), zero at initialisation (so a new
            model starts as the plain CCM). Lets Blond_Hair look at the hair, which a mean over all tokens cannot.
        logic_rules: deterministic relations, each `{"type": "exclusion"|"implication", "a": node, "b": node}`
            ("a and b never together" / "a implies b"). One-value-per-categorical-facet is implied by the schema, and
            DEFINITIONAL_RULES (Male <=> gender:Male) always hold.
        labelled_faces: per label node, the training faces that carried its label, summed over the runs that trained
            the head (0: a node no training data covered, whose predictions are untrained); None: not recorded.
        lm_loss_weight / bce_loss_weight / logic_loss_weight: weights of the three loss parts.
    """

    model_type = "faceinsight"
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="siglip_vision_model"),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
        "parser_config": SubConfigSpec(
            config_class=AutoConfig,
            model_type="segformer",
            init_kwargs={
                "num_labels": NUM_PARSING_LABELS,
                "id2label": dict(enumerate(CELEBAMASK_HQ_LABELS)),
                "label2id": {name: i for i, name in enumerate(CELEBAMASK_HQ_LABELS)},
            },
        ),
        "parsing_encoder_config": SubConfigSpec(
            config_class=AutoConfig, model_type="siglip_vision_model", optional=True
        ),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    parser_config: dict | PreTrainedConfig | None = None
    parsing_encoder_config: dict | PreTrainedConfig | None = None

    image_token_id: int | None = None
    parsing_token_id: int | None = None
    image_seq_length: int = 196
    parsing_seq_length: int = 49
    projector_hidden_act: str = "gelu"
    multimodal_projector_bias: bool = True
    vision_feature_layer: int | list[int] = -1
    vision_feature_select_strategy: str = "full"
    parsing_feature_layer: int | list[int] = -1
    parsing_feature_select_strategy: str = "full"

    image_mean: list[float] | None = None
    image_std: list[float] | None = None
    parser_image_mean: list[float] | None = None
    parser_image_std: list[float] | None = None
    parsing_palette: list[list[int]] | None = None
    parsing_render_mean: list[float] | None = None
    parsing_render_std: list[float] | None = None

    binary_attributes: list[str] | None = None
    categorical_facets: dict[str, list[str]] | None = None
    categorical_facet_order: list[str] | None = None
    label_prompts: list[str] | None = None
    label_prompt_token_ids: list[list[int]] | None = None
    correlation_matrix: list[list[float]] | None = None
    correlation_tau: float = 0.4
    correlation_omega: float = 0.2
    gcn_hidden_sizes: list[int] | None = None
    gcn_negative_slope: float = 0.2
    region_readout: bool = True
    logic_rules: list[dict] | None = None
    labelled_faces: list[int] | None = None

    lm_loss_weight: float = 1.0
    bce_loss_weight: float = 1.0
    logic_loss_weight: float = 0.1

    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        legacy = sorted(key for key in kwargs if key.startswith("freeze_"))
        if legacy:  # configs written before 0.2 stored freezing; it is now the training recipe's choice
            logger.warning_once(
                f"FaceInsightConfig: ignoring {legacy}: freezing is a training choice (model.freeze(...)), not a "
                "model property; a loaded model trains every part"
            )
            for key in legacy:
                kwargs.pop(key)
        if isinstance(self.parser_config, dict) and not {"num_labels", "id2label"} & set(self.parser_config):
            # a parser config given without labels gets the CelebAMask-HQ scheme, as when none is given
            self.parser_config = {**self.sub_configs_defaults["parser_config"].init_kwargs, **self.parser_config}
        super().__post_init__(**kwargs)
        self.auto_map = {**AUTO_MAP, **(getattr(self, "auto_map", None) or {})}
        if self.parsing_encoder_config is None:
            self.parsing_encoder_config = copy.deepcopy(self.vision_config)
        if self.text_config.tie_word_embeddings:
            self.tie_word_embeddings = True

        self.image_mean = list(self.image_mean if self.image_mean is not None else (0.5, 0.5, 0.5))
        self.image_std = list(self.image_std if self.image_std is not None else (0.5, 0.5, 0.5))
        self.parser_image_mean = list(self.parser_image_mean or IMAGENET_MEAN)
        self.parser_image_std = list(self.parser_image_std or IMAGENET_STD)
        self.parsing_palette = [list(c) for c in (self.parsing_palette or CELEBAMASK_HQ_PALETTE)]
        self.parsing_render_mean = list(self.parsing_render_mean or self.image_mean)
        self.parsing_render_std = list(self.parsing_render_std or self.image_std)

        if self.binary_attributes is None:
            self.binary_attributes = list(CELEBA_ATTRIBUTES)
        if self.categorical_facets is None:
            self.categorical_facets = copy.deepcopy(DEFAULT_CATEGORICAL_FACETS)
        self.binary_attributes = list(self.binary_attributes)
        # JSON serialisation sorts dict keys, so the facet order (which fixes the label-node order) is kept in a list
        order = self.categorical_facet_order or list(self.categorical_facets)
        if sorted(order) != sorted(self.categorical_facets):
            raise ValueError(
                f"FaceInsightConfig: categorical_facet_order {order} does not name the facets "
                f"{sorted(self.categorical_facets)}"
            )
        self.categorical_facets = {facet: list(self.categorical_facets[facet]) for facet in order}
        self.categorical_facet_order = order
        if self.label_prompts is None:
            self.label_prompts = [default_label_prompt(name) for name in self.label_names]
        if self.gcn_hidden_sizes is None:
            self.gcn_hidden_sizes = [1024]
        self.gcn_hidden_sizes = [int(size) for size in self.gcn_hidden_sizes]
        if self.logic_rules is None:
            self.logic_rules = []
        self.logic_rules = [dict(rule) for rule in self.logic_rules]
        if self.image_token_id is None:
            self.image_token_id = self.text_config.vocab_size - 2
        if self.parsing_token_id is None:
            self.parsing_token_id = self.text_config.vocab_size - 1
        self.validate_faceinsight()

    # ---------------------------------------------------------------------------------------------------------------
    # The label space
    # ---------------------------------------------------------------------------------------------------------------
    @property
    def label_names(self) -> list[str]:
        """All graph nodes: binary attributes first, then every categorical facet's values in schema order."""
        names = list(self.binary_attributes)
        for facet, values in self.categorical_facets.items():
            names.extend(categorical_node_name(facet, value) for value in values)
        return names

    @property
    def definitional_rules(self) -> list[dict]:
        """DEFINITIONAL_RULES whose two label nodes are both in this schema."""
        names = set(self.label_names)
        return [dict(rule) for rule in DEFINITIONAL_RULES if rule["a"] in names and rule["b"] in names]

    @property
    def all_logic_rules(self) -> list[dict]:
        """What the logic module enforces: the definitional rules, then `logic_rules`, without repeats."""
        rules = self.definitional_rules
        return rules + [rule for rule in self.logic_rules if rule not in rules]

    @property
    def num_attribute_labels(self) -> int:
        return len(self.binary_attributes) + sum(len(values) for values in self.categorical_facets.values())

    @property
    def facet_label_indices(self) -> dict[str, list[int]]:
        """Node indices of each categorical facet's values."""
        indices, start = {}, len(self.binary_attributes)
        for facet, values in self.categorical_facets.items():
            indices[facet] = list(range(start, start + len(values)))
            start += len(values)
        return indices

    # ---------------------------------------------------------------------------------------------------------------
    # Validation: every error names what is wrong
    # ---------------------------------------------------------------------------------------------------------------
    def validate_faceinsight(self):
        names = self.label_names
        if len(set(names)) != len(names):
            duplicates = sorted({name for name in names if names.count(name) > 1})
            raise ValueError(f"FaceInsightConfig: duplicate label names in the facet schema: {duplicates}")
        for facet, values in self.categorical_facets.items():
            if len(values) < 2:
                raise ValueError(
                    f"FaceInsightConfig: categorical facet {facet!r} needs at least 2 values, got {values}"
                )
        num_labels = len(names)
        if len(self.label_prompts) != num_labels:
            raise ValueError(
                f"FaceInsightConfig: label_prompts has {len(self.label_prompts)} entries but the schema has "
                f"{num_labels} labels"
            )

        vocab_size = self.text_config.vocab_size
        for field in ("image_token_id", "parsing_token_id"):
            token_id = getattr(self, field)
            if not isinstance(token_id, int) or not 0 <= token_id < vocab_size:
                raise ValueError(
                    f"FaceInsightConfig: {field}={token_id!r} is outside the language model's vocabulary "
                    f"(vocab_size={vocab_size})"
                )
        if self.image_token_id == self.parsing_token_id:
            raise ValueError(f"FaceInsightConfig: image_token_id and parsing_token_id are both {self.image_token_id}")
        if self.label_prompt_token_ids is not None:
            if len(self.label_prompt_token_ids) != num_labels:
                raise ValueError(
                    f"FaceInsightConfig: label_prompt_token_ids has {len(self.label_prompt_token_ids)} entries but "
                    f"the schema has {num_labels} labels"
                )
            for label, ids in zip(names, self.label_prompt_token_ids):
                if not ids or any(not 0 <= int(i) < vocab_size for i in ids):
                    raise ValueError(
                        f"FaceInsightConfig: label_prompt_token_ids for {label!r} is empty or has ids outside "
                        f"the vocabulary (vocab_size={vocab_size}): {ids}"
                    )

        if self.labelled_faces is not None and len(self.labelled_faces) != num_labels:
            raise ValueError(
                f"FaceInsightConfig: labelled_faces has {len(self.labelled_faces)} entries but the schema has "
                f"{num_labels} labels"
            )
        if self.correlation_matrix is not None:
            rows = len(self.correlation_matrix)
            if rows != num_labels or any(len(row) != num_labels for row in self.correlation_matrix):
                shape = (rows, sorted({len(row) for row in self.correlation_matrix}))
                raise ValueError(
                    f"FaceInsightConfig: correlation_matrix must be {num_labels}x{num_labels} (one row and column "
                    f"per label of the schema), got {shape[0]} rows of lengths {shape[1]}"
                )
            for i, row in enumerate(self.correlation_matrix):
                for j, value in enumerate(row):
                    if not math.isfinite(float(value)) or float(value) < 0:
                        raise ValueError(
                            f"FaceInsightConfig: correlation_matrix[{i}][{j}]={value} must be finite and >= 0"
                        )
        if not 0.0 <= self.correlation_tau <= 1.0 or not 0.0 <= self.correlation_omega <= 1.0:
            raise ValueError(
                f"FaceInsightConfig: correlation_tau={self.correlation_tau} and correlation_omega="
                f"{self.correlation_omega} must lie in [0, 1]"
            )

        known = set(names)
        for index, rule in enumerate(self.logic_rules):
            if set(rule) != {"type", "a", "b"}:
                raise ValueError(
                    f"FaceInsightConfig: logic_rules[{index}]={rule} must have exactly the keys 'type', 'a', 'b'"
                )
            if rule["type"] not in LOGIC_RULE_TYPES:
                raise ValueError(
                    f"FaceInsightConfig: logic_rules[{index}] has type {rule['type']!r}; expected one of "
                    f"{LOGIC_RULE_TYPES}"
                )
            for side in ("a", "b"):
                if rule[side] not in known:
                    raise ValueError(
                        f"FaceInsightConfig: logic_rules[{index}] names unknown label {rule[side]!r}; labels are "
                        f"the binary attributes and 'facet:value' names of the schema"
                    )
            if rule["a"] == rule["b"]:
                raise ValueError(f"FaceInsightConfig: logic_rules[{index}] relates {rule['a']!r} to itself")

        if self.vision_feature_select_strategy not in (
            "default",
            "full",
        ) or self.parsing_feature_select_strategy not in (
            "default",
            "full",
        ):
            raise ValueError("FaceInsightConfig: feature select strategies must be 'default' (drop CLS) or 'full'")
        if self.image_seq_length < 1 or self.parsing_seq_length < 1:
            raise ValueError(
                f"FaceInsightConfig: image_seq_length={self.image_seq_length} and parsing_seq_length="
                f"{self.parsing_seq_length} must be positive"
            )
        if len(self.parsing_palette) != self.parser_config.num_labels:
            raise ValueError(
                f"FaceInsightConfig: parsing_palette has {len(self.parsing_palette)} colours but the parser has "
                f"{self.parser_config.num_labels} labels"
            )
        for loss_name in ("lm_loss_weight", "bce_loss_weight", "logic_loss_weight"):
            if getattr(self, loss_name) < 0:
                raise ValueError(f"FaceInsightConfig: {loss_name} must be >= 0, got {getattr(self, loss_name)}")


__all__ = ["FaceInsightConfig"]
