"""FaceInsight assembled from pretrained checkpoints, in bounded memory and in the target dtype.

Two starting points (Hub ids or local folders):

- `build_from_llava(SRC)`: a `LlavaForConditionalGeneration` checkpoint (LLaVA-1.5 and its family). Its vision tower,
  feature layer and select strategy, projector, LM, tokenizer and chat template are carried over unchanged; the
  parsing projector starts as a copy of the image projector, the parsing encoder (label patches) at random, or with
  `parsing_encoder_type="vision_tower"` as a copy of the vision tower.
  With no parsing token in the prompt, the result computes exactly what the LLaVA checkpoint computes.
- `build_from_pretrained(VISION, TEXT)`: a vision tower and a causal LM; the projectors start random.

Both load every part in the target dtype with `from_pretrained` (meta-device init, weights streamed), hand the
assembled state dict to `FaceInsightForConditionalGeneration.from_pretrained(None, config=..., state_dict=...)`, which
builds the model on the meta device and initialises only what no checkpoint provides (projectors, parser, knowledge
modules): no full random model is ever made to be overwritten. Peak memory stays near the size of the weights written
(`benchmarks/bench_build.py`).
"""

from __future__ import annotations

import logging
import math

import torch
from transformers import (
    AutoImageProcessor,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSemanticSegmentation,
    AutoProcessor,
    AutoTokenizer,
)

from faceinsight.hub.build import build_config, make_processor, parser_config_kwargs, vision_token_layout
from faceinsight.hub.tokenizer import IMAGE_TOKEN, PARSING_TOKEN
from faceinsight.modeling.modeling_faceinsight import FaceInsightForConditionalGeneration
from faceinsight.processing.processing_faceinsight import CHATML_TEMPLATE

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


# --------------------------------------------------------------------------------------------------------------------
# Chat templates
# --------------------------------------------------------------------------------------------------------------------
def _image_items_as_text(image_token: str) -> str:
    """A Jinja prelude that rewrites list-of-items contents (`{"type": "image"}`, `{"type": "text", ...}`) into plain
    strings with `image_token` where each image stands, so that an LM's own template, written for string contents,
    renders multimodal messages."""
    return (
        "{%- set _fi = namespace(messages=[]) -%}"
        "{%- for message in messages -%}"
        "{%- if message['content'] is string -%}{%- set _fi.messages = _fi.messages + [message] -%}"
        "{%- else -%}{%- set _text = namespace(value='') -%}"
        "{%- for item in message['content'] -%}"
        f"{{%- if item['type'] == 'image' -%}}{{%- set _text.value = _text.value + '{image_token}' -%}}"
        "{%- elif item['type'] == 'text' -%}{%- set _text.value = _text.value + item['text'] -%}{%- endif -%}"
        "{%- endfor -%}"
        "{%- set _fi.messages = _fi.messages + [dict(message, content=_text.value)] -%}"
        "{%- endif -%}{%- endfor -%}"
        "{%- set messages = _fi.messages -%}"
    )


def chat_template_for(tokenizer, image_token: str = IMAGE_TOKEN) -> str:
    """The LM's own chat template, made to emit `image_token` for image items; ChatML where the LM has none (a base
    model, or a template per task name)."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str) and template.strip():
        return _image_items_as_text(image_token) + template
    if template:
        logger.warning("the tokenizer has several named chat templates; FaceInsight uses ChatML")
    return CHATML_TEMPLATE


# --------------------------------------------------------------------------------------------------------------------
# Assembly
# --------------------------------------------------------------------------------------------------------------------
def _prefixed(state_dict: dict, prefix: str, copy: bool = False) -> dict:
    return {prefix + key: value.clone() if copy else value for key, value in state_dict.items()}


def _tower_prefix(vision_config, name: str) -> str:
    """Where a tower built from `vision_config` keeps its transformer: `model.NAME.vision_model.` for CLIP/SigLIP
    (their *VisionModel wraps one), `model.NAME.` otherwise."""
    with torch.device("meta"):
        skeleton = AutoModel.from_config(vision_config)
    return f"model.{name}." + ("vision_model." if hasattr(skeleton, "vision_model") else "")


def _vision_part(model):
    """The vision transformer inside a dual-encoder (CLIPModel/SiglipModel) or a vision-only model."""
    return model.vision_model if hasattr(model, "vision_model") else model


def _load_parser(parser: str | None, dtype: torch.dtype):
    """(SegFormer state dict or {}, its config or labelled defaults): the head is re-initialised when the checkpoint
    was not trained on the 19 CelebAMask-HQ labels."""
    if parser is None:
        return {}, parser_config_kwargs()
    source = AutoModelForSemanticSegmentation.from_pretrained(
        parser, ignore_mismatched_sizes=True, dtype=dtype, **parser_config_kwargs()
    )
    return _prefixed(source.state_dict(), "model.parser."), source.config


def _grow_vocabulary(model, tokenizer) -> None:
    """Resize the LM's embeddings when the tokenizer holds ids beyond them; never shrink a padded vocabulary
    (LLaVA-1.5's 32064 rows for a 32002-token tokenizer)."""
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))


