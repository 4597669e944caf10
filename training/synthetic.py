"""Synthetic faces: the embedded default dataset that needs no download.

A deterministic generator (one face per (seed, index)) of drawn face images with exact CelebAMask-HQ parsing maps
and labels for all three tasks. The labels have real structure:

* correlations: lipstick, makeup and earrings are far more likely on women; beards, goatees and moustaches only on
  men; grey hair grows with the age bin; bald heads are mostly older men;
* hard rules: bald excludes bangs and every hair colour; exactly one hair colour when not bald; goatee excludes
  no-beard; Young iff the age bin is under 30; Happiness implies Smiling; exactly one value per categorical facet;

drawn cues a small image can carry (a few pixels each at 64 px, so that a reader must learn them): the expression
shapes the brows, eyes and mouth; the age bin shapes the head (children's rounder heads, teenagers' slightly
rounder ones) and draws one more forehead line per decade from 30 (give or take one, as faces differ); and
nuisance variation (head position, scale and tilt, background colour and texture, lighting gradient, random
occluding patches) so that the task is not trivial. Attributes of CelebA's 40 that are not drawn are unknown (-100).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from faceinsight.modeling.schema_faceinsight import AGE_BINS, LABEL_INDEX

AGE_WEIGHTS = [0.03, 0.07, 0.12, 0.2, 0.18, 0.14, 0.11, 0.09, 0.06]
RACES = ["White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern"]
EXPRESSIONS = ["Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral"]
# skin-tone groups ("race-like"): a base RGB tone each; individuals vary around it
SKIN_TONES = {
    "White": (236, 200, 178),
    "Black": (110, 72, 52),
    "Latino_Hispanic": (205, 160, 122),
    "East Asian": (240, 208, 168),
    "Southeast Asian": (200, 152, 108),
    "Indian": (170, 118, 84),
    "Middle Eastern": (214, 170, 134),
}
HAIR_COLOURS = {
    "Black_Hair": (25, 20, 20),
    "Brown_Hair": (105, 65, 35),
    "Blond_Hair": (225, 195, 110),
    "Gray_Hair": (170, 170, 170),
}
DRAWN_ATTRIBUTES = [
    "Bald",
    "Bangs",
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Gray_Hair",
    "Eyeglasses",
    "Goatee",
    "Mustache",
    "No_Beard",
    "Smiling",
    "Mouth_Slightly_Open",
    "Wearing_Lipstick",
    "Heavy_Makeup",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Male",
    "Young",
    "Big_Nose",
    "Narrow_Eyes",
    "Bushy_Eyebrows",
    "Pale_Skin",
]


def sample_labels(rng: random.Random) -> dict:
    """Facet values for one face, with the correlations and hard rules described in the module docstring."""
    male = rng.random() < 0.5
    age_index = rng.choices(range(len(AGE_BINS)), AGE_WEIGHTS)[0]
    race = rng.choice(RACES)
    expression = rng.choices(EXPRESSIONS, [0.08, 0.06, 0.06, 0.3, 0.12, 0.1, 0.28])[0]
    adult = age_index >= 3
    old = age_index >= 5
    bald = male and adult and rng.random() < (0.35 if old else 0.06)
    if bald:
        hair = None
    elif rng.random() < [0.0, 0.0, 0.0, 0.02, 0.05, 0.2, 0.45, 0.7, 0.85][age_index]:
        hair = "Gray_Hair"
    else:
        hair = rng.choices(["Black_Hair", "Brown_Hair", "Blond_Hair"], [0.45, 0.35, 0.2])[0]
    makeup = (not male) and adult and rng.random() < 0.55
    labels = {
        "Male": int(male),
        "Bald": int(bald),
        "Bangs": int(not bald and rng.random() < (0.15 if male else 0.4)),
        **{name: int(hair == name) for name in HAIR_COLOURS},
        "Eyeglasses": int(rng.random() < (0.08 + 0.3 * old)),
        "Goatee": int(male and adult and rng.random() < 0.2),
        "Mustache": int(male and adult and rng.random() < 0.2),
        "Smiling": int(expression == "Happiness" or (expression == "Neutral" and rng.random() < 0.15)),
        "Mouth_Slightly_Open": int(expression in ("Surprise", "Fear") or rng.random() < 0.15),
        "Heavy_Makeup": int(makeup),
        "Wearing_Lipstick": int(makeup and rng.random() < 0.85 or (not male and adult and rng.random() < 0.1)),
        "Wearing_Earrings": int((not male and rng.random() < 0.5) or (male and rng.random() < 0.05)),
        "Wearing_Hat": int(rng.random() < 0.1),
        "Young": int(age_index < 4),
        "Big_Nose": int(rng.random() < (0.35 if male else 0.12)),
        "Narrow_Eyes": int(rng.random() < 0.12),
        "Bushy_Eyebrows": int(rng.random() < (0.3 if male else 0.08)),
        "Pale_Skin": int(race in ("White", "East Asian") and rng.random() < 0.25),
    }
    labels["No_Beard"] = int(not labels["Goatee"] and not (male and adult and rng.random() < 0.25))
    if labels["Wearing_Hat"]:
        labels["Bangs"] = 0 if bald else labels["Bangs"]
    labels.update(age=AGE_BINS[age_index], gender="Male" if male else "Female", race=race, expression=expression)
    return labels


class _Canvas:
    """Draws each shape on the photo and its class on the label map at 4x, then downsamples."""

    def __init__(self, size: int, background):
        self.scale = 4
        big = size * self.scale
        self.photo = Image.new("RGB", (big, big), background)
        self.labels = Image.new("L", (big, big), 0)
        self.draw_photo, self.draw_labels = ImageDraw.Draw(self.photo), ImageDraw.Draw(self.labels)

    def draw(self, shape: str, xy, colour, label=None, width=None, outline=False):
        """One PIL shape ("ellipse" from a box, "polygon" or "line" through points), filled (or its outline) on the
        photo and, when `label` is given, in that class on the label map."""
        scaled = (
            [v * self.scale for v in xy] if shape == "ellipse" else [(x * self.scale, y * self.scale) for x, y in xy]
        )
        paint = "outline" if outline else "fill"
        size = {} if width is None else {"width": max(1, int(width * self.scale))}
        joint = {"joint": "curve"} if shape == "line" else {}  # the photo's lines only, as drawn before
        getattr(self.draw_photo, shape)(scaled, **{paint: colour, **size, **joint})
        if label is not None:
            getattr(self.draw_labels, shape)(scaled, **{paint: LABEL_INDEX[label], **size})

    def finish(self, size):
        photo = self.photo.resize((size, size), Image.Resampling.LANCZOS)
        labels = self.labels.resize((size, size), Image.Resampling.NEAREST)
        return photo, labels


def _shade(colour, factor):
    return tuple(int(max(0, min(255, c * factor))) for c in colour)


@dataclass
class _Head:
    """Where the face sits on the canvas and what colours it has; every drawing step reads it."""

    labels: dict
    size: int
    cx: float
    cy: float
    w: float  # half-width of the face ellipse
    h: float  # half-height
    tone: tuple
    hair: tuple | None
    male: bool
    child: bool
    wrinkles: int  # forehead lines: one per decade from 30, give or take one

    def poly(self, *points):
        """Points given in face units (x in half-widths, y in half-heights from the centre) to canvas points."""
        return [(self.cx + x * self.w, self.cy + y * self.h) for x, y in points]


def _place_head(labels: dict, rng: random.Random, size: int) -> _Head:
    s = size * rng.uniform(0.85, 1.1)  # head scale
    cx, cy = size / 2 + rng.uniform(-0.08, 0.08) * size, size / 2 + rng.uniform(-0.05, 0.08) * size
    face_w, face_h = 0.36 * s, 0.46 * s
    age_index = AGE_BINS.index(labels["age"])
    child = age_index < 2
    if child:
        face_w, face_h = face_w * 1.08, face_h * 0.88
    elif age_index == 2:  # teenagers: between a child's head and an adult's
        face_w, face_h = face_w * 1.03, face_h * 0.95
    wrinkles = max(0, age_index - 3 + rng.choices((-1, 0, 1), (0.15, 0.7, 0.15))[0]) if age_index >= 4 else 0
    tone = _shade(SKIN_TONES[labels["race"]], rng.uniform(0.9, 1.08) * (1.12 if labels["Pale_Skin"] else 1.0))
    hair = HAIR_COLOURS.get(next((h for h in HAIR_COLOURS if labels[h]), ""), None)
    return _Head(labels, size, cx, cy, face_w, face_h, tone, hair, labels["Male"] == 1, child, wrinkles)


def _draw_body_and_back_hair(canvas: _Canvas, head: _Head, rng: random.Random) -> None:
    cx, cy, w, h, size = head.cx, head.cy, head.w, head.h, head.size
    cloth = tuple(rng.randint(20, 235) for _ in range(3))
    canvas.draw(
        "polygon",
        [(cx - 1.5 * w, size), (cx - 0.55 * w, cy + 0.85 * h), (cx + 0.55 * w, cy + 0.85 * h), (cx + 1.5 * w, size)],
        cloth,
        "cloth",
    )
    canvas.draw(
        "polygon", head.poly((-0.3, 0.4), (0.3, 0.4), (0.32, 0.95), (-0.32, 0.95)), _shade(head.tone, 0.85), "neck"
    )
    if head.hair is not None:  # hair behind the head (long hair for most women)
        long_hair = not head.male and rng.random() < 0.8
        bottom = cy + (0.75 if long_hair else 0.1) * h
        canvas.draw("ellipse", [cx - 1.12 * w, cy - 1.12 * h, cx + 1.12 * w, bottom], head.hair, "hair")


def _draw_head(canvas: _Canvas, head: _Head) -> None:
    """Ears and earrings, the face, the hairline and bangs, wrinkles with age."""
    labels, cx, cy, w, h = head.labels, head.cx, head.cy, head.w, head.h
    for side in (-1, 1):
        ex = cx + side * 0.98 * w
        ear = "l_ear" if side > 0 else "r_ear"
        canvas.draw(
            "ellipse", [ex - 0.13 * w, cy - 0.15 * h, ex + 0.13 * w, cy + 0.12 * h], _shade(head.tone, 0.92), ear
        )
        if labels["Wearing_Earrings"]:
            canvas.draw(
                "ellipse", [ex - 0.06 * w, cy + 0.12 * h, ex + 0.06 * w, cy + 0.22 * h], (240, 200, 40), "ear_r"
            )
    canvas.draw("ellipse", [cx - w, cy - h, cx + w, cy + h], head.tone, "skin")
    if head.hair is not None:  # hairline on top of the forehead
        hairline = ((-1.02, -0.25), (-0.7, -1.05), (0.7, -1.05), (1.02, -0.25), (0.8, -0.62), (-0.8, -0.62))
        canvas.draw("polygon", head.poly(*hairline), head.hair, "hair")
        if labels["Bangs"]:
            canvas.draw(
                "polygon", head.poly((-0.8, -0.65), (0.8, -0.65), (0.7, -0.38), (-0.7, -0.42)), head.hair, "hair"
            )
    for k in range(min(head.wrinkles, 4)):  # forehead lines, about a pixel wide and two apart at 64 px
        y = cy - (0.56 - 0.07 * k) * h
        canvas.draw("line", [(cx - 0.42 * w, y), (cx + 0.42 * w, y)], _shade(head.tone, 0.62), width=0.03 * h)


def _draw_eyes(canvas: _Canvas, head: _Head) -> float:
    """Eyes, brows shaped by the expression, eyeglasses; returns the eyes' height on the canvas."""
    labels, cx, w, h = head.labels, head.cx, head.w, head.h
    expression = labels["expression"]
    eye_y, eye_dx = head.cy - 0.12 * h, 0.42 * w
    eye_w, eye_h = 0.2 * w, (0.07 if labels["Narrow_Eyes"] else 0.13) * h
    eye_h *= {"Surprise": 1.7, "Fear": 1.5, "Disgust": 0.55, "Anger": 0.75}.get(expression, 1.0)
    brow_raise = {"Surprise": 0.2, "Fear": 0.14, "Sadness": 0.05, "Anger": -0.08, "Disgust": -0.04}.get(expression, 0.0)
    brow_tilt = {"Anger": 0.16, "Sadness": -0.13, "Fear": -0.08, "Disgust": 0.06}.get(expression, 0.0)
    brow_colour = head.hair or (60, 45, 35)
    brow_width = (0.1 if labels["Bushy_Eyebrows"] else 0.05) * h
    for side, eye_label, brow_label in ((1, "l_eye", "l_brow"), (-1, "r_eye", "r_brow")):  # person's left = image right
        ex = cx + side * eye_dx
        canvas.draw(
            "ellipse", [ex - eye_w, eye_y - eye_h / 2, ex + eye_w, eye_y + eye_h / 2], (245, 245, 245), eye_label
        )
        pupil = [ex - 0.35 * eye_w, eye_y - eye_h / 2.2, ex + 0.35 * eye_w, eye_y + eye_h / 2.2]
        canvas.draw("ellipse", pupil, (50, 35, 25), None)
        by = eye_y - (0.17 + brow_raise) * h
        inner, outer = (ex - side * 0.9 * eye_w, by + brow_tilt * h), (ex + side * 1.1 * eye_w, by - 0.02 * h)
        canvas.draw("line", [inner, outer], brow_colour, brow_label, width=brow_width)
    if labels["Eyeglasses"]:
        frame = (20, 20, 20)
        for side in (1, -1):
            ex = cx + side * eye_dx
            box = [ex - 1.4 * eye_w, eye_y - 0.16 * h, ex + 1.4 * eye_w, eye_y + 0.14 * h]
            canvas.draw("ellipse", box, frame, "eye_g", width=1, outline=True)
        canvas.draw(
            "line", [(cx - eye_dx + 1.4 * eye_w, eye_y), (cx + eye_dx - 1.4 * eye_w, eye_y)], frame, "eye_g", width=0.6
        )
    return eye_y


