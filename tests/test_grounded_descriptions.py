"""Grounded descriptions: asked for a description, generation states only what the knowledge head decided
(`FaceInsightGroundedDescriptions`, a transformers LogitsProcessor), through `generate`, the pipeline and remote code."""

import pytest
import torch
from transformers import pipeline

from faceinsight.evaluation.descriptions import DESCRIBE_QUESTION, stated_facts
from faceinsight.hub.build import build_tiny
from faceinsight.hub.export import save_model_folder
from faceinsight.modeling.schema_faceinsight import NOT_STATED
from helpers import chat_prompt, load_check_report


def _steer(model, present: list[str], facets: dict):
    """Make the head decide `present` attributes and `facets` values whatever the image: its label bias."""
    config = model.config
    bias = torch.full((config.num_label_nodes,), -12.0)
    for name in present + [f"{facet}:{value}" for facet, value in facets.items()]:
        bias[config.label_names.index(name)] = 12.0
    with torch.no_grad():
        model.model.correlation_module.label_bias.copy_(bias)
    return model


@pytest.fixture(scope="module")
def steered():
    model, processor = build_tiny(seed=0)
    model.config.labelled_faces = [0 if name == "Blurry" else 10 for name in model.config.label_names]
    facets = {"age": "30-39", "gender": "Female", "race": "Indian", "expression": "Happiness"}
    return _steer(
        model.eval(), ["Black_Hair", "Eyeglasses", "Smiling", "Wearing_Earrings", "Blurry"], facets
    ), processor


def _describe(model, processor, images, question=DESCRIBE_QUESTION, **generate):
    prompts = [chat_prompt(processor, question) for _ in images]
    inputs = processor(images=images, text=prompts, padding=True, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=160, do_sample=False, **generate)
    return processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def _agrees(description, decided, schema):
    """Every stated fact equals the decision; every decided facet and attribute present (as training states them)
    is stated."""
    stated = stated_facts(description, schema)
    assert stated, description
    assert all(decided.get(key) == value for key, value in stated.items()), (description, stated)
    wanted = {k: v for k, v in decided.items() if k in schema.categorical_facets or (v == 1 and k not in NOT_STATED)}
    assert all(stated.get(key) == value for key, value in wanted.items()), (description, stated, wanted)


def test_a_description_states_what_the_head_decided_and_nothing_untrained(steered, face_image):
    model, processor = steered
    decisions = model.predict_face_labels(processor.image_processor([face_image], return_tensors="pt")["pixel_values"])
    decided = model.config.decided_labels(decisions.decisions[0].tolist())
    assert decided["Smiling"] == 1 and decided["expression"] == "Happiness" and "Blurry" not in decided
    (description,) = _describe(model, processor, [face_image])
    _agrees(description, decided, model.config)
    assert "blurry" not in description.lower()  # a node no training covered: the head has no decision for it
    model.config.grounded_descriptions = False  # switched off: the random LM writes something else
    try:
        (free,) = _describe(model, processor, [face_image])
    finally:
        model.config.grounded_descriptions = True
    assert free != description


def test_faces_with_different_decisions_get_different_descriptions(face_image):
    descriptions = []
    for present, gender in ((["Blond_Hair"], "Male"), (["Gray_Hair", "Wearing_Hat"], "Female")):
        model, processor = build_tiny(seed=0)
        facets = {"age": "60-69", "gender": gender, "race": "White", "expression": "Neutral"}
        _steer(model.eval(), present, facets)
        (description,) = _describe(model, processor, [face_image])
        decided = model.config.decided_labels(
            model.predict_face_labels(processor.image_processor([face_image], return_tensors="pt")["pixel_values"])
            .decisions[0]
            .tolist()
        )
        _agrees(description, decided, model.config)
        descriptions.append(description)
    assert descriptions[0] != descriptions[1]


def test_other_questions_and_mixed_batches_are_left_alone(steered, face_image):
    model, processor = steered
    question = "Is this person smiling?"
    alone = _describe(model, processor, [face_image], question)
    model.config.grounded_descriptions = False
    try:
        free = _describe(model, processor, [face_image], question)
    finally:
        model.config.grounded_descriptions = True
    assert alone == free  # no description asked: no constraint, the same greedy answer
    # a left-padded batch mixing a description and a closed question, each row with its own image
    prompts = [chat_prompt(processor, question), chat_prompt(processor, DESCRIBE_QUESTION)]
    inputs = processor(images=[face_image, face_image], text=prompts, padding=True, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=160, do_sample=False)
    texts = processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    (single,) = _describe(model, processor, [face_image])
    assert texts[1] == single and texts[0].startswith(alone[0][:8])


def test_beams_and_the_pipeline_keep_descriptions_grounded(steered, face_image):
    model, processor = steered
    decided = model.config.decided_labels(
        model.predict_face_labels(processor.image_processor([face_image], return_tensors="pt")["pixel_values"])
        .decisions[0]
        .tolist()
    )
    beams = _describe(model, processor, [face_image], num_beams=2, num_return_sequences=2)
    for description in beams:
        _agrees(description, decided, model.config)
    pipe = pipeline("image-text-to-text", model=model, processor=processor)
    chat = [
        {
            "role": "user",
            "content": [{"type": "image", "image": face_image}, {"type": "text", "text": DESCRIBE_QUESTION}],
        }
    ]
    output = pipe(text=chat, generate_kwargs={"max_new_tokens": 160, "do_sample": False}, return_full_text=False)
    _agrees(output[0]["generated_text"], decided, model.config)


@pytest.mark.slow
def test_remote_code_writes_the_grounded_description_without_faceinsight(steered, face_image, tmp_path):
    model, processor = steered
    folder = save_model_folder(model, processor, tmp_path / "model")
    face_image.save(tmp_path / "face.png")
    report = load_check_report(folder, tmp_path / "face.png", tmp_path)
    assert report["faceinsight_imported"] == []
    _agrees(report["description"], report["decided_labels"], model.config)
