"""Grounded words: where the prompt names a knowledge token's label (an attribute's name, a facet's values), the name's
last token and the prompt after it, up to the model's answer, carry that knowledge token of the image it follows."""

import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError

from faceinsight.hub.build import build_tiny, knowledge_word_token_ids
from faceinsight.modeling.schema_faceinsight import label_phrase
from faceinsight.training.instructions import FACET_QUESTIONS, YES_NO_QUESTIONS
from helpers import chat_prompt


def _contains(sequence: list[int], part: list[int]) -> bool:
    return any(sequence[i : i + len(part)] == part for i in range(len(sequence) - len(part) + 1))


def test_every_training_question_names_its_label_in_a_stored_spelling(tiny):
    """The builder's spellings cover how the instruction data writes every attribute and every facet value."""
    model, processor = tiny
    config, tokenizer = model.config, processor.tokenizer
    assert config.ground_knowledge_words
    assert len(config.knowledge_word_token_ids) == config.knowledge_seq_length
    for attribute, spellings in zip(config.binary_attributes, config.knowledge_word_token_ids):
        for template in YES_NO_QUESTIONS:
            ids = tokenizer(template.format(attribute=label_phrase(attribute)), add_special_tokens=False)["input_ids"]
            assert any(_contains(ids, spelling) for spelling in spellings), (attribute, template)
    facet_spellings = config.knowledge_word_token_ids[len(config.binary_attributes) :]
    for (facet, values), spellings in zip(config.categorical_facets.items(), facet_spellings):
        options = ", ".join(label_phrase(v) for v in values)
        ids = tokenizer(FACET_QUESTIONS[facet][0].format(options=options), add_special_tokens=False)["input_ids"]
        for value in values:
            written = [s for s in spellings if tokenizer.decode(s).strip().lower() == label_phrase(value)]
            assert any(_contains(ids, spelling) for spelling in written), (facet, value)


def _grounding(model, inputs, answer_mask=None):
    """(text embeddings, what grounding adds) for a batch, the knowledge tokens of each row's image, and the images'
    knowledge tokens."""
    core = model.model
    with torch.no_grad():
        outputs = core.get_image_features(inputs["pixel_values"], return_dict=True)
        text = core.get_input_embeddings()(inputs["input_ids"])
        merged = core.merge_visual_tokens(inputs["input_ids"], text, outputs, answer_mask)
        model.config.ground_knowledge_words = False
        try:
            plain = core.merge_visual_tokens(inputs["input_ids"], text, outputs, answer_mask)
        finally:
            model.config.ground_knowledge_words = True
    return merged - plain, torch.stack(outputs.knowledge_pooler_output)


def test_the_named_attribute_reaches_the_answer_position_with_its_own_images_token(tiny, make_inputs):
    """Row 0 asks about eyeglasses, row 1 about a hat: from each name's last token to the end of the prompt (where
    the answer starts) the embeddings gain exactly that attribute's knowledge token of the row's own image; before
    the name, nothing."""
    model, processor = tiny
    config = model.config
    questions = [
        YES_NO_QUESTIONS[0].format(attribute="eyeglasses"),
        YES_NO_QUESTIONS[1].format(attribute="wearing hat"),
    ]
    inputs = make_inputs(questions)
    config.knowledge_token_source = "probabilities"  # tokens that surely differ between two images (decisions may not)
    try:
        added, knowledge = _grounding(model, inputs)
    finally:
        config.knowledge_token_source = "decisions"
    for row, attribute in enumerate(["Eyeglasses", "Wearing_Hat"]):
        token = config.binary_attributes.index(attribute)
        ids = inputs["input_ids"][row].tolist()
        spellings = config.knowledge_word_token_ids[token]
        ends = {i + len(s) - 1 for s in spellings for i in range(len(ids)) if ids[i : i + len(s)] == s}
        assert len(ends) == 1, (attribute, ends)
        real = inputs["attention_mask"][row].bool()
        before = torch.arange(len(ids)) < min(ends)
        assert added[row, before].abs().max() == 0
        after = (~before) & real
        expected = knowledge[row, token].expand(int(after.sum()), -1)
        torch.testing.assert_close(added[row, after], expected)
        assert not torch.equal(knowledge[0, token], knowledge[1, token])  # each row reads its own image


def test_answers_are_never_grounded_and_end_what_the_question_named(tiny, make_inputs):
    """In training the answer's tokens (labels != -100) are not grounded, nor what follows them until a new name:
    generation writes those tokens without the image's outputs at hand."""
    model, _ = tiny
    inputs = make_inputs([YES_NO_QUESTIONS[0].format(attribute="eyeglasses")])
    length = inputs["input_ids"].shape[1]
    answer = torch.zeros(1, length, dtype=torch.bool)
    answer[0, length - 4 : length - 2] = True  # two answer tokens, then two prompt tokens
    added, _ = _grounding(model, inputs, answer)
    grounded = added[0].abs().sum(-1) > 0
    assert grounded[length - 5] and not grounded[length - 4 :].any()
    assert model.answer_mask(torch.tensor([[-100, 7, -100]])).tolist() == [[False, True, False]]
    assert model.answer_mask(shift_labels=torch.tensor([[7, -100, -100]])).tolist() == [[False, True, False]]