def _draw_nose_and_mouth(canvas: _Canvas, head: _Head, eye_y: float) -> tuple[float, float, float]:
    """Nose, lips shaped by the expression; returns the mouth's half-width and the lips' top and bottom."""
    labels, cx, cy, w, h = head.labels, head.cx, head.cy, head.w, head.h
    expression = labels["expression"]
    nose_w = (0.2 if labels["Big_Nose"] else 0.13) * w
    nose = [(cx, eye_y + 0.02 * h), (cx - nose_w, cy + 0.28 * h), (cx + nose_w, cy + 0.28 * h)]
    canvas.draw("polygon", nose, _shade(head.tone, 0.88), "nose")
    mouth_y, mouth_w = cy + 0.52 * h, (0.3 if head.child else 0.36) * w
    lip_colour = (185, 25, 45) if labels["Wearing_Lipstick"] else _shade(head.tone, 0.78)
    curve = {"Happiness": 0.18, "Sadness": -0.15, "Anger": -0.05, "Fear": -0.04, "Disgust": 0.03}.get(expression, 0.0)
    if labels["Smiling"] and expression != "Happiness":
        curve = 0.12
    mouth_w *= {"Happiness": 1.15, "Surprise": 0.7, "Anger": 0.85, "Fear": 1.1}.get(expression, 1.0)
    opening = 0.0
    if labels["Mouth_Slightly_Open"]:
        opening = {"Surprise": 0.2, "Fear": 0.1}.get(expression, 0.06)
    left, right = (cx - mouth_w, mouth_y - curve * h), (cx + mouth_w, mouth_y - curve * h)
    if expression == "Disgust":  # a one-sided sneer
        right = (right[0], right[1] - 0.12 * h)
    upper_top, lower_bottom = mouth_y - 0.06 * h, mouth_y + (0.07 + opening) * h
    canvas.draw("polygon", [left, (cx, upper_top), right, (cx, mouth_y)], lip_colour, "u_lip")
    lower_lip = [left, (cx, mouth_y + opening * h), right, (cx, lower_bottom)]
    canvas.draw("polygon", lower_lip, _shade(lip_colour, 0.92), "l_lip")
    if opening > 0:
        canvas.draw("polygon", [left, (cx, mouth_y), right, (cx, mouth_y + opening * h)], (60, 15, 20), "mouth")
    return mouth_w, upper_top, lower_bottom


