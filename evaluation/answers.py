"""Reading a model's free-text answer to a closed question: yes/no, or one of a facet's values.

Answers are matched after lower-casing and normalising dashes and punctuation, through synonyms ("happy" for
Happiness, "woman" for Female, "caucasian" for White, "in her twenties" for 20-29). A candidate right after a negation
("not happy") is not taken. An answer is read as an option only when it names exactly one: an answer naming two
values or none, an age range that spans several bins ("20-49"), or a hedge ("maybe", "not sure") is unreadable
(None): counted as wrong, and reported, never guessed.
"""

from __future__ import annotations

import re

YES_WORDS = ("yes", "yeah", "yep", "correct", "true", "indeed", "affirmative", "certainly")
NO_WORDS = ("no", "nope", "false", "incorrect", "not", "negative")
NEGATIONS = ("not", "no", "isn't", "isnt", "doesn't", "doesnt", "without", "never", "neither", "nor", "non")
HEDGES = (
    "maybe",
    "perhaps",
    "possibly",
    "not sure",
    "unsure",
    "hard to tell",
    "can't tell",
    "cannot tell",
    "difficult to say",
    "either",
)
SPANS_BINS = "spans several bins"

SYNONYMS = {
    "gender": {
        "Male": ["male", "man", "men", "boy", "masculine", "gentleman", "guy", "he", "his", "him"],
        "Female": ["female", "woman", "women", "girl", "feminine", "lady", "she", "her"],
    },
    "race": {
        "White": ["white", "caucasian", "european"],
        "Black": ["black", "african", "african american"],
        "Latino_Hispanic": ["latino hispanic", "latino", "latina", "hispanic", "latin american"],
        "East Asian": ["east asian", "chinese", "japanese", "korean"],
        "Southeast Asian": ["southeast asian", "south east asian", "vietnamese", "thai", "filipino", "indonesian"],
        "Indian": ["indian", "south asian"],
        "Middle Eastern": ["middle eastern", "arab", "arabic", "persian"],
    },
    "expression": {
        "Surprise": ["surprise", "surprised", "astonished", "shocked", "amazed"],
        "Fear": ["fear", "fearful", "afraid", "scared", "frightened", "terrified"],
        "Disgust": ["disgust", "disgusted", "repulsed"],
        "Happiness": ["happiness", "happy", "joy", "joyful", "cheerful", "delighted"],
        "Sadness": ["sadness", "sad", "unhappy", "sorrow", "sorrowful", "upset"],
        "Anger": ["anger", "angry", "mad", "furious", "annoyed"],
        "Neutral": ["neutral", "calm", "expressionless", "blank expression", "no particular expression"],
        "Contempt": ["contempt", "contemptuous", "scornful"],
    },
}
AGE_WORDS = {  # word -> an age inside the bin it names
    "baby": 1,
    "infant": 1,
    "toddler": 2,
    "child": 6,
    "kid": 6,
    "teen": 15,
    "teenager": 15,
    "teens": 15,
    "twenties": 25,
    "thirties": 35,
    "forties": 45,
    "fifties": 55,
    "sixties": 65,
    "seventies": 75,
    "eighties": 85,
    "elderly": 75,
}


def normalize(text: str) -> str:
    text = text.lower().replace("–", "-").replace("—", "-").replace("_", " ").replace("’", "'")
    text = re.sub(r"[^a-z0-9+\-' ]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _negated(text: str, start: int, window: int = 2, within_clause: bool = False) -> bool:
    """A negation among the `window` words before `start`; `within_clause`: not across "and"/"but" (a description's
    "is not smiling and has a hat" negates only the smile)."""
    before = text[:start].split()[-window:]
    if within_clause:
        for cut in ("and", "but"):
            if cut in before:
                before = before[len(before) - before[::-1].index(cut) :]
    return any(word in NEGATIONS for word in before)


def hedged(text: str) -> bool:
    return any(re.search(rf"(?<![a-z]){re.escape(hedge)}(?![a-z])", text) for hedge in HEDGES)


def parse_yes_no(answer: str) -> int | None:
    """1 for yes, 0 for no, None when the answer says neither (or both), or hedges."""
    text = normalize(answer)
    words = text.split()
    if not words or hedged(text):
        return None
    if words[0] in YES_WORDS:
        return 1
    if words[0] in NO_WORDS:
        return 0
    said_yes = any(w in YES_WORDS for w in words)
    said_no = any(w in NO_WORDS or w in NEGATIONS for w in words)
    if said_yes != said_no:
        return 1 if said_yes else 0
    return None


def _age_bins(options: list[str]) -> list[tuple[str, float, float]]:
    bins = []
    for option in options:
        bounds = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", option)
        plus = re.fullmatch(r"\s*(\d+)\s*\+\s*", option) or re.fullmatch(r"\s*(?:more than|over)\s*(\d+)\s*", option)
        if bounds:
            bins.append((option, float(bounds.group(1)), float(bounds.group(2))))
        elif plus:
            bins.append((option, float(plus.group(1)), float("inf")))
    return bins


def parse_age(answer: str, options: list[str]) -> str | None:
    """An age bin from "20-29", "20 to 29", "about 25", "70+", "over 70", "in their twenties"; a range counts only
    when it lies inside one bin ("25-28"), not when it spans several ("20-49")."""
    text = normalize(answer)
    if hedged(text):
        return None
    bins = _age_bins(options)
    if not bins:
        return parse_choice(answer, options)

    def bin_of(age: float) -> str | None:
        return next(
            (name for name, low, high in bins if low <= age <= high or (high == float("inf") and age >= low)), None
        )

    found = set()
    for low, high in re.findall(r"\b(\d+)\s*(?:-|to)\s*(\d+)\b", text):
        first, last = bin_of(float(low)), bin_of(float(high))
        found.add(first if first == last else SPANS_BINS)
    if not found:
        for number in re.findall(r"\b(\d+)\s*\+", text) + re.findall(r"(?:over|above|older than) (\d+)", text):
            found.add(bin_of(float(number) + (0 if "+" in text else 1)))
    if not found:
        for number in re.findall(r"(?<![\w-])(\d+)(?![\w-])", text):  # a number standing alone, not "20-m9"
            found.add(bin_of(float(number)))
    if not found:
        for word, age in AGE_WORDS.items():
            if re.search(rf"\b{word}\b", text):
                found.add(bin_of(float(age)))
    found.discard(None)
    return found.pop() if len(found) == 1 and SPANS_BINS not in found else None


def parse_choice(answer: str, options: list[str], facet: str | None = None) -> str | None:
    """The one option the answer names (by its own name or a synonym); None if it names none or several."""
    if facet == "age":
        return parse_age(answer, options)
    text = f" {normalize(answer)} "
    if hedged(text):
        return None
    phrases = []
    for option in options:
        names = {normalize(option), *SYNONYMS.get(facet, {}).get(option, [])}
        phrases.extend((name, option) for name in names if name)
    phrases.sort(key=lambda item: -len(item[0]))  # "southeast asian" before "east asian"
    taken = [False] * len(text)
    chosen = set()
    for name, option in phrases:
        for match in re.finditer(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", text):
            start, end = match.span()
            if any(taken[start:end]):
                continue
            taken[start:end] = [True] * (end - start)
            if not _negated(text, start):
                chosen.add(option)
    return chosen.pop() if len(chosen) == 1 else None
