"""Records -> TRL vision conversations (`messages` + `images`) with varied question templates per task, plus the
facet labels encoded against a model's schema (`face_labels`, -100 = unknown) and the optional parsing map."""

from __future__ import annotations

import json
import random

import datasets

from faceinsight.modeling.schema_faceinsight import (  # noqa: F401 (EXPRESSION_WORDS, STATES, ...: their old home)
    DESCRIBE_QUESTIONS,
    DESCRIPTION_OPENINGS,
    EXPRESSION_VERBS,
    EXPRESSION_WORDS,
    NOT_STATED,
    NOTABLE_ABSENCES,
    STATES,
    categorical_node_name,
    description_absences,
    description_features,
    description_text,
)
from faceinsight.modeling.schema_faceinsight import label_phrase as phrase

FACET_QUESTIONS = {
    "age": [
        "How old is this person? Options: {options}. Answer with one option.",
        "Which age range fits this face best: {options}?",
    ],
    "gender": [
        "What is the gender of this person? Options: {options}.",
        "Is this a male or a female face? Options: {options}.",
    ],
    "race": [
        "Which group describes this person best? Options: {options}. Answer with one option.",
        "What is the race of the person in the image? Options: {options}.",
    ],
    "expression": [
        "Which facial expression does this person show? Options: {options}. Answer with one option.",
        "What emotion does this face express? Options: {options}.",
    ],
}
YES_NO_QUESTIONS = [
    "Does this person have the attribute '{attribute}'? Answer yes or no.",
    "Is the following true of this face: {attribute}? Answer yes or no.",
]


def encode_labels(labels: dict, config) -> list[int]:
    """Facet labels -> one 0/1 target per label node of `config.label_names`; -100 where the record has no label."""
    names = config.label_names
    index = {name: i for i, name in enumerate(names)}
    targets = [-100] * len(names)
    for name, value in labels.items():
        if name in config.categorical_facets:
            if value not in config.categorical_facets[name]:
                raise ValueError(f"label {name}={value!r} is not a value of the model's schema")
            for option in config.categorical_facets[name]:
                targets[index[categorical_node_name(name, option)]] = int(option == value)
        elif name in index:
            targets[index[name]] = int(value)
        # labels the model's schema does not have are ignored (e.g. a reduced schema)
    return targets


def describe(labels: dict, rng: random.Random | None = None) -> str:
    """Every known fact of a face in a few varied sentences (`description_text`): who (age bin, gender, race), the
    expression, the attributes present in a random order, and up to two notable absences. What
    `evaluation/descriptions.py` reads back (tested)."""
    rng = rng or random.Random(0)
    opening = rng.choice(range(len(DESCRIPTION_OPENINGS)))
    verb = rng.choice(range(len(EXPRESSION_VERBS))) if "expression" in labels else 0
    features = description_features(labels)
    rng.shuffle(features)
    absent = description_absences(labels)
    return description_text(labels, opening, verb, features, rng.sample(absent, min(2, len(absent))))


# questions per training conversation: each answer is trained on, for one encoding of the image (a single question
# per image left the tiny LM answering every yes/no question alike after 500 steps)
TURNS = 4


def _draw(labels: dict, rng: random.Random) -> tuple[str, str, str]:
    """(what is asked, question, answer) drawn from the tasks this record has labels for."""
    facets = [f for f in FACET_QUESTIONS if f in labels]
    attributes = [k for k, v in labels.items() if k not in FACET_QUESTIONS]
    # a face has a few facets and many attributes: half the questions ask about an attribute
    kinds = ["facet"] * len(facets) + ["yes_no"] * (len(facets) + 1 if attributes else 0) + ["describe"]
    kind = rng.choice(kinds)
    if kind == "facet":
        from faceinsight.modeling.schema_faceinsight import DEFAULT_CATEGORICAL_FACETS

        facet = rng.choice(facets)
        options = ", ".join(phrase(v) for v in DEFAULT_CATEGORICAL_FACETS[facet])
        question = rng.choice(FACET_QUESTIONS[facet]).format(options=options)
        return facet, question, phrase(labels[facet]).capitalize() + "."
    if kind == "yes_no":
        attribute = rng.choice(attributes)
        question = rng.choice(YES_NO_QUESTIONS).format(attribute=phrase(attribute))
        return attribute, question, "Yes." if labels[attribute] else "No."
    return "describe", rng.choice(DESCRIBE_QUESTIONS), describe(labels, rng)


def make_conversation(labels: dict, rng: random.Random) -> tuple[str, str]:
    """(question, answer) drawn from the tasks this record has labels for."""
    return _draw(labels, rng)[1:]


def make_turns(labels: dict, rng: random.Random, turns: int = TURNS) -> list[tuple[str, str]]:
    """Up to `turns` (question, answer) pairs about one face, none asking what an earlier one asked."""
    asked, pairs = set(), []
    for _ in range(4 * turns):
        key, question, answer = _draw(labels, rng)
        if key not in asked:
            asked.add(key)
            pairs.append((question, answer))
        if len(pairs) == turns:
            break
    return pairs


def to_conversations(records: datasets.Dataset, config, seed: int = 0, turns: int = TURNS) -> datasets.Dataset:
    """TRL's vision format plus our columns: messages (the image with the first question, then `turns` questions
    and answers), images, face_labels, parsing_map."""

    def convert(record, index):
        labels = json.loads(record["labels"])
        messages = []
        for question, answer in make_turns(labels, random.Random(f"{seed}-{index}"), turns):
            content = [{"type": "text", "text": question}]
            if not messages:
                content.insert(0, {"type": "image", "text": None})
            messages.append({"role": "user", "content": content})
            messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
        return {"messages": messages, "images": [record["image"]], "face_labels": encode_labels(labels, config)}

    converted = records.map(convert, with_indices=True, remove_columns=["labels", "split", "source", "image"])
    return converted
