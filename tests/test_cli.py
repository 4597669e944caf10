import json

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSemanticSegmentation

from faceinsight import FaceInsightForConditionalGeneration
from faceinsight.commands import main
from faceinsight.hub.build import TINY_PARSER, TINY_TEXT, TINY_VISION, parser_config_kwargs
from faceinsight.hub.tokenizer import build_tiny_tokenizer


@pytest.fixture(scope="module")
def built_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli") / "tiny"
    assert main(["build", "--preset", "tiny", str(folder)]) == 0
    return folder


def test_build_tiny_then_ask(built_folder, face_image, tmp_path, capsys):
    image = tmp_path / "face.jpg"
    face_image.save(image)
    assert (
        main(["ask", str(built_folder), str(image), "Is this person smiling?", "--attributes", "--max-new-tokens", "4"])
        == 0
    )
    structured = json.loads(capsys.readouterr().out)  # the whole output is one JSON document, the answer inside
    assert structured["question"] == "Is this person smiling?" and isinstance(structured["answer"], str)
    assert set(structured["facets"]) == {"age", "gender", "race", "expression"}
    assert len(structured["attributes"]) == 40
    assert all(0 <= a["probability"] <= 1 for a in structured["attributes"].values())


def test_ask_with_a_given_parsing_map(built_folder, face_image, tmp_path, capsys):
    from PIL import Image

    image, label_map = tmp_path / "face.png", tmp_path / "map.png"
    face_image.save(image)
    Image.new("L", face_image.size, 1).save(label_map)
    assert (
        main(
            [
                "ask",
                str(built_folder),
                str(image),
                "--parsing-map",
                str(label_map),
                "--attributes",
                "--max-new-tokens",
                "2",
            ]
        )
        == 0
    )
    Image.new("L", (10, 30), 1).save(label_map)
    assert main(["ask", str(built_folder), str(image), "--parsing-map", str(label_map)]) == 2
    assert "aspect ratios differ" in capsys.readouterr().err


def test_ask_reports_unreadable_image(built_folder, tmp_path, capsys):
    bad = tmp_path / "face.png"
    bad.write_bytes(b"not a png")
    assert main(["ask", str(built_folder), str(bad), "hi"]) == 2
    assert "face.png" in capsys.readouterr().err


VISION_SOURCES = {
    "siglip-vision": lambda: AutoModel.from_config(AutoConfig.for_model(**TINY_VISION)),
    "clip-vision": lambda: AutoModel.from_config(
        AutoConfig.for_model(**{**TINY_VISION, "model_type": "clip_vision_model"})
    ),
    "siglip-dual-encoder": lambda: AutoModel.from_config(
        AutoConfig.for_model(
            "siglip",
            vision_config={k: v for k, v in TINY_VISION.items() if k != "model_type"},
            text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2},
        )
    ),
}


def _patch_embedding(model):
    vision = model.vision_model if hasattr(model, "vision_model") else model
    return vision.embeddings.patch_embedding.weight


@pytest.mark.parametrize("vision_kind", sorted(VISION_SOURCES))
def test_build_from_pretrained_component_folders(tmp_path, vision_kind):
    """--vision/--text/--parser take Hub ids or local folders; here local folders of tiny pretrained parts."""
    torch.manual_seed(0)
    vision = VISION_SOURCES[vision_kind]()
    vision.save_pretrained(tmp_path / "vision")
    tokenizer = build_tiny_tokenizer()
    tokenizer.save_pretrained(tmp_path / "text")
    text_kwargs = {k: v for k, v in TINY_TEXT.items() if k != "model_type"}
    language_model = AutoModelForCausalLM.from_config(
        AutoConfig.for_model("llama", vocab_size=len(tokenizer) - 2, **text_kwargs)
    )
    language_model.save_pretrained(tmp_path / "text")
    parser_kwargs = {k: v for k, v in parser_config_kwargs(TINY_PARSER).items() if k != "model_type"}
    parser = AutoModelForSemanticSegmentation.from_config(AutoConfig.for_model("segformer", **parser_kwargs))
    parser.save_pretrained(tmp_path / "parser")

    out = tmp_path / "assembled"
    assert (
        main(
            [
                "build",
                str(out),
                "--vision",
                str(tmp_path / "vision"),
                "--text",
                str(tmp_path / "text"),
                "--parser",
                str(tmp_path / "parser"),
            ]
        )
        == 0
    )
    model = FaceInsightForConditionalGeneration.from_pretrained(out)
    assert torch.equal(_patch_embedding(model.model.vision_tower), _patch_embedding(vision))
    # the parsing map's classes are embedded directly (label patches): no tower copy to carry over
    assert model.config.parsing_encoder_type == "label_patches" and not hasattr(model.model.parsing_encoder, "encoder")
    assert torch.equal(
        model.model.language_model.layers[1].mlp.up_proj.weight, language_model.model.layers[1].mlp.up_proj.weight
    )
    assert torch.equal(model.model.parser.decode_head.classifier.weight, parser.decode_head.classifier.weight)
    assert model.config.text_config.vocab_size == len(tokenizer)  # grown for the two placeholder tokens
    patches = (TINY_VISION["image_size"] // TINY_VISION["patch_size"]) ** 2
    assert model.config.image_seq_length == patches  # CLIP drops its CLS token, SigLIP has none
    assert model.config.vision_feature_select_strategy == ("default" if vision_kind == "clip-vision" else "full")
    # and the assembled folder answers
    from PIL import Image

    from faceinsight.inference import FaceInsightAssistant

    assistant = FaceInsightAssistant.from_pretrained(str(out))
    assert isinstance(assistant.ask(Image.new("RGB", (50, 60), (180, 140, 120)), "Age?", max_new_tokens=3), str)


def test_build_needs_text_with_vision(tmp_path, capsys):
    assert main(["build", str(tmp_path / "x"), "--vision", "some/vision"]) == 2
    assert capsys.readouterr().err.strip() == "faceinsight build: error: --vision needs --text (the language model)"