def assemble(config, state_dict: dict, dtype: torch.dtype) -> FaceInsightForConditionalGeneration:
    """`from_pretrained` over an in-memory state dict: meta-device model, the given tensors placed, everything else
    initialised as a missing weight."""
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()  # its load report lists every new weight; one line says it here
    try:
        model = FaceInsightForConditionalGeneration.from_pretrained(
            None, config=config, state_dict=state_dict, dtype=dtype
        )
    finally:
        transformers_logging.set_verbosity(verbosity)
    new_parts = sorted({key.split(".")[1] for key in model.state_dict() if key not in state_dict and "." in key[6:]})
    logger.warning("new weights (initialised here, to be trained): %s", ", ".join(new_parts))
    return model.eval()


def _finish(model, tokenizer, source_generation_config=None):
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if source_generation_config is not None and source_generation_config.eos_token_id is not None:
        model.generation_config.eos_token_id = source_generation_config.eos_token_id
    return model


def _image_normalisation(vision: str):
    try:
        image_processor = AutoImageProcessor.from_pretrained(vision)
        return list(image_processor.image_mean), list(image_processor.image_std)
    except (OSError, ValueError, AttributeError, TypeError):
        logger.warning("no image processor found in %s; using mean/std 0.5 (SigLIP's)", vision)
        return [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]


def build_from_pretrained(
    vision: str,
    text: str,
    parser: str | None = None,
    text_gguf_file: str | None = None,
    parsing_seq_length: int | None = None,
    dtype: torch.dtype = torch.float32,
    **config_overrides,
):
    """(model, processor) from a vision tower and a causal LM. The parsing encoder starts from the vision tower's
    weights; projectors and knowledge modules start random. `parser` is a SegFormer checkpoint; without one the parser
    starts random (train it with `faceinsight train-parser`, or pass parsing maps). The processor keeps the LM's
    chat template."""
    vision_source = _vision_part(AutoModel.from_pretrained(vision, dtype=dtype))
    vision_config = vision_source.config
    image_mean, image_std = _image_normalisation(vision)

    tokenizer = AutoTokenizer.from_pretrained(text, gguf_file=text_gguf_file)
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN, PARSING_TOKEN]})
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    language_model = AutoModelForCausalLM.from_pretrained(text, gguf_file=text_gguf_file, dtype=dtype)
    _grow_vocabulary(language_model, tokenizer)

    parser_state, parser_config = _load_parser(parser, dtype)
    config = build_config(
        vision_config,
        language_model.config,
        parser_config,
        tokenizer,
        parsing_seq_length=parsing_seq_length or default_parsing_seq_length(vision_token_layout(vision_config)[0]),
        image_mean=image_mean,
        image_std=image_std,
        **config_overrides,
    )
    state_dict = {
        **_prefixed(vision_source.state_dict(), _tower_prefix(config.vision_config, "vision_tower")),
        # the rendered-map encoder starts as a copy of the tower; the label-patch encoder has no pretrained form
        **(
            _prefixed(vision_source.state_dict(), _tower_prefix(config.parsing_encoder_config, "parsing_encoder"), True)
            if config.parsing_encoder_type == "vision_tower"
            else {}
        ),
        **_prefixed(language_model.get_decoder().state_dict(), "model.language_model."),
        "lm_head.weight": language_model.get_output_embeddings().weight,
        **parser_state,
    }
    del vision_source, language_model
    model = _finish(assemble(config, state_dict, dtype), tokenizer)
    processor = make_processor(
        config, tokenizer, vision_config.image_size, image_mean, image_std, chat_template=chat_template_for(tokenizer)
    )
    return model, processor