def _draw_beard_makeup_hat(canvas: _Canvas, head: _Head, rng: random.Random, mouth: tuple[float, float, float]):
    """Facial hair (skin-covering, labelled skin as in CelebAMask-HQ), blush, a hat."""
    labels, cx, cy, w, h = head.labels, head.cx, head.cy, head.w, head.h
    mouth_w, upper_top, lower_bottom = mouth
    beard_colour = head.hair or (50, 40, 35)
    if labels["Mustache"]:
        mustache = [
            (cx - mouth_w * 1.05, upper_top - 0.01 * h),
            (cx, upper_top - 0.09 * h),
            (cx + mouth_w * 1.05, upper_top - 0.01 * h),
            (cx, upper_top + 0.02 * h),
        ]
        canvas.draw("polygon", mustache, beard_colour, "skin")
    if labels["Goatee"]:
        canvas.draw(
            "ellipse", [cx - 0.22 * w, lower_bottom + 0.02 * h, cx + 0.22 * w, cy + 0.97 * h], beard_colour, "skin"
        )
    elif not labels["No_Beard"]:
        beard = ((-0.95, 0.1), (-0.5, 0.85), (0, 1), (0.5, 0.85), (0.95, 0.1), (0.6, 0.72), (-0.6, 0.72))
        canvas.draw("polygon", head.poly(*beard), beard_colour, "skin")
    if labels["Heavy_Makeup"]:
        for side in (1, -1):
            ex = cx + side * 0.55 * w
            canvas.draw("ellipse", [ex - 0.15 * w, cy + 0.15 * h, ex + 0.15 * w, cy + 0.3 * h], (225, 120, 130), None)
    if labels["Wearing_Hat"]:
        hat = tuple(rng.randint(10, 240) for _ in range(3))
        brim_and_crown = ((-1.25, -0.68), (1.25, -0.68), (0.9, -0.82), (0.75, -1.35), (-0.75, -1.35), (-0.9, -0.82))
        canvas.draw("polygon", head.poly(*brim_and_crown), hat, "hat")


