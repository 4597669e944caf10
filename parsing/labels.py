"""The CelebAMask-HQ label scheme as pictures and numbers: palette images, overlays, per-class pixel counts.

The scheme itself (names, indices, palette) is defined once in `faceinsight.modeling.schema_faceinsight`, which the
model, the processor (through its saved attributes), these tools and the tests all read.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from faceinsight.modeling.schema_faceinsight import (
    CELEBAMASK_HQ_LABELS,
    CELEBAMASK_HQ_PALETTE,
    NUM_PARSING_LABELS,
)

_FLAT_PALETTE = [channel for colour in CELEBAMASK_HQ_PALETTE for channel in colour]


def check_label_map(label_map: np.ndarray, source: str = "label map") -> np.ndarray:
    label_map = np.asarray(label_map)
    if label_map.ndim != 2:
        raise ValueError(f"{source} has shape {label_map.shape}; expected (height, width) of label indices")
    if label_map.size and (label_map.min() < 0 or label_map.max() >= NUM_PARSING_LABELS):
        raise ValueError(
            f"{source} holds labels in [{label_map.min()}, {label_map.max()}]; valid are 0..{NUM_PARSING_LABELS - 1}"
        )
    return label_map.astype(np.uint8)


def to_palette_image(label_map: np.ndarray) -> Image.Image:
    """A mode-P PNG-ready image: pixel values are the label indices, the palette shows the classes' colours."""
    image = Image.fromarray(check_label_map(label_map), mode="P")
    image.putpalette(_FLAT_PALETTE + [0] * (768 - len(_FLAT_PALETTE)))
    return image


def colorize(label_map: np.ndarray) -> np.ndarray:
    return np.asarray(CELEBAMASK_HQ_PALETTE, dtype=np.uint8)[check_label_map(label_map)]


def overlay(image: Image.Image, label_map: np.ndarray, alpha: float = 0.5) -> Image.Image:
    """The photo with the class colours blended over every non-background pixel (8-bit throughout: a 40-megapixel
    photo costs a few copies of its own size, not float arrays eight times as large)."""
    label_map = check_label_map(label_map)
    photo = image.convert("RGB")
    if photo.size != label_map.shape[::-1]:
        photo = photo.resize(label_map.shape[::-1])
    blended = Image.blend(photo, Image.fromarray(colorize(label_map)), alpha)
    return Image.composite(blended, photo, Image.fromarray((label_map > 0).astype(np.uint8) * 255))


def class_pixel_counts(label_map: np.ndarray) -> dict[str, int]:
    counts = np.bincount(check_label_map(label_map).ravel(), minlength=NUM_PARSING_LABELS)
    return {name: int(counts[index]) for index, name in enumerate(CELEBAMASK_HQ_LABELS)}


def legend(width: int = 220, row_height: int = 18) -> Image.Image:
    """A small picture naming each class's colour (for reports)."""
    from PIL import ImageDraw

    picture = Image.new("RGB", (width, row_height * NUM_PARSING_LABELS), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    for index, (name, colour) in enumerate(zip(CELEBAMASK_HQ_LABELS, CELEBAMASK_HQ_PALETTE)):
        top = index * row_height
        draw.rectangle([2, top + 2, row_height + 2, top + row_height - 2], fill=colour, outline=(0, 0, 0))
        draw.text((row_height + 8, top + 3), f"{index:2d} {name}", fill=(0, 0, 0))
    return picture


def sheet_with_legend(columns: list[str], rows: list[list[Image.Image]], cell: int) -> Image.Image:
    """A picture sheet: a header naming each column, one row of `cell`-sized pictures per entry of `rows`, and the
    class colours' legend on the right."""
    from PIL import ImageDraw

    header, key = 18, legend()
    width = len(columns) * cell
    sheet = Image.new("RGB", (width + key.width, max(header + len(rows) * cell, key.height)), "white")
    draw = ImageDraw.Draw(sheet)
    for column, title in enumerate(columns):
        draw.text((column * cell + 4, 3), title, fill="black")
    for row, pictures in enumerate(rows):
        for column, picture in enumerate(pictures):
            sheet.paste(picture.resize((cell, cell), Image.NEAREST), (column * cell, header + row * cell))
    sheet.paste(key, (width, 0))
    return sheet
