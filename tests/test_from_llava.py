"""`faceinsight build --from-llava` and `--dtype`, and the LM's own chat template: tiny LLaVA checkpoints of both tower
styles (CLIP, CLS dropped at layer -2; SigLIP, all patches of layer -1) saved as local folders, as a user's
`llava-hf/llava-1.5-7b-hf` would be."""

import pytest
import torch
from PIL import Image
from safetensors import safe_open
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    CLIPImageProcessor,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    SiglipImageProcessor,
)

from faceinsight import FaceInsightForConditionalGeneration, FaceInsightProcessor
from faceinsight.commands import main
from faceinsight.hub.assemble import build_from_llava
from faceinsight.hub.build import TINY_TEXT, TINY_VISION
from faceinsight.hub.tokenizer import IMAGE_TOKEN, PARSING_TOKEN, build_tiny_tokenizer
from faceinsight.training.trainer import FaceInsightCollator
from helpers import load_check_report

# LLaVA-1.5's own template (llava-hf), written here for the tiny tokenizer
LLAVA_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% for item in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for item in message['content'] | selectattr('type', 'equalto', 'text') %}{{ item['text'] + ' ' }}{% endfor %}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
TOWERS = {
    # style: (vision model type, feature layer, select strategy, extra LM rows beyond the tokenizer)
    "clip": ("clip_vision_model", -2, "default", 6),  # a padded vocabulary (LLaVA-1.5: 32064 rows, 32002 tokens)
    "siglip": ("siglip_vision_model", -1, "full", 0),  # exactly the tokenizer: the parsing token needs a new row
}