def _llava_image_seq_length(llava) -> int:
    """Image tokens per image as the LLaVA checkpoint computes them: the tower's positions, less CLS for 'default'."""
    embeddings = _vision_part(llava.model.vision_tower).embeddings
    return embeddings.num_positions - (llava.config.vision_feature_select_strategy == "default")


def _prepare_llava_tokenizer(tokenizer, llava):
    """LLaVA's tokenizer with the parsing token (added only when missing; an embedding row only when needed)."""
    if PARSING_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_tokens([PARSING_TOKEN], special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    _grow_vocabulary(llava, tokenizer)
    return tokenizer


def _llava_layout(llava, image_processor) -> dict:
    """The config fields that make FaceInsight's image branch compute exactly what the LLaVA checkpoint computes."""
    layer, strategy = llava.config.vision_feature_layer, llava.config.vision_feature_select_strategy
    return dict(
        image_token_id=llava.config.image_token_id,
        image_seq_length=_llava_image_seq_length(llava),
        vision_feature_layer=layer,
        vision_feature_select_strategy=strategy,
        parsing_feature_layer=layer,
        parsing_feature_select_strategy=strategy,
        projector_hidden_act=llava.config.projector_hidden_act,
        multimodal_projector_bias=llava.config.multimodal_projector_bias,
        image_mean=list(image_processor.image_mean),
        image_std=list(image_processor.image_std),
    )


def default_parsing_seq_length(image_seq_length: int) -> int:
    """The parsing tokens' square grid (the label-patch encoder's) at 0.4 of the image grid's side, about a sixth
    of the image tokens (196 -> 36, 576 -> 100, 729 -> 121): a label map holds far less detail than the photo, and
    each parsing token is one more token for the LM to read."""
    return max(1, round(math.isqrt(image_seq_length) * 0.4)) ** 2


def _llava_state_dict(llava, copy_tower: bool) -> dict:
    """LLaVA's weights under FaceInsight's names (the same), plus a copy of its projector for the parsing projector
    and, with `copy_tower` (the rendered-map encoder), of its tower for the parsing encoder."""
    state = llava.state_dict()

    def part(prefix):
        return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}

    return {
        **state,
        **(_prefixed(part("model.vision_tower."), "model.parsing_encoder.", copy=True) if copy_tower else {}),
        **_prefixed(part("model.multi_modal_projector."), "model.parsing_projector.", copy=True),
    }


def build_from_llava(
    source: str,
    parser: str | None = None,
    parsing_seq_length: int | None = None,
    dtype: torch.dtype = torch.float32,
    **config_overrides,
):
    """(model, processor) from a `LlavaForConditionalGeneration` checkpoint: its tower, feature layer and select
    strategy, projector, LM, tokenizer (grown by the parsing token only if it lacks one) and chat template unchanged;
    the parsing projector starts as a copy of the image projector (the parsing encoder too with
    parsing_encoder_type="vision_tower"; label patches start random)."""
    from transformers import LlavaForConditionalGeneration

    llava = LlavaForConditionalGeneration.from_pretrained(source, dtype=dtype)
    llava_processor = AutoProcessor.from_pretrained(source)
    tokenizer = _prepare_llava_tokenizer(llava_processor.tokenizer, llava)
    image_token = tokenizer.convert_ids_to_tokens(llava.config.image_token_id)
    layout = _llava_layout(llava, llava_processor.image_processor)
    parser_state, parser_config = _load_parser(parser, dtype)
    config = build_config(
        llava.config.vision_config,
        llava.config.text_config,
        parser_config,
        tokenizer,
        parsing_seq_length=parsing_seq_length or default_parsing_seq_length(layout["image_seq_length"]),
        **{**layout, **config_overrides},
    )
    state_dict = {**_llava_state_dict(llava, copy_tower=config.parsing_encoder_type == "vision_tower"), **parser_state}
    generation_config = llava.generation_config
    del llava
    model = _finish(assemble(config, state_dict, dtype), tokenizer, generation_config)
    chat_template = llava_processor.chat_template or chat_template_for(tokenizer, image_token)
    size = config.vision_config.image_size
    processor = make_processor(
        config, tokenizer, size, config.image_mean, config.image_std, chat_template=chat_template
    )
    processor.image_token = image_token
    return model, processor


__all__ = ["build_from_llava", "build_from_pretrained", "chat_template_for", "assemble", "DTYPES"]
