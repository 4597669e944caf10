import io

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import chat_prompt


@pytest.fixture
def image_processor(tiny):
    return tiny[1].image_processor


def _gradient_rgb(width=40, height=30):
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    return np.concatenate(
        [
            np.broadcast_to(x, (height, width, 1)),
            np.broadcast_to(y, (height, width, 1)),
            np.full((height, width, 1), 90.0),
        ],
        axis=2,
    ).astype(np.uint8)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "1", "I;16", "I", "F", "YCbCr"])
def test_every_pil_mode_becomes_normalised_rgb(image_processor, mode):
    rgb = Image.fromarray(_gradient_rgb())
    if mode == "I;16":
        gray = np.asarray(rgb.convert("L")).astype(np.uint16) * 257
        image = Image.fromarray(gray)
        assert image.mode == "I;16"
    elif mode == "I":
        image = Image.fromarray(np.asarray(rgb.convert("L")).astype(np.int32) * 257)
    elif mode == "F":
        image = Image.fromarray(np.asarray(rgb.convert("L")).astype(np.float32) / 255.0)
    else:
        image = rgb.convert(mode)
    pixel_values = image_processor([image])["pixel_values"]
    assert pixel_values.shape == (1, 3, image_processor.size, image_processor.size)
    assert torch.isfinite(pixel_values).all()
    if mode in ("L", "I;16", "I", "F"):  # grayscale content survives: left-to-right brightness gradient kept
        reference = image_processor([rgb.convert("L")])["pixel_values"]
        assert torch.allclose(pixel_values, reference, atol=0.05)
        assert pixel_values[0, 0, :, -4:].mean() > pixel_values[0, 0, :, :4].mean()


def test_transparent_pixels_become_the_background_colour(image_processor):
    image = Image.new("RGBA", (8, 8), (255, 0, 0, 0))  # fully transparent red
    rgb = image_processor.to_rgb(image)
    assert rgb.getpixel((3, 3)) == (255, 255, 255)


def test_exif_orientation_is_honoured(image_processor):
    upright = Image.fromarray(_gradient_rgb(40, 30))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a camera would store it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", exif=exif, quality=98)
    from_camera = Image.open(io.BytesIO(buffer.getvalue()))
    assert image_processor.to_rgb(from_camera).size == (40, 30)
    expected = image_processor([upright])["pixel_values"]
    assert torch.allclose(image_processor([from_camera])["pixel_values"], expected, atol=0.15)


@pytest.mark.parametrize("size", [(1, 1), (6000, 6000)])
def test_tiny_and_huge_images_work(image_processor, size):
    image = Image.new("RGB", size, (120, 80, 200))
    pixel_values = image_processor([image])["pixel_values"]
    assert pixel_values.shape[-2:] == (image_processor.size, image_processor.size)
    assert torch.allclose(pixel_values[0, :, 0, 0], (torch.tensor([120, 80, 200]) / 255 - 0.5) / 0.5, atol=0.02)


def test_arrays_and_tensors_in_common_layouts(image_processor):
    hwc = _gradient_rgb()
    by_pil = image_processor([Image.fromarray(hwc)])["pixel_values"]
    for variant in (hwc, torch.from_numpy(hwc).permute(2, 0, 1), hwc.astype(np.float32) / 255.0):
        assert torch.allclose(image_processor([variant])["pixel_values"], by_pil, atol=0.02)


def test_unreadable_inputs_name_the_problem(image_processor, tmp_path):
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("this is not a JPEG")
    with pytest.raises(ValueError, match=r"image 0 \(.*notes.jpg\) is not a readable image"):
        image_processor([str(not_an_image)])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        image_processor([str(tmp_path / "missing.png")])
    with pytest.raises(TypeError, match="image 1 is a dict"):
        image_processor([Image.new("RGB", (4, 4)), {"not": "an image"}])
    truncated = io.BytesIO()
    Image.fromarray(_gradient_rgb(200, 200)).save(truncated, format="PNG")
    broken = tmp_path / "broken.png"
    broken.write_bytes(truncated.getvalue()[:300])
    with pytest.raises(ValueError, match="broken.png"):
        image_processor([str(broken)])
    with pytest.raises(ValueError, match="image 0 has shape"):
        image_processor([np.zeros((5, 5, 7), dtype=np.uint8)])


