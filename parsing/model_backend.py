"""Face parsing with a trained SegFormer: the parser inside a FaceInsight folder, or a standalone parser folder
written by `faceinsight train-parser`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from faceinsight.modeling.schema_faceinsight import FACE_PARTS, LABEL_INDEX
from faceinsight.parsing.mediapipe_backend import FaceParsingResult
from faceinsight.processing.processing_faceinsight import MIN_FACE_SHARE

FACE_CLASSES = [LABEL_INDEX[name] for name in FACE_PARTS]


class ModelFaceParser:
    """Photo -> `FaceParsingResult` at the photo's resolution. A face is found when face parts cover at least
    MIN_FACE_SHARE of the map (a parser paints some skin on anything; this is its face-presence signal); the box
    covers all face-class pixels (this backend does not separate faces)."""

    def __init__(self, model_dir: str | Path, device: str = "cpu"):
        from transformers import AutoModelForSemanticSegmentation

        from faceinsight.processing.image_processing_faceinsight import FaceInsightImageProcessor

        model_dir = Path(model_dir)
        config_file = model_dir / "config.json"
        if not config_file.exists():
            raise FileNotFoundError(f"{model_dir} is not a model folder (no config.json)")
        model_type = json.loads(config_file.read_text()).get("model_type")
        self.image_processor = FaceInsightImageProcessor.from_pretrained(model_dir)
        if model_type == "faceinsight":
            from faceinsight import FaceInsightForConditionalGeneration

            model = FaceInsightForConditionalGeneration.from_pretrained(model_dir, use_safetensors=True)
            self._parse = model.model.parse_faces
        elif model_type == "segformer":
            parser = AutoModelForSemanticSegmentation.from_pretrained(model_dir, use_safetensors=True)
            model = parser

            def parse(pixel_values):
                logits = parser(pixel_values=pixel_values).logits
                return F.interpolate(logits, size=pixel_values.shape[-2:], mode="bilinear").argmax(1)

            self._parse = parse
        else:
            raise ValueError(f"{model_dir} holds a {model_type!r} model; expected a FaceInsight or SegFormer folder")
        self.model = model.to(device).eval()
        self.device = device

    @torch.no_grad()
    def parse(self, image: Image.Image) -> FaceParsingResult:
        pixel_values = self.image_processor([image])["pixel_values"].to(self.device)
        labels = self._parse(pixel_values)[0].cpu()
        label_map = F.interpolate(labels[None, None].float(), size=(image.height, image.width), mode="nearest")
        label_map = label_map[0, 0].numpy().astype(np.uint8)
        face = np.isin(label_map, FACE_CLASSES)
        if face.mean() < MIN_FACE_SHARE:
            return FaceParsingResult(label_map=label_map)
        ys, xs = np.nonzero(face)
        return FaceParsingResult(
            label_map=label_map, face_boxes=[[int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]]
        )
