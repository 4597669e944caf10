"""CelebAMask-HQ in its original layout: per-part binary masks combined into one label map per image.

    ROOT/CelebA-HQ-img/{index}.jpg                               (1024 x 1024 photos)
    ROOT/CelebAMask-HQ-mask-anno/{index // 2000}/{index:05d}_{part}.png   (512 x 512, white = part)

Parts are painted in the dataset's own order (its g_mask.py: skin first, cloth last), later parts over earlier
ones, so hair over skin and so on; the part order is the label order of our scheme.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from faceinsight.modeling.schema_faceinsight import CELEBAMASK_HQ_LABELS

IMAGE_FOLDER = "CelebA-HQ-img"
MASK_FOLDER = "CelebAMask-HQ-mask-anno"
PARTS = CELEBAMASK_HQ_LABELS[1:]  # background is what no part covers


class CelebAMaskHQ:
    """Indexable pairs (image path, label map) of a CelebAMask-HQ folder; only images present on disk count."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        image_dir, mask_dir = self.root / IMAGE_FOLDER, self.root / MASK_FOLDER
        for folder in (image_dir, mask_dir):
            if not folder.is_dir():
                raise FileNotFoundError(
                    f"{folder} not found: a CelebAMask-HQ root holds {IMAGE_FOLDER}/ and {MASK_FOLDER}/"
                )
        indices = []
        for path in image_dir.iterdir():
            if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
                if not path.stem.isdigit():
                    raise ValueError(f"{path}: CelebA-HQ image names are their index (0.jpg .. 29999.jpg)")
                indices.append(int(path.stem))
        self.indices = sorted(indices)
        self._image_paths = {int(p.stem): p for p in image_dir.iterdir() if p.stem.isdigit()}

    def __len__(self) -> int:
        return len(self.indices)

    def image_path(self, position: int) -> Path:
        return self._image_paths[self.indices[position]]

    def mask_paths(self, index: int) -> dict[str, Path]:
        folder = self.root / MASK_FOLDER / str(index // 2000)
        return {
            part: folder / f"{index:05d}_{part}.png" for part in PARTS if (folder / f"{index:05d}_{part}.png").exists()
        }

    def label_map(self, position: int) -> np.ndarray:
        index = self.indices[position]
        masks = self.mask_paths(index)
        if not masks:
            raise ValueError(
                f"image {index}: no part masks in {self.root / MASK_FOLDER / str(index // 2000)} "
                f"(expected files such as {index:05d}_skin.png)"
            )
        label_map, size = None, None
        for part in PARTS:  # dataset order: later parts overwrite earlier ones
            if part not in masks:
                continue
            try:
                with Image.open(masks[part]) as opened:
                    mask = np.asarray(opened.convert("L")) > 127
            except OSError as error:
                raise ValueError(f"{masks[part]}: unreadable mask: {error}") from None
            if size is None:
                size, label_map = mask.shape, np.zeros(mask.shape, dtype=np.uint8)
            elif mask.shape != size:
                raise ValueError(
                    f"{masks[part]} is {mask.shape[::-1]} but the other masks of image {index} are {size[::-1]}"
                )
            label_map[mask] = CELEBAMASK_HQ_LABELS.index(part)
        return label_map
