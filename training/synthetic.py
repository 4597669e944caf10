"""Synthetic faces: the embedded default dataset that needs no download.

A deterministic generator (one face per (seed, index)) of drawn face images with exact CelebAMask-HQ parsing maps
and labels for all three tasks. The labels have real structure:

* correlations: lipstick, makeup and earrings are far more likely on women; beards, goatees and moustaches only on
  men; grey hair grows with the age bin; bald heads are mostly older men;
* hard rules: bald excludes bangs and every hair colour; exactly one hair colour when not bald; goatee excludes
  no-beard; Young iff the age bin is under 30; Happiness implies Smiling; exactly one value per categorical facet;

and nuisance variation (head position, scale and tilt, background colour and texture, lighting gradient, random
occluding patches) so that the task is not trivial. Attributes of CelebA's 40 that are not drawn are unknown (-100).
"""

from __future__ import annotations

import math
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from faceinsight.modeling.schema_faceinsight import AGE_BINS
from faceinsight.parsing.labels import LABEL_INDEX

AGE_WEIGHTS = [0.03, 0.07, 0.12, 0.2, 0.18, 0.14, 0.11, 0.09, 0.06]
RACES = ["White", "Black", "Latino_Hispanic", "East Asian", "Southeast Asian", "Indian", "Middle Eastern"]
EXPRESSIONS = ["Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral"]
# skin-tone groups ("race-like"): a base RGB tone each; individuals vary around it
SKIN_TONES = {
    "White": (236, 200, 178), "Black": (110, 72, 52), "Latino_Hispanic": (205, 160, 122),
    "East Asian": (240, 208, 168), "Southeast Asian": (200, 152, 108), "Indian": (170, 118, 84),
    "Middle Eastern": (214, 170, 134),
}  # fmt: skip
HAIR_COLOURS = {"Black_Hair": (25, 20, 20), "Brown_Hair": (105, 65, 35), "Blond_Hair": (225, 195, 110),
                "Gray_Hair": (170, 170, 170)}  # fmt: skip
DRAWN_ATTRIBUTES = ["Bald", "Bangs", "Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair", "Eyeglasses", "Goatee",
                    "Mustache", "No_Beard", "Smiling", "Mouth_Slightly_Open", "Wearing_Lipstick", "Heavy_Makeup",
                    "Wearing_Earrings", "Wearing_Hat", "Male", "Young", "Big_Nose", "Narrow_Eyes",
                    "Bushy_Eyebrows", "Pale_Skin"]  # fmt: skip


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

    def _xy(self, box):
        return [v * self.scale for v in box]

    def ellipse(self, box, colour, label):
        self.draw_photo.ellipse(self._xy(box), fill=colour)
        if label is not None:
            self.draw_labels.ellipse(self._xy(box), fill=LABEL_INDEX[label])

    def polygon(self, points, colour, label):
        pts = [(x * self.scale, y * self.scale) for x, y in points]
        self.draw_photo.polygon(pts, fill=colour)
        if label is not None:
            self.draw_labels.polygon(pts, fill=LABEL_INDEX[label])

    def line(self, points, colour, width, label=None):
        pts = [(x * self.scale, y * self.scale) for x, y in points]
        self.draw_photo.line(pts, fill=colour, width=max(1, int(width * self.scale)), joint="curve")
        if label is not None:
            self.draw_labels.line(pts, fill=LABEL_INDEX[label], width=max(1, int(width * self.scale)))

    def finish(self, size):
        photo = self.photo.resize((size, size), Image.Resampling.LANCZOS)
        labels = self.labels.resize((size, size), Image.Resampling.NEAREST)
        return photo, labels


def _shade(colour, factor):
    return tuple(int(max(0, min(255, c * factor))) for c in colour)