def _add_nuisances(photo: Image.Image, label_map: Image.Image, rng: random.Random, background: tuple, size: int):
    """Tilt, a lighting gradient, sensor noise, sometimes an occluding patch (hidden parts unlabelled) and blur."""
    angle = rng.uniform(-12, 12)
    photo = photo.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=background)
    label_map = label_map.rotate(angle, resample=Image.Resampling.NEAREST, fillcolor=0)
    pixels = np.asarray(photo, dtype=np.float32)
    direction = rng.uniform(0, 2 * math.pi)
    ramp = np.cos(direction) * np.linspace(-1, 1, size)[None, :] + np.sin(direction) * np.linspace(-1, 1, size)[:, None]
    pixels = pixels * (1 + rng.uniform(0.1, 0.35) * ramp)[..., None] * rng.uniform(0.75, 1.2)
    pixels += np.random.default_rng(rng.randrange(2**32)).normal(0, rng.uniform(2, 10), pixels.shape)
    labels_array = np.asarray(label_map, dtype=np.uint8).copy()
    if rng.random() < 0.2:
        w, h = rng.randint(size // 6, size // 3), rng.randint(size // 6, size // 3)
        x, y = rng.randint(0, size - w), rng.randint(size // 4, size - h)
        pixels[y : y + h, x : x + w] = rng.randint(0, 255)
        labels_array[y : y + h, x : x + w] = 0
    photo = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    return photo, labels_array


def render_face(labels: dict, rng: random.Random, size: int = 64) -> tuple[Image.Image, np.ndarray]:
    """Draw a face for `labels`; returns the photo and its exact label map (same size).

    Back to front, as a painter would: body and hair behind the head, the head, eyes, nose and mouth, facial hair,
    makeup and hat; then the camera's nuisances. The random draws happen in this order, so a seed always gives the
    same face.
    """
    background = tuple(rng.randint(30, 230) for _ in range(3))
    canvas = _Canvas(size, background)
    head = _place_head(labels, rng, size)
    _draw_body_and_back_hair(canvas, head, rng)
    _draw_head(canvas, head)
    eye_y = _draw_eyes(canvas, head)
    mouth = _draw_nose_and_mouth(canvas, head, eye_y)
    _draw_beard_makeup_hat(canvas, head, rng, mouth)
    photo, label_map = canvas.finish(size)
    return _add_nuisances(photo, label_map, rng, background, size)


def synthetic_face(index: int, seed: int = 0, size: int = 64) -> dict:
    """Face number `index` of the stream `seed`: the same inputs always give the same face."""
    rng = random.Random(f"faceinsight-synthetic-{seed}-{index}")
    labels = sample_labels(rng)
    image, parsing_map = render_face(labels, rng, size)
    return {"image": image, "parsing_map": parsing_map, "labels": labels}