def make_llava_folder(folder, style: str, seed: int = 0):
    model_type, layer, strategy, padding = TOWERS[style]
    tokenizer = build_tiny_tokenizer(placeholder_tokens=(IMAGE_TOKEN,))
    text = {k: v for k, v in TINY_TEXT.items() if k != "tie_word_embeddings"}
    config = LlavaConfig(
        vision_config={**TINY_VISION, "model_type": model_type},
        text_config={**text, "vocab_size": len(tokenizer) + padding, "eos_token_id": tokenizer.eos_token_id},
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=layer,
        vision_feature_select_strategy=strategy,
        image_seq_length=(TINY_VISION["image_size"] // TINY_VISION["patch_size"]) ** 2,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    size = TINY_VISION["image_size"]
    if style == "clip":
        image_processor = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    else:
        image_processor = SiglipImageProcessor(size={"height": size, "width": size})
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=TINY_VISION["patch_size"],
        vision_feature_select_strategy=strategy,
        num_additional_image_tokens=1 if style == "clip" else 0,
        chat_template=LLAVA_TEMPLATE,
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model, processor


@pytest.fixture(scope="module", params=sorted(TOWERS))
def built_from_llava(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"llava_{request.param}")
    llava, llava_processor = make_llava_folder(root / "llava", request.param)
    assert main(["build", str(root / "fi"), "--from-llava", str(root / "llava")]) == 0
    model = FaceInsightForConditionalGeneration.from_pretrained(root / "fi").eval()
    processor = FaceInsightProcessor.from_pretrained(root / "fi")
    return request.param, root, llava, llava_processor, model, processor


def _prompt(processor, question="Is this person smiling?"):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True)


def test_carries_over_the_llava_layout_and_template(built_from_llava):
    style, _, llava, llava_processor, model, processor = built_from_llava
    _, layer, strategy, padding = TOWERS[style]
    assert model.config.vision_feature_layer == layer and model.config.vision_feature_select_strategy == strategy
    assert processor.chat_template == llava_processor.chat_template
    assert _prompt(processor) == _prompt(llava_processor) == "USER: <image>\nIs this person smiling? ASSISTANT:"
    # the parsing token is new; the embedding grows only where the padded vocabulary has no room for it
    rows = model.get_input_embeddings().weight.shape[0]
    assert processor.tokenizer.convert_tokens_to_ids(PARSING_TOKEN) == len(llava_processor.tokenizer)
    assert rows == llava.config.text_config.vocab_size + (1 if padding == 0 else 0)
    # one <image> becomes as many image tokens as LLaVA's processor makes, then the parsing and knowledge tokens
    image = Image.new("RGB", (64, 64), (180, 140, 120))
    ours = processor(images=[image], text=_prompt(processor), return_tensors="pt")["input_ids"][0]
    theirs = llava_processor(images=[image], text=_prompt(llava_processor), return_tensors="pt")["input_ids"][0]
    assert (ours == model.config.image_token_id).sum() == (theirs == llava.config.image_token_id).sum()
    assert model.config.knowledge_tokens and processor.knowledge_seq_length == model.config.knowledge_seq_length
    expected = model.config.parsing_seq_length + model.config.knowledge_seq_length
    assert (ours == model.config.parsing_token_id).sum() == expected


@pytest.mark.parametrize("question", ["Describe this face.", "Is this person smiling?"])
def test_image_tokens_and_logits_equal_llavas(built_from_llava, question):
    _, _, llava, llava_processor, model, _ = built_from_llava
    assert model.config.ground_knowledge_words  # a question naming a label ("smiling") is grounded only with tokens
    image = Image.new("RGB", (64, 64), (180, 140, 120))
    # no parsing placeholders (LLaVA's processor): no knowledge tokens, so no word is grounded either
    inputs = llava_processor(images=[image], text=_prompt(llava_processor, question), return_tensors="pt")
    torch.manual_seed(1)
    inputs["pixel_values"] = torch.randn_like(inputs["pixel_values"])
    with torch.no_grad():
        theirs = llava.model.get_image_features(pixel_values=inputs["pixel_values"], return_dict=True).pooler_output
        ours = model.model.get_image_features(pixel_values=inputs["pixel_values"], return_dict=True).pooler_output
        assert torch.equal(torch.cat(list(ours)), torch.cat(list(theirs)))
        expected = llava(**inputs).logits
        got = model(**inputs).logits
    assert got.shape[:2] == expected.shape[:2]
    vocab = expected.shape[-1]  # the grown row (siglip) is new; every row LLaVA has gives the same logits
    torch.testing.assert_close(got[..., :vocab], expected, rtol=0, atol=1e-5)


def test_parsing_branch_starts_as_a_copy_of_the_image_branch(built_from_llava):
    """The parsing projector is a copy of LLaVA's; the parsing encoder embeds the map's classes (no tower copy),
    unless the build asks for the rendered-map tower, which starts as a copy of LLaVA's tower."""
    _, root, llava, _, model, _ = built_from_llava
    assert model.config.parsing_encoder_type == "label_patches"
    with_tower, _ = build_from_llava(str(root / "llava"), parsing_encoder_type="vision_tower", parsing_readout=False)
    tower, parsing = llava.model.vision_tower.state_dict(), with_tower.model.parsing_encoder.state_dict()
    assert all(torch.equal(tower[k], parsing[k]) for k in tower)
    projector = llava.model.multi_modal_projector.state_dict()
    assert all(torch.equal(projector[k], model.model.parsing_projector.state_dict()[k]) for k in projector)
    # copies, not shared storage: training one leaves the other
    assert (
        model.model.parsing_projector.linear_1.weight.data_ptr()
        != model.model.multi_modal_projector.linear_1.weight.data_ptr()
    )


@pytest.mark.slow
def test_from_llava_trains_and_loads_without_faceinsight(built_from_llava, tmp_path):
    style, root, *_ = built_from_llava
    if style != "clip":
        pytest.skip("one tower style is enough for the training run")
    argv = ["train", "--model_name_or_path", str(root / "fi"), "--output_dir", str(tmp_path / "run")]
    argv += ["--dataset_name", "synthetic", "--num_train_faces", "8", "--num_eval_faces", "0", "--max_steps", "2"]
    assert main(argv) == 0
    image = tmp_path / "face.png"
    Image.new("RGB", (64, 64), (180, 140, 120)).save(image)
    report = load_check_report(tmp_path / "run", image, tmp_path)
    assert report["AutoModel"] == "FaceInsightForConditionalGeneration" and report["faceinsight_imported"] == []


def test_build_in_bfloat16_writes_bfloat16(tmp_path):
    make_llava_folder(tmp_path / "llava", "siglip")
    assert main(["build", str(tmp_path / "fi"), "--from-llava", str(tmp_path / "llava"), "--dtype", "bfloat16"]) == 0
    with safe_open(tmp_path / "fi" / "model.safetensors", "pt") as weights:
        dtypes = {weights.get_slice(k).get_dtype() for k in weights.keys()}
    assert dtypes == {"BF16", "I64"}  # I64: BatchNorm's num_batches_tracked
    model = FaceInsightForConditionalGeneration.from_pretrained(tmp_path / "fi")
    assert model.dtype == torch.bfloat16


def test_build_refuses_text_with_from_llava(tmp_path, capsys):
    assert main(["build", str(tmp_path / "x"), "--from-llava", "a/b", "--text", "c/d"]) == 2
    assert "--from-llava brings its own language model" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------------------
# The LM's own chat template (--vision/--text)
# --------------------------------------------------------------------------------------------------------------------
LM_TEMPLATES = {
    "vicuna": (
        "{{ bos_token or '' }}{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + ' ' }}"
        "{% elif message['role'] == 'user' %}{{ 'USER: ' + message['content'] + ' ' }}"
        "{% else %}{{ 'ASSISTANT: ' + message['content'] + eos_token }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}",
        "USER: <image>Is this person smiling? ASSISTANT:",
    ),
    "llama3": (
        "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '<|im_end|>\n\n' + message['content'] | trim "
        "+ '<|endoftext|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant<|im_end|>\n\n' }}{% endif %}",
        "<|im_start|>user<|im_end|>\n\n<image>Is this person smiling?<|endoftext|><|im_start|>assistant<|im_end|>\n\n",
    ),
}


@pytest.mark.parametrize("name", sorted(LM_TEMPLATES))
def test_processor_keeps_the_lms_chat_template(tmp_path, name):
    template, expected_prompt = LM_TEMPLATES[name]
    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.for_model(**TINY_VISION)).save_pretrained(tmp_path / "vision")
    tokenizer = build_tiny_tokenizer(placeholder_tokens=())
    tokenizer.chat_template = template
    tokenizer.save_pretrained(tmp_path / "text")
    text = {k: v for k, v in TINY_TEXT.items() if k != "model_type"}
    AutoModelForCausalLM.from_config(AutoConfig.for_model("llama", vocab_size=len(tokenizer), **text)).save_pretrained(
        tmp_path / "text"
    )
    out = tmp_path / "fi"
    assert main(["build", str(out), "--vision", str(tmp_path / "vision"), "--text", str(tmp_path / "text")]) == 0
    processor = FaceInsightProcessor.from_pretrained(out)
    assert processor.chat_template.endswith(template)
    assert _prompt(processor) == expected_prompt
    # training conversations go through it: the answer extends the prompt and only the answer is learned
    image = Image.new("RGB", (64, 64), (180, 140, 120))
    conversation = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is this person smiling?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Yes."}]},
    ]
    batch = FaceInsightCollator(processor)([{"messages": conversation, "images": [image]}])
    learned = processor.tokenizer.decode(batch["labels"][0][batch["labels"][0] != -100])
    assert learned.strip().startswith("Yes.") and "smiling" not in learned