def render_face(labels: dict, rng: random.Random, size: int = 64) -> tuple[Image.Image, np.ndarray]:
    """Draw a face for `labels`; returns the photo and its exact label map (same size)."""
    background = tuple(rng.randint(30, 230) for _ in range(3))
    canvas = _Canvas(size, background)
    s = size * rng.uniform(0.85, 1.1)  # head scale
    cx, cy = size / 2 + rng.uniform(-0.08, 0.08) * size, size / 2 + rng.uniform(-0.05, 0.08) * size
    face_w, face_h = 0.36 * s, 0.46 * s
    child = labels["age"] in ("0-2", "3-9")
    if child:
        face_w, face_h = face_w * 1.05, face_h * 0.92
    tone = SKIN_TONES[labels["race"]]
    tone = _shade(tone, rng.uniform(0.9, 1.08) * (1.12 if labels["Pale_Skin"] else 1.0))
    hair_colour = HAIR_COLOURS.get(next((h for h in HAIR_COLOURS if labels[h]), ""), None)
    male = labels["Male"] == 1

    # body: cloth and neck
    cloth = tuple(rng.randint(20, 235) for _ in range(3))
    canvas.polygon([(cx - 0.75 * face_w * 2, size), (cx - 0.55 * face_w, cy + 0.85 * face_h),
                    (cx + 0.55 * face_w, cy + 0.85 * face_h), (cx + 0.75 * face_w * 2, size)], cloth, "cloth")  # fmt: skip
    canvas.polygon([(cx - 0.3 * face_w, cy + 0.4 * face_h), (cx + 0.3 * face_w, cy + 0.4 * face_h),
                    (cx + 0.32 * face_w, cy + 0.95 * face_h), (cx - 0.32 * face_w, cy + 0.95 * face_h)],
                   _shade(tone, 0.85), "neck")  # fmt: skip
    # hair behind the head (long hair for most women)
    if hair_colour is not None:
        long_hair = not male and rng.random() < 0.8
        bottom = cy + (0.75 if long_hair else 0.1) * face_h
        canvas.ellipse([cx - 1.12 * face_w, cy - 1.12 * face_h, cx + 1.12 * face_w, bottom], hair_colour, "hair")
    # ears, earrings
    for side in (-1, 1):
        ex = cx + side * 0.98 * face_w
        canvas.ellipse([ex - 0.13 * face_w, cy - 0.15 * face_h, ex + 0.13 * face_w, cy + 0.12 * face_h],
                       _shade(tone, 0.92), "l_ear" if side > 0 else "r_ear")  # fmt: skip
        if labels["Wearing_Earrings"]:
            canvas.ellipse([ex - 0.06 * face_w, cy + 0.12 * face_h, ex + 0.06 * face_w, cy + 0.22 * face_h],
                           (240, 200, 40), "ear_r")  # fmt: skip
    # face
    canvas.ellipse([cx - face_w, cy - face_h, cx + face_w, cy + face_h], tone, "skin")
    if hair_colour is not None:  # hairline on top of the forehead
        canvas.polygon([(cx - 1.02 * face_w, cy - 0.25 * face_h), (cx - 0.7 * face_w, cy - 1.05 * face_h),
                        (cx + 0.7 * face_w, cy - 1.05 * face_h), (cx + 1.02 * face_w, cy - 0.25 * face_h),
                        (cx + 0.8 * face_w, cy - 0.62 * face_h), (cx - 0.8 * face_w, cy - 0.62 * face_h)],
                       hair_colour, "hair")  # fmt: skip
        if labels["Bangs"]:
            canvas.polygon([(cx - 0.8 * face_w, cy - 0.65 * face_h), (cx + 0.8 * face_w, cy - 0.65 * face_h),
                            (cx + 0.7 * face_w, cy - 0.38 * face_h), (cx - 0.7 * face_w, cy - 0.42 * face_h)],
                           hair_colour, "hair")  # fmt: skip
    # wrinkles with age
    if labels["age"] in ("50-59", "60-69", "70+"):
        for k in range(2 + AGE_BINS.index(labels["age"]) - 6 + 1):
            y = cy - (0.55 - 0.08 * k) * face_h
            canvas.line([(cx - 0.4 * face_w, y), (cx + 0.4 * face_w, y)], _shade(tone, 0.75), 0.3)

    expression = labels["expression"]
    eye_y, eye_dx = cy - 0.12 * face_h, 0.42 * face_w
    eye_w, eye_h = 0.2 * face_w, (0.07 if labels["Narrow_Eyes"] else 0.13) * face_h
    if expression in ("Surprise", "Fear"):
        eye_h *= 1.4
    if expression == "Disgust":
        eye_h *= 0.6
    brow_raise = {"Surprise": 0.12, "Fear": 0.1, "Sadness": 0.04, "Anger": -0.05}.get(expression, 0.0)
    brow_tilt = {"Anger": 0.08, "Sadness": -0.07, "Fear": -0.04}.get(expression, 0.0)
    brow_colour = hair_colour or (60, 45, 35)
    brow_width = (0.09 if labels["Bushy_Eyebrows"] else 0.045) * face_h
    for side, eye_label, brow_label in ((1, "l_eye", "l_brow"), (-1, "r_eye", "r_brow")):  # person's left = image right
        ex = cx + side * eye_dx
        canvas.ellipse([ex - eye_w, eye_y - eye_h / 2, ex + eye_w, eye_y + eye_h / 2], (245, 245, 245), eye_label)
        canvas.ellipse([ex - 0.35 * eye_w, eye_y - eye_h / 2.2, ex + 0.35 * eye_w, eye_y + eye_h / 2.2],
                       (50, 35, 25), None)  # fmt: skip
        by = eye_y - (0.17 + brow_raise) * face_h
        inner, outer = (ex - side * 0.9 * eye_w, by + brow_tilt * face_h), (ex + side * 1.1 * eye_w, by - 0.02 * face_h)
        canvas.line([inner, outer], brow_colour, brow_width / 1.0, brow_label)
    if labels["Eyeglasses"]:
        frame = (20, 20, 20)
        for side in (1, -1):
            ex = cx + side * eye_dx
            box = [ex - 1.4 * eye_w, eye_y - 0.16 * face_h, ex + 1.4 * eye_w, eye_y + 0.14 * face_h]
            canvas.draw_photo.ellipse(canvas._xy(box), outline=frame, width=canvas.scale)
            canvas.draw_labels.ellipse(canvas._xy(box), outline=LABEL_INDEX["eye_g"], width=canvas.scale)
        canvas.line([(cx - eye_dx + 1.4 * eye_w, eye_y), (cx + eye_dx - 1.4 * eye_w, eye_y)], frame, 0.6, "eye_g")
    # nose
    nose_w = (0.2 if labels["Big_Nose"] else 0.13) * face_w
    canvas.polygon([(cx, eye_y + 0.02 * face_h), (cx - nose_w, cy + 0.28 * face_h), (cx + nose_w, cy + 0.28 * face_h)],
                   _shade(tone, 0.88), "nose")  # fmt: skip
    # mouth and lips
    mouth_y, mouth_w = cy + 0.52 * face_h, (0.3 if child else 0.36) * face_w
    lip_colour = (185, 25, 45) if labels["Wearing_Lipstick"] else _shade(tone, 0.78)
    curve = {"Happiness": 0.1, "Sadness": -0.08, "Anger": -0.02, "Disgust": 0.03}.get(expression, 0.0)
    if labels["Smiling"] and expression != "Happiness":
        curve = 0.06
    opening = 0.0
    if labels["Mouth_Slightly_Open"]:
        opening = 0.1 if expression == "Surprise" else 0.05
    left, right = (cx - mouth_w, mouth_y - curve * face_h), (cx + mouth_w, mouth_y - curve * face_h)
    if expression == "Disgust":
        right = (right[0], right[1] - 0.05 * face_h)
    upper_top, lower_bottom = mouth_y - 0.06 * face_h, mouth_y + (0.07 + opening) * face_h
    canvas.polygon([left, (cx, upper_top), right, (cx, mouth_y)], lip_colour, "u_lip")
    canvas.polygon([left, (cx, mouth_y + opening * face_h), right, (cx, lower_bottom)], _shade(lip_colour, 0.92),
                   "l_lip")  # fmt: skip
    if opening > 0:
        canvas.polygon([left, (cx, mouth_y), right, (cx, mouth_y + opening * face_h)], (60, 15, 20), "mouth")
    # facial hair (drawn as skin-covering hair regions; labelled skin as in CelebAMask-HQ)
    beard_colour = hair_colour or (50, 40, 35)
    if labels["Mustache"]:
        canvas.polygon([(cx - mouth_w * 1.05, upper_top - 0.01 * face_h), (cx, upper_top - 0.09 * face_h),
                        (cx + mouth_w * 1.05, upper_top - 0.01 * face_h), (cx, upper_top + 0.02 * face_h)],
                       beard_colour, "skin")  # fmt: skip
    if labels["Goatee"]:
        canvas.ellipse([cx - 0.22 * face_w, lower_bottom + 0.02 * face_h, cx + 0.22 * face_w, cy + 0.97 * face_h],
                       beard_colour, "skin")  # fmt: skip
    elif not labels["No_Beard"]:
        canvas.polygon([(cx - 0.95 * face_w, cy + 0.1 * face_h), (cx - 0.5 * face_w, cy + 0.85 * face_h),
                        (cx, cy + face_h), (cx + 0.5 * face_w, cy + 0.85 * face_h), (cx + 0.95 * face_w, cy + 0.1 * face_h),
                        (cx + 0.6 * face_w, cy + 0.72 * face_h), (cx - 0.6 * face_w, cy + 0.72 * face_h)],
                       beard_colour, "skin")  # fmt: skip
    if labels["Heavy_Makeup"]:
        for side in (1, -1):
            ex = cx + side * 0.55 * face_w
            canvas.ellipse([ex - 0.15 * face_w, cy + 0.15 * face_h, ex + 0.15 * face_w, cy + 0.3 * face_h],
                           (225, 120, 130), None)  # fmt: skip
    if labels["Wearing_Hat"]:
        hat = tuple(rng.randint(10, 240) for _ in range(3))
        canvas.polygon([(cx - 1.25 * face_w, cy - 0.68 * face_h), (cx + 1.25 * face_w, cy - 0.68 * face_h),
                        (cx + 0.9 * face_w, cy - 0.82 * face_h), (cx + 0.75 * face_w, cy - 1.35 * face_h),
                        (cx - 0.75 * face_w, cy - 1.35 * face_h), (cx - 0.9 * face_w, cy - 0.82 * face_h)],
                       hat, "hat")  # fmt: skip

    photo, label_map = canvas.finish(size)
    # nuisances: tilt, lighting gradient, texture, occlusion
    angle = rng.uniform(-12, 12)
    photo = photo.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=background)
    label_map = label_map.rotate(angle, resample=Image.Resampling.NEAREST, fillcolor=0)
    pixels = np.asarray(photo, dtype=np.float32)
    direction = rng.uniform(0, 2 * math.pi)
    ramp = np.cos(direction) * np.linspace(-1, 1, size)[None, :] + np.sin(direction) * np.linspace(-1, 1, size)[:, None]
    pixels = pixels * (1 + rng.uniform(0.1, 0.35) * ramp)[..., None] * rng.uniform(0.75, 1.2)
    pixels += np.random.default_rng(rng.randrange(2**32)).normal(0, rng.uniform(2, 10), pixels.shape)
    labels_array = np.asarray(label_map, dtype=np.uint8).copy()
    if rng.random() < 0.2:  # an occluding patch hides part of the face; hidden parts are not labelled
        w, h = rng.randint(size // 6, size // 3), rng.randint(size // 6, size // 3)
        x, y = rng.randint(0, size - w), rng.randint(size // 4, size - h)
        pixels[y : y + h, x : x + w] = rng.randint(0, 255)
        labels_array[y : y + h, x : x + w] = 0
    photo = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        photo = photo.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9)))
    return photo, labels_array


def synthetic_face(index: int, seed: int = 0, size: int = 64) -> dict:
    """Face number `index` of the stream `seed`: the same inputs always give the same face."""
    rng = random.Random(f"faceinsight-synthetic-{seed}-{index}")
    labels = sample_labels(rng)
    image, parsing_map = render_face(labels, rng, size)
    return {"image": image, "parsing_map": parsing_map, "labels": labels}
