"""Free-text descriptions scored fact by fact: "Can you give a detailed description of the person in the image?"
(the paper's Figure 1 question), asked of any `image-text-to-text` model.

Each description is split into sentences and read with the closed-answer reader (`answers.py`), extended to
sentences: a facet is stated when the description names exactly one of its values (two different values are one
wrong statement); a binary attribute is stated present when its name appears, absent when a negation comes right
before it ("no eyeglasses", "without a hat"). Attribute names are read before facet values, so "black hair" is hair
colour, not race. Every stated fact whose ground truth is known is right or wrong:

    fact precision = right statements / statements    (1 - the hallucination rate)
    fact recall    = right statements / known facts   (for attributes: of the attributes present on the face)

per task, with Wilson intervals.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from faceinsight.evaluation.answers import _negated, normalize, parse_choice
from faceinsight.evaluation.stats import wilson_interval
from faceinsight.training.instructions import phrase

DESCRIBE_QUESTION = "Can you give a detailed description of the person in the image?"
CONFLICTING = "(several values)"
ATTRIBUTE_SYNONYMS = {
    "Eyeglasses": ["glasses", "spectacles"],
    "Smiling": ["smile", "smiles"],
    "Wearing_Hat": ["hat"],
    "Wearing_Earrings": ["earrings"],
    "Wearing_Lipstick": ["lipstick"],
    "Wearing_Necklace": ["necklace"],
    "Wearing_Necktie": ["necktie", "tie"],
    "Bags_Under_Eyes": ["bags under his eyes", "bags under her eyes", "bags under the eyes", "bags under their eyes"],
}


def _facet_words(schema) -> set[str]:
    return {word for values in schema.categorical_facets.values() for v in values for word in normalize(v).split()}


def _attribute_names(schema) -> list[tuple[str, str]]:
    """(name as written, attribute), longest first; attributes named like a facet value (Male, MAAD-Face's White,
    Black, Asian) are left to the facet."""
    facet_words = _facet_words(schema)
    attributes = [a for a in schema.binary_attributes if normalize(phrase(a)) not in facet_words]
    names = [(normalize(phrase(a)), a) for a in attributes]
    names += [(synonym, a) for a, synonyms in ATTRIBUTE_SYNONYMS.items() for synonym in synonyms]
    return sorted((item for item in names if item[1] in attributes), key=lambda item: -len(item[0]))


def stated_facts(description: str, schema) -> dict:
    """{facet: value or CONFLICTING, attribute: 1 or 0} for what the description states."""
    facts, facet_values = {}, {facet: set() for facet in schema.categorical_facets}
    for sentence in re.split(r"[.;!?\n]+", description):
        text = f" {normalize(sentence)} "
        taken = [False] * len(text)
        for name, attribute in _attribute_names(schema):
            for match in re.finditer(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", text):
                start, end = match.span()
                if any(taken[start:end]):
                    continue
                taken[start:end] = [True] * (end - start)
                value = 0 if _negated(text, start, window=3, within_clause=True) else 1  # 'not wearing a hat'
                facts[attribute] = value if facts.get(attribute, value) == value else CONFLICTING
        rest = "".join(" " if taken[i] else ch for i, ch in enumerate(text))  # attribute names read, now facets
        for facet, values in schema.categorical_facets.items():
            value = parse_choice(rest, list(values), facet=facet)
            if value is not None:
                facet_values[facet].add(value)
    for facet, values in facet_values.items():
        if values:
            facts[facet] = values.pop() if len(values) == 1 else CONFLICTING
    return facts


def score_descriptions(descriptions: list[str], labels: list[dict], schema) -> dict:
    """Per task (attributes and each facet): statements, right ones, known facts, fact precision and recall with
    95% intervals."""
    tasks = ["attributes", *schema.categorical_facets]
    counts = {task: {"statements": 0, "right": 0, "known": 0, "right_of_known": 0} for task in tasks}
    for description, truth in zip(descriptions, labels):
        facts = stated_facts(description, schema)
        for key, value in facts.items():
            if key not in truth:
                continue  # nothing to check it against
            task = key if key in schema.categorical_facets else "attributes"
            counts[task]["statements"] += 1
            counts[task]["right"] += int(value == truth[key])
        for key, value in truth.items():
            if key in schema.categorical_facets:
                counts[key]["known"] += 1
                counts[key]["right_of_known"] += int(facts.get(key) == value)
            elif key in schema.binary_attributes and value == 1:  # recall of what the face shows
                counts["attributes"]["known"] += 1
                counts["attributes"]["right_of_known"] += int(facts.get(key) == 1)
    scores = {}
    for task, c in counts.items():
        if not c["known"] and not c["statements"]:
            continue
        scores[task] = {
            **c,
            "precision": c["right"] / c["statements"] if c["statements"] else None,
            "precision_interval": list(wilson_interval(c["right"], c["statements"])) if c["statements"] else None,
            "recall": c["right_of_known"] / c["known"] if c["known"] else None,
            "recall_interval": list(wilson_interval(c["right_of_known"], c["known"])) if c["known"] else None,
        }
    return scores


def describe_and_score(pipe, records, schema, output_dir: Path, batch_size: int = 16, max_new_tokens: int = 128):
    """Ask every record's image the description question, write `descriptions.jsonl`, return (the scores, the
    descriptions)."""
    from faceinsight.evaluation.generated import ask

    images = list(records["image"])
    labels = [json.loads(row) for row in records["labels"]]
    descriptions = ask(pipe, images, [DESCRIBE_QUESTION] * len(images), batch_size, max_new_tokens)
    with open(Path(output_dir) / "descriptions.jsonl", "w") as handle:
        for face, (description, truth) in enumerate(zip(descriptions, labels)):
            stated = stated_facts(description, schema)
            handle.write(
                json.dumps({"face": face, "description": description, "stated": stated, "truth": truth}) + "\n"
            )
    return score_descriptions(descriptions, labels, schema), descriptions
