"""`faceinsight parse`: label map, overlay and statistics for each image, with progress; failures are reported by
name and skipped."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from faceinsight.modeling.schema_faceinsight import FACE_PARTS, LABEL_INDEX
from faceinsight.parsing.labels import class_pixel_counts, overlay, to_palette_image

FACE_CLASS_INDICES = [LABEL_INDEX[name] for name in FACE_PARTS]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def collect_images(inputs: list[str]) -> list[Path]:
    """Files as given; directories walked recursively for image files (sorted)."""
    found = []
    for entry in map(Path, inputs):
        if entry.is_dir():
            found.extend(sorted(p for p in entry.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            found.append(entry)
    return found


def load_image(path: Path):
    """An upright RGB image (EXIF orientation, any PIL mode); errors name the file."""
    from faceinsight.processing.image_processing_faceinsight import FaceInsightImageProcessor, open_image

    return FaceInsightImageProcessor().to_rgb(open_image(path))


def choose_backend(backend: str | None, model_dir: str | None) -> str:
    """`backend` as given, or what is there: the model's parser with `model_dir`, else MediaPipe when installed."""
    if backend is not None:
        return backend
    import importlib.util

    if model_dir:
        return "model"
    if importlib.util.find_spec("mediapipe") is not None:
        return "mediapipe"
    raise ValueError(
        "no parsing backend: MediaPipe is not installed (pip install 'faceinsight[mediapipe]', about "
        "550 MB) and no --model was given (--backend model --model DIR)"
    )


def make_parser(backend: str, model_dir: str | None):
    if backend == "mediapipe":
        from faceinsight.parsing.mediapipe_backend import MediaPipeFaceParser

        return MediaPipeFaceParser()
    if backend == "model":
        if not model_dir:
            raise ValueError("--backend model needs --model MODEL_DIR (a FaceInsight or parser folder)")
        from faceinsight.parsing.model_backend import ModelFaceParser

        return ModelFaceParser(model_dir)
    raise ValueError(f"unknown backend {backend!r}; use mediapipe or model")


def parse_images(inputs: list[str], output_dir: str | Path, backend: str | None = None, model_dir: str | None = None):
    """Writes NAME_labels.png (palette PNG: pixel value = label index), NAME_overlay.png and NAME.json per image.
    Returns (written stems, {path: error})."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    backend = choose_backend(backend, model_dir)
    parser = make_parser(backend, model_dir)
    written, failed, used = [], {}, set()
    for path in tqdm(collect_images(inputs), desc="parsing", unit="image"):
        try:
            image = load_image(path)
            result = parser.parse(image)
        except (OSError, ValueError, TypeError) as error:
            failed[str(path)] = str(error)
            print(f"faceinsight parse: skipped {path}: {error}", file=sys.stderr)
            continue
        stem, suffix = path.stem, 1
        while stem in used:
            suffix += 1
            stem = f"{path.stem}_{suffix}"
        used.add(stem)
        to_palette_image(result.label_map).save(output_dir / f"{stem}_labels.png")
        overlay(image, result.label_map).save(output_dir / f"{stem}_overlay.png")
        stats = {
            "image": str(path),
            "backend": backend,
            "width": image.width,
            "height": image.height,
            "face_found": result.face_found,
            "face_share": round(float(np.isin(result.label_map, FACE_CLASS_INDICES).mean()), 4),
            "face_boxes": result.face_boxes,
            "class_pixel_counts": class_pixel_counts(result.label_map),
        }
        (output_dir / f"{stem}.json").write_text(json.dumps(stats, indent=2) + "\n")
        written.append(stem)
    return written, failed
