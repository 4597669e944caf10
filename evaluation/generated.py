"""Asking any `image-text-to-text` model closed questions about faces, and turning its answers into predictions.

Questions reuse the training templates (the first of each kind): categorical facets list their candidate answers,
binary attributes ask for yes or no. Answers go through `evaluation.answers`; one that cannot be read is recorded as
unanswered (wrong), never guessed.
"""

from __future__ import annotations

import json

import numpy as np
from tqdm.auto import tqdm

from faceinsight.evaluation.answers import parse_choice, parse_yes_no
from faceinsight.evaluation.structured import UNANSWERED
from faceinsight.training.instructions import FACET_QUESTIONS, YES_NO_QUESTIONS, phrase


def closed_questions(labels: dict, schema, attribute_questions: int | None = None) -> list[tuple[str, str]]:
    """(label key, question) for every facet the record has and for its binary attributes (the first
    `attribute_questions` of them in schema order, all when None)."""
    questions = []
    for facet, values in schema.categorical_facets.items():
        if facet in labels and facet in FACET_QUESTIONS:
            options = ", ".join(phrase(v) for v in values)
            questions.append((facet, FACET_QUESTIONS[facet][0].format(options=options)))
    attributes = [name for name in schema.binary_attributes if name in labels]
    if attribute_questions is not None:
        attributes = attributes[:attribute_questions]
    questions.extend((name, YES_NO_QUESTIONS[0].format(attribute=phrase(name))) for name in attributes)
    return questions


def read_answer(key: str, answer: str, schema) -> str | int | None:
    if key in schema.categorical_facets:
        return parse_choice(answer, list(schema.categorical_facets[key]), facet=key)
    return parse_yes_no(answer)


def ask(pipe, images: list, questions: list[str], batch_size: int = 16, max_new_tokens: int = 16) -> list[str]:
    """Greedy answers of a `pipeline("image-text-to-text")` to one question per image, batched, with progress."""
    answers = []
    chunk = batch_size * 4
    with tqdm(total=len(questions), desc="answering", unit="question") as bar:
        for start in range(0, len(questions), chunk):
            chats = [
                [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": q}]}]
                for image, q in zip(images[start : start + chunk], questions[start : start + chunk])
            ]
            outputs = pipe(
                text=chats,
                batch_size=batch_size,
                return_full_text=False,
                generate_kwargs={"max_new_tokens": max_new_tokens, "do_sample": False},
            )
            for output in outputs:
                text = output[0]["generated_text"]
                answers.append(text if isinstance(text, str) else str(text[-1]["content"]))
            bar.update(len(chats))
    return answers


def generated_predictions(
    pipe, records, schema, attribute_questions: int | None = None, batch_size: int = 16, max_new_tokens: int = 16
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """(predictions, asked mask, transcript) over `schema.label_names` from the model's answers to closed questions.

    Labels not asked are left out of scoring through the mask; asked ones that cannot be read are UNANSWERED.
    """
    names = schema.label_names
    index = {name: i for i, name in enumerate(names)}
    predictions = np.full((len(records), len(names)), UNANSWERED, dtype=np.int64)
    asked = np.zeros((len(records), len(names)), dtype=bool)
    jobs = []
    for row, labels in enumerate(records["labels"]):
        for key, question in closed_questions(json.loads(labels), schema, attribute_questions):
            jobs.append((row, key, question))
    images = records["image"]
    answers = ask(pipe, [images[row] for row, _, _ in jobs], [q for _, _, q in jobs], batch_size, max_new_tokens)
    transcript = []
    for (row, key, question), answer in zip(jobs, answers):
        value = read_answer(key, answer, schema)
        if key in schema.categorical_facets:
            columns = schema.facet_label_indices[key]
            asked[row, columns] = True
            if value is not None:
                predictions[row, columns] = [int(v == value) for v in schema.categorical_facets[key]]
        else:
            asked[row, index[key]] = True
            if value is not None:
                predictions[row, index[key]] = value
        transcript.append({"face": row, "label": key, "question": question, "answer": answer, "read_as": value})
    return predictions, asked, transcript