def test_a_facet_question_grounds_its_options_with_the_facet_token(tiny, make_inputs):
    model, _ = tiny
    config = model.config
    options = ", ".join(label_phrase(v) for v in config.categorical_facets["gender"])
    inputs = make_inputs([FACET_QUESTIONS["gender"][0].format(options=options)])
    added, knowledge = _grounding(model, inputs)
    gender = len(config.binary_attributes) + list(config.categorical_facets).index("gender")
    torch.testing.assert_close(added[0, -1], knowledge[0, gender])


def test_embeddings_input_grounds_as_input_ids_do(tiny, make_inputs):
    """transformers' contract: inputs_embeds give the same forward as input_ids; the words are found in the
    embeddings, as placeholders are."""
    model, _ = tiny
    inputs = make_inputs([YES_NO_QUESTIONS[0].format(attribute="eyeglasses")])
    with torch.no_grad():
        by_ids = model(**inputs).logits
        embeds = model.get_input_embeddings()(inputs["input_ids"])
        by_embeds = model(**{k: v for k, v in inputs.items() if k != "input_ids"}, inputs_embeds=embeds).logits
    torch.testing.assert_close(by_embeds, by_ids)


def test_grounding_switches_off_and_follows_the_vocabulary(face_image):
    """ground_knowledge_words=False is the model before it (generation unchanged in kind); a resize that drops a
    spelled token turns grounding's spellings off rather than pointing at missing rows; the config names a
    mis-sized spelling list."""
    model, processor = build_tiny(seed=0)
    inputs = processor(
        images=[face_image],
        text=[chat_prompt(processor, "Is the following true of this face: bald?")],
        return_tensors="pt",
    )
    with torch.no_grad():
        grounded = model(**inputs).logits
        model.config.ground_knowledge_words = False
        plain = model(**inputs).logits
    assert not torch.allclose(grounded, plain)
    model.config.ground_knowledge_words = True
    model.resize_token_embeddings(max(max(i) for s in model.config.knowledge_word_token_ids for i in s))
    assert model.config.knowledge_word_token_ids is None and model.model.knowledge_tokens.word_ids.numel() == 0
    assert model.config.description_token_ids is None  # the descriptions' spellings use dropped tokens too
    config = model.config
    config.knowledge_word_token_ids = [[[1]]] * 3
    with pytest.raises((ValueError, StrictDataclassClassValidationError), match="knowledge_word_token_ids has 3"):
        config.validate()


def test_spellings_come_from_any_tokenizer_with_offsets(tiny):
    _, processor = tiny
    model, _ = tiny
    assert knowledge_word_token_ids(processor.tokenizer, model.config) == model.config.knowledge_word_token_ids


def test_knowledge_tokens_can_carry_the_heads_decisions(face_image):
    """knowledge_token_source="decisions" (the builders' choice): each face's tokens are those of its
    logic-consistent decisions taken as certain, the very tokens teacher forcing shows for a face labelled so;
    "probabilities" (the config's default, as folders saved before it read) carries the head's probabilities.
    Generation runs either way; an unknown source is named by the config."""
    model, processor = build_tiny(seed=0)  # its own copy: the test switches the source
    assert model.config.knowledge_token_source == "decisions"
    core = model.eval().model
    pixels = processor.image_processor([face_image, face_image.rotate(90)], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        model.config.knowledge_token_source = "probabilities"
        by_probability = core.get_image_features(pixels, return_dict=True)
        logits = by_probability.face_label_logits
        node_inputs = core.correlation_module.node_inputs(core.get_input_embeddings())
        torch.testing.assert_close(
            torch.stack(by_probability.knowledge_pooler_output), core.knowledge_tokens(logits, node_inputs)
        )
        decided = core.logic_module.decide(torch.sigmoid(logits))
        model.config.knowledge_token_source = "decisions"
        by_decision = torch.stack(core.get_image_features(pixels, return_dict=True).knowledge_pooler_output)
        torch.testing.assert_close(by_decision, core.knowledge_tokens((2 * decided.float() - 1) * 8.0, node_inputs))
        assert not torch.allclose(by_decision, torch.stack(by_probability.knowledge_pooler_output))
        assert torch.equal(model.predict_face_labels(pixels).decisions, decided)  # made once, for tokens and answer
        core.train()
        core.knowledge_teacher_forcing = 1.0
        forced = core.get_image_features(pixels, knowledge_labels=decided.long(), return_dict=True)
        torch.testing.assert_close(torch.stack(forced.knowledge_pooler_output), by_decision)
        core.eval()
        prompt = chat_prompt(processor, "Which facial expression does this person show? Options: happiness, anger.")
        inputs = processor(images=[face_image], text=[prompt], return_tensors="pt")
        generated = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert generated.shape[1] > inputs["input_ids"].shape[1]
    config = model.config
    config.knowledge_token_source = "argmax"
    with pytest.raises((ValueError, StrictDataclassClassValidationError), match="knowledge_token_source='argmax'"):
        config.validate()
