"""FaceInsight's vocabulary and label schema, in one place.

Glossary (one name per concept, used the same way in every file):

* **label node**: one node of the label graph, one column of every label vector: a binary attribute ("Eyeglasses")
  or one value of a facet ("expression:Happiness", named ``"facet:value"``). The default schema has 65.
* **binary attribute**: a label node that is present or absent on its own (CelebA's 40, the default; MAAD-Face's
  13 others beside them in FACE_ATTRIBUTES).
* **facet**: a categorical label whose values are label nodes, exactly one true per face (age bin, gender, race,
  expression).
* **face labels**: what is known about a face, one entry per label node (1, 0, or -100 = unknown), the targets of
  the knowledge head. Not the LM's `labels` (token ids).
* **knowledge head**: what reads a face's visual tokens into face-label logits: the paper's Correlation Constraint
  Module (a GCN over the label graph, `correlation_module`, with our parsing-guided region read-out) and the paper's
  Logical Constraint Module (rules: a training loss and logic-consistent decisions, `logic_module`).
* **rule**: `{"type": "exclusion" | "implication", "a": node, "b": node}`; the definitional rules below always hold.
* **parsing map**: a per-pixel map of CelebAMask-HQ class indices (0..18) for one image. PARSE_THIS_IMAGE (-1)
  everywhere in a map asks the in-model **parser** (the SegFormer face parser) for that image.
* **parsing map source** (training and evaluation): where maps come from: the dataset's, the parser's, or blank.
* **training stage**: stage1 trains the projectors and the knowledge head; stage2 adds LoRA on the LM.

This file is uploaded to the Hub as remote code with the model (it imports nothing). The processor's remote-code
files cannot import it (transformers copies only same-folder imports, and processing/ is its own folder here): the
processor keeps its own copy of the schema in its saved attributes, written from the config by the builder, and
names its -1 the same way.
"""

# -- the parsing scheme: CelebAMask-HQ's 19 classes and the palette of its visualisations ----------------------------
CELEBAMASK_HQ_LABELS = (
    "background",
    "skin",
    "nose",
    "eye_g",
    "l_eye",
    "r_eye",
    "l_brow",
    "r_brow",
    "l_ear",
    "r_ear",
    "mouth",
    "u_lip",
    "l_lip",
    "hair",
    "hat",
    "ear_r",
    "neck_l",
    "neck",
    "cloth",
)
NUM_PARSING_LABELS = len(CELEBAMASK_HQ_LABELS)
LABEL_INDEX = {name: index for index, name in enumerate(CELEBAMASK_HQ_LABELS)}  # class name -> its value in a map
CELEBAMASK_HQ_PALETTE = (
    (0, 0, 0),
    (204, 0, 0),
    (76, 153, 0),
    (204, 204, 0),
    (51, 51, 255),
    (204, 0, 204),
    (0, 255, 255),
    (255, 204, 204),
    (102, 51, 0),
    (255, 0, 0),
    (102, 204, 0),
    (255, 255, 0),
    (0, 0, 153),
    (0, 0, 204),
    (255, 51, 153),
    (0, 204, 204),
    (0, 51, 0),
    (255, 153, 51),
    (0, 204, 0),
)
# the classes that are the face itself: their share of a parsing map is the face-presence signal
FACE_PARTS = ("skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip")
PARSE_THIS_IMAGE = -1  # a parsing map filled with it asks the in-model parser for that image
# a SegFormer config's label fields for this scheme
PARSER_LABELS = {
    "num_labels": NUM_PARSING_LABELS,
    "id2label": dict(enumerate(CELEBAMASK_HQ_LABELS)),
    "label2id": LABEL_INDEX,
}