def test_parsing_maps_resize_with_nearest_neighbour(image_processor):
    labels = np.zeros((100, 100), dtype=np.uint8)
    labels[:, 50:] = 13  # hair on the right half
    labels[40:60, 40:60] = 2  # nose in the middle
    out = image_processor([Image.new("RGB", (200, 200))], parsing_maps=[Image.fromarray(labels)])
    resized = out["parsing_maps"][0]
    assert resized.shape == (image_processor.size, image_processor.size) and resized.dtype == torch.long
    assert set(resized.unique().tolist()) == {0, 2, 13}  # no blended labels
    assert resized[5, -5] == 13 and resized[image_processor.size // 2, image_processor.size // 2] == 2


def test_missing_map_asks_the_model_to_parse(image_processor):
    out = image_processor([Image.new("RGB", (8, 8))] * 2, parsing_maps=[np.ones((8, 8), dtype=np.int64), None])
    assert (out["parsing_maps"][0] == 1).all() and (out["parsing_maps"][1] == -1).all()


@pytest.mark.parametrize(
    "parsing_map, message",
    [
        (np.zeros((32, 32, 3), dtype=np.uint8), r"parsing map 0 has shape \(32, 32, 3\)"),
        (np.full((32, 32), 19), r"labels in \[19, 19\]; valid labels are 0..18"),
        (np.full((32, 32), -2), r"labels in \[-2, -2\]"),
        (np.zeros((32, 64), dtype=np.uint8), "aspect ratios differ"),
        (np.full((32, 32), 0.5), "non-integer"),
        (Image.new("RGB", (32, 32)), "is a RGB image"),
    ],
)
def test_bad_parsing_maps_are_rejected(image_processor, parsing_map, message):
    with pytest.raises(ValueError, match=message):
        image_processor([Image.new("RGB", (32, 32))], parsing_maps=[parsing_map])


def test_placeholders_expand_to_image_and_parsing_tokens(tiny, face_image):
    _, processor = tiny
    prompt = chat_prompt(processor, images=2)
    out = processor(images=[face_image, face_image], text=prompt, return_tensors="pt")
    ids = out["input_ids"][0].tolist()
    assert ids.count(processor.image_token_id) == 2 * processor.image_seq_length
    follow = processor.parsing_seq_length + processor.knowledge_seq_length  # parsing, then knowledge tokens
    assert processor.knowledge_seq_length > 0 and ids.count(processor.parsing_token_id) == 2 * follow
    first = ids.index(processor.image_token_id)
    block = ids[first : first + processor.image_seq_length + follow]
    assert block == [processor.image_token_id] * processor.image_seq_length + [processor.parsing_token_id] * follow
    assert out["pixel_values"].shape[0] == 2
    text = processor.decode(out["input_ids"][0], skip_special_tokens=True)
    assert "Is this person smiling?" in text and "<image>" not in text


@pytest.mark.parametrize(
    "images, placeholders, message",
    [
        (2, 1, "Found total 1 <image> tokens and 2 images"),
        (0, 1, "Found 1 <image> tokens in the text but no images were passed"),
        (1, 2, "Found total 2 <image> tokens and 1 images"),
    ],
)
def test_image_and_placeholder_counts_must_match(tiny, face_image, images, placeholders, message):
    """ProcessorMixin's own check, as for LLaVA."""
    _, processor = tiny
    with pytest.raises(ValueError, match=message):
        processor(images=[face_image] * images or None, text=chat_prompt(processor, images=placeholders))


def test_truncation_that_would_cut_placeholders_is_refused(tiny, face_image):
    _, processor = tiny
    prompt = chat_prompt(processor, question="Describe this face in detail. " * 20)
    with pytest.raises(ValueError, match=r"Mismatch in `image` token count .* Likely due to `truncation"):
        processor(images=[face_image], text=prompt, truncation=True, max_length=10)
    before_image = len(processor.tokenizer(prompt.split("<image>")[0])["input_ids"])
    with pytest.raises(ValueError, match=r"Mismatch in `parsing` token count"):  # a cut inside the parsing tokens
        processor(images=[face_image], text=prompt, truncation=True, max_length=before_image + 64 + 2)
    kept = processor(images=[face_image], text=prompt, truncation=True, max_length=4096, return_tensors="pt")
    assert kept["input_ids"].shape[1] < 4096


def test_batch_padding_is_left_for_generation(tiny, face_image):
    _, processor = tiny
    prompts = [chat_prompt(processor, "Smiling?"), chat_prompt(processor, "Which expression does this face show?")]
    out = processor(images=[face_image, face_image], text=prompts, padding=True, return_tensors="pt")
    assert out["attention_mask"][0, 0] == 0 and out["attention_mask"][1, 0] == 1
    assert out["attention_mask"][:, -1].all()


def test_structured_predictions_read_as_facets(tiny):
    model, processor = tiny
    names = model.config.label_names
    probabilities = torch.full((1, len(names)), 0.2)
    probabilities[0, names.index("Smiling")] = 0.9
    probabilities[0, names.index("expression:Happiness")] = 0.8
    decisions = model.model.logic_module.decide(probabilities)
    result = processor.post_process_face_labels(probabilities, decisions)[0]
    assert result["attributes"]["Smiling"] == {"present": True, "probability": 0.9}
    assert result["attributes"]["Bald"]["present"] is False
    assert result["facets"]["expression"]["value"] == "Happiness"
    assert abs(sum(result["facets"]["age"]["probabilities"].values()) - 1) < 1e-3
    with pytest.raises(ValueError, match="schema has"):
        processor.post_process_face_labels(probabilities[:, :5], decisions[:, :5])


def test_outputs_say_what_the_model_knows(tiny):
    """Untrained label nodes are marked and warned about; so is a map in which the parser sees no face."""
    model, processor = tiny
    names = model.config.label_names
    probabilities = torch.full((2, len(names)), 0.3)
    decisions = model.model.logic_module.decide(probabilities)
    trained = torch.tensor([name in ("Smiling", "expression:Happiness", "expression:Neutral") for name in names])
    face, wall = processor.post_process_face_labels(probabilities, decisions, trained, torch.tensor([0.31, 0.004]))
    assert face["attributes"]["Smiling"]["trained"] and not face["attributes"]["Bald"]["trained"]
    assert face["facets"]["expression"]["trained"] and not face["facets"]["age"]["trained"]
    assert face["face"] == {"found": True, "share": 0.31}
    assert face["warnings"] == [
        f"{len(names) - 3} of {len(names)} label nodes were never trained (no training data "
        "labelled them): their predictions are noise"
    ]
    assert wall["face"]["found"] is False and "the parser finds no face (face parts cover 0.4%" in wall["warnings"][1]


def test_the_gender_facet_and_the_male_attribute_never_disagree(tiny):
    """Male <=> gender:Male is a definitional rule the logic module always has, without configured rules."""
    model, _ = tiny
    names = model.config.label_names
    assert (
        model.config.logic_rules == []
        and {"type": "implication", "a": "Male", "b": "gender:Male"} in model.config.all_logic_rules
    )
    probabilities = torch.rand(200, len(names), generator=torch.Generator().manual_seed(0))
    decisions = model.model.logic_module.decide(probabilities)
    assert torch.equal(decisions[:, names.index("Male")], decisions[:, names.index("gender:Male")])
    assert torch.equal(decisions[:, names.index("Male")], ~decisions[:, names.index("gender:Female")])