# -- the default label schema: CelebA's 40 attributes, FairFace's age bins, gender and race, 7 basic expressions ------
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)
# MAAD-Face's 47 binary attributes (Terhörst et al. 2021, on VGGFace2 images), in the column order of MAAD_Face.csv
MAAD_FACE_ATTRIBUTES = (
    "Male",
    "Young",
    "Middle_Aged",
    "Senior",
    "Asian",
    "White",
    "Black",
    "Rosy_Cheeks",
    "Shiny_Skin",
    "Bald",
    "Wavy_Hair",
    "Receding_Hairline",
    "Bangs",
    "Sideburns",
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Gray_Hair",
    "No_Beard",
    "Mustache",
    "5_o_Clock_Shadow",
    "Goatee",
    "Oval_Face",
    "Square_Face",
    "Round_Face",
    "Double_Chin",
    "High_Cheekbones",
    "Chubby",
    "Obstructed_Forehead",
    "Fully_Visible_Forehead",
    "Brown_Eyes",
    "Bags_Under_Eyes",
    "Bushy_Eyebrows",
    "Arched_Eyebrows",
    "Mouth_Closed",
    "Smiling",
    "Big_Lips",
    "Big_Nose",
    "Pointy_Nose",
    "Heavy_Makeup",
    "Wearing_Hat",
    "Wearing_Earrings",
    "Wearing_Necktie",
    "Wearing_Lipstick",
    "No_Eyewear",
    "Eyeglasses",
    "Attractive",
)
# Every binary attribute a dataset here labels: CelebA's 40, then MAAD-Face's 13 others (shared names merged; MAAD's
# age and race attributes stay attributes: they do not map onto the age bins and race groups of the facets)
FACE_ATTRIBUTES = CELEBA_ATTRIBUTES + tuple(name for name in MAAD_FACE_ATTRIBUTES if name not in CELEBA_ATTRIBUTES)
AGE_BINS = ("0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "70+")
GENDERS = ("Male", "Female")
RACES = ("White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern")
EXPRESSIONS = ("Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral")
DEFAULT_CATEGORICAL_FACETS = {
    "age": list(AGE_BINS),
    "gender": list(GENDERS),
    "race": list(RACES),
    "expression": list(EXPRESSIONS),
}

RULE_TYPES = ("exclusion", "implication")
# relations that hold by the meaning of the schema's names, whatever the data: the logic module always has them (so
# the gender facet and CelebA's Male attribute can never disagree), on top of the configured or mined rules
DEFINITIONAL_RULES = (
    {"type": "implication", "a": "Male", "b": "gender:Male"},
    {"type": "implication", "a": "gender:Male", "b": "Male"},
)


def categorical_node_name(facet: str, value: str) -> str:
    """The label node of one facet value: ``"facet:value"``."""
    return f"{facet}:{value}"


def label_node_names(binary_attributes, categorical_facets: dict) -> list[str]:
    """Every label node: the binary attributes first, then each facet's values in schema order."""
    names = list(binary_attributes)
    for facet, values in categorical_facets.items():
        names.extend(categorical_node_name(facet, value) for value in values)
    return names


def facet_node_indices(binary_attributes, categorical_facets: dict) -> dict[str, list[int]]:
    """The label-node indices of each facet's values."""
    indices, start = {}, len(binary_attributes)
    for facet, values in categorical_facets.items():
        indices[facet] = list(range(start, start + len(values)))
        start += len(values)
    return indices


def label_phrase(name: str) -> str:
    """How questions and descriptions write a label: 'Wearing_Hat' -> 'wearing hat'."""
    return name.replace("_", " ").lower()


# -- descriptions: how a face's facts are written, in training answers and in grounded descriptions alike ------------
EXPRESSION_WORDS = {
    "Surprise": "surprised",
    "Fear": "afraid",
    "Disgust": "disgusted",
    "Happiness": "happy",
    "Sadness": "sad",
    "Anger": "angry",
    "Neutral": "neutral",
    "Contempt": "contemptuous",
}
STATES = {"Young", "Attractive", "Chubby", "Bald", "Blurry", "Smiling"}  # "is young", not "has young"
NOT_STATED = {"Male", "No_Beard"}  # said by the gender, and by naming no beard
NOTABLE_ABSENCES = ("Eyeglasses", "Wearing_Hat", "Smiling", "Bald", "Heavy_Makeup", "Goatee", "Mustache")  # said when 0
# the description questions training asks (the last is the paper's Figure 1 question); grounded descriptions answer them
DESCRIBE_QUESTIONS = [
    "Describe this face.",
    "Describe the person's face: age, gender, expression and attributes.",
    "Can you give a detailed description of the person in the image?",
]
DESCRIPTION_OPENINGS = ("The person in the image is {who}", "This is {who}", "The photo shows {who}")
EXPRESSION_VERBS = ("looks", "appears")
# a description cut into pieces (a word with the space before it, or a comma or full stop): the units whose token
# ids the config keeps for grounded descriptions
DESCRIPTION_PIECE = r" ?[^ .,]+|[.,]"


def description_features(labels: dict) -> list[str]:
    """The attributes present that a description lists with "has" (neither states nor worn), in the labels' order."""
    present = [k for k, v in labels.items() if v == 1 and k not in NOT_STATED and k not in ("age", "gender", "race")]
    return [k for k in present if k not in STATES and not k.startswith("Wearing_")]


def description_absences(labels: dict) -> list[str]:
    """The notable attributes a face lacks, any two of which a description may state."""
    return [k for k in NOTABLE_ABSENCES if labels.get(k) == 0]


def description_text(labels: dict, opening: int = 0, verb: int = 0, features=None, absences=()) -> str:
    """Every known fact of a face in a few sentences: who (age bin, gender, race), the expression, the attributes
    present (`features`: the order of the "has" list, default as in `labels`), and the notable absences named in
    `absences`. `opening` and `verb` choose among DESCRIPTION_OPENINGS and EXPRESSION_VERBS."""
    gender = labels.get("gender")
    noun = {"Male": "man", "Female": "woman"}.get(gender, "person")
    pronoun = {"Male": "He", "Female": "She"}.get(gender, "The person")
    who = f"a {label_phrase(labels['race'])} {noun}" if "race" in labels else f"a {noun}"
    aged = f", aged {labels['age']}." if "age" in labels else "."
    sentences = [DESCRIPTION_OPENINGS[opening].format(who=who) + aged]
    if "expression" in labels:
        word = EXPRESSION_WORDS.get(labels["expression"], label_phrase(labels["expression"]))
        sentences.append(f"{pronoun} {EXPRESSION_VERBS[verb]} {word}.")
    present = [k for k, v in labels.items() if v == 1 and k not in NOT_STATED and k not in ("age", "gender", "race")]
    states = [label_phrase(k) for k in present if k in STATES]
    worn = [label_phrase(k).removeprefix("wearing ") for k in present if k.startswith("Wearing_")]
    listed_features = [label_phrase(k) for k in (description_features(labels) if features is None else features)]
    for verb_phrase, items in (("is", states), ("has", listed_features), ("is wearing", worn)):
        if items:  # "a", "a and b", "a, b and c"
            listed = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
            sentences.append(f"{pronoun} {verb_phrase} {listed}.")
    for name in absences:
        if name in STATES:
            sentences.append(f"{pronoun} is not {label_phrase(name)}.")
        elif name.startswith("Wearing_"):
            sentences.append(f"{pronoun} is not wearing a {label_phrase(name).removeprefix('wearing ')}.")
        else:
            sentences.append(f"{pronoun} has no {label_phrase(name)}.")
    return " ".join(sentences)


def description_variants(labels: dict) -> list[str]:
    """The descriptions a grounded description may be: every opening and expression verb, with any two of the
    notable absences (in NOTABLE_ABSENCES' order), the features in the labels' order."""
    absent = description_absences(labels)
    pairs = [(a,) for a in absent] if len(absent) < 2 else []
    pairs += [(a, b) for k, a in enumerate(absent) for b in absent[k + 1 :]]
    verbs = range(len(EXPRESSION_VERBS)) if "expression" in labels else (0,)
    return [
        description_text(labels, opening, verb, absences=pair)
        for opening in range(len(DESCRIPTION_OPENINGS))
        for verb in verbs
        for pair in pairs or [()]
    ]


def description_vocabulary(binary_attributes, categorical_facets: dict) -> list[str]:
    """Every piece (DESCRIPTION_PIECE) a description of this schema can hold, for the builder to spell."""
    import re

    texts = [opening.format(who="a man woman person") for opening in DESCRIPTION_OPENINGS]
    texts += ["He She The person is has is wearing not wearing a no and aged", *EXPRESSION_VERBS]
    texts += [label_phrase(name) for name in binary_attributes]
    texts += [label_phrase(value) for values in categorical_facets.values() for value in values]
    texts += list(EXPRESSION_WORDS.values())
    pieces = {
        piece for text in texts for variant in (text, " " + text) for piece in re.findall(DESCRIPTION_PIECE, variant)
    }
    return sorted(pieces | {",", "."})


def default_label_prompt(node_name: str) -> str:
    """The text whose token embeddings are a label node's input to the CCM's GCN (T_p^0 in the paper)."""
    if ":" in node_name:
        facet, value = node_name.split(":", 1)
        return f"a face whose {facet} is {value.replace('_', ' ')}"
    return f"a face with the attribute {label_phrase(node_name)}"


def age_bin(age: int | float) -> str:
    """The AGE_BINS bin of an age in years."""
    for name in AGE_BINS:
        if name.endswith("+") or age <= int(name.split("-")[1]):
            return name
    return AGE_BINS[-1]


class LabelSpace:
    """The label space of a schema holding `binary_attributes` and `categorical_facets`: what FaceInsightConfig and
    LabelSchema both offer."""

    @property
    def label_names(self) -> list[str]:
        """Every label node: the binary attributes first, then each facet's values in schema order."""
        return label_node_names(self.binary_attributes, self.categorical_facets)

    @property
    def num_label_nodes(self) -> int:
        return len(self.label_names)

    @property
    def facet_label_indices(self) -> dict[str, list[int]]:
        """The label-node indices of each facet's values."""
        return facet_node_indices(self.binary_attributes, self.categorical_facets)

    def decided_labels(self, decisions) -> dict:
        """One face's 0/1 decisions over the label nodes as labels: each binary attribute 0/1 and each facet's
        decided value, leaving out what no training covered (`labelled_faces` 0: the head has no decision there)."""
        trained = getattr(self, "labelled_faces", None) or [1] * self.num_label_nodes
        labels = {a: int(decisions[i]) for i, a in enumerate(self.binary_attributes) if trained[i] > 0}
        for facet, indices in self.facet_label_indices.items():
            if any(trained[i] > 0 for i in indices):
                chosen = max(range(len(indices)), key=lambda k: float(decisions[indices[k]]))
                labels[facet] = self.categorical_facets[facet][chosen]
        return labels

    @property
    def definitional_rules(self) -> list[dict]:
        """DEFINITIONAL_RULES whose two label nodes are both in this schema."""
        names = set(self.label_names)
        return [dict(rule) for rule in DEFINITIONAL_RULES if rule["a"] in names and rule["b"] in names]


class LabelSchema(LabelSpace):
    """A label schema on its own (binary attributes and facets), for code that scores answers without a FaceInsight
    config (a plain LLaVA's, say)."""

    def __init__(self, binary_attributes=CELEBA_ATTRIBUTES, categorical_facets=None):
        self.binary_attributes = list(binary_attributes)
        self.categorical_facets = {k: list(v) for k, v in (categorical_facets or DEFAULT_CATEGORICAL_FACETS).items()}
