"""Offline face parsing from real pretrained weights: MediaPipe's face mesh (478 landmarks) and selfie segmentation,
rasterised into the CelebAMask-HQ label scheme.

Install with `pip install "faceinsight[mediapipe]"` (mediapipe 0.10.21: the last release with the face-mesh solution
and its models inside the wheel; nothing is downloaded at run time).

What it produces and how:
  skin        the face-oval polygon of the mesh (then the parts below are painted over it)
  l_brow/r_brow, l_eye/r_eye   mesh contours (l_/r_ are the person's left/right, as MediaPipe names them: in an
              unmirrored photo the person's left eye is on the image's right)
  nose        convex hull of the mesh's nose landmarks
  u_lip/l_lip/mouth            outer and inner lip contours (mouth = the opening between the lips)
  hair        person pixels (selfie segmentation) outside the face oval and above the mouth line
  neck        person pixels in a band under the face down to 0.45 face heights below the chin, inside its width
  cloth       the remaining person pixels below the mouth line
  background  everything else
It cannot produce: eye_g (eyeglasses), l_ear/r_ear (ears become hair or background), hat (becomes hair), ear_r
(earrings), neck_l (necklace). Hair, neck and cloth are a geometric guess from the person mask, not a classifier.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from faceinsight.modeling.schema_faceinsight import LABEL_INDEX

INSTALL_HINT = 'the mediapipe backend needs the optional extra: pip install "faceinsight[mediapipe]"'
PRODUCED_CLASSES = (
    "background",
    "skin",
    "nose",
    "l_eye",
    "r_eye",
    "l_brow",
    "r_brow",
    "mouth",
    "u_lip",
    "l_lip",
    "hair",
    "neck",
    "cloth",
)

# Lip contours of MediaPipe's canonical face mesh, mouth corner to mouth corner (61/78 -> 291/308).
LIPS_UPPER_OUTER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LIPS_LOWER_OUTER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
LIPS_UPPER_INNER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LIPS_LOWER_INNER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]


@dataclass
class FaceParsingResult:
    """One label map for the whole image (all faces), per-face boxes [x0, y0, x1, y1] in pixels, and a flag."""

    label_map: np.ndarray
    face_boxes: list[list[int]] = field(default_factory=list)

    @property
    def face_found(self) -> bool:
        return bool(self.face_boxes)


MAX_ASPECT_RATIO = 4.0  # longer side / shorter side given to MediaPipe


def letterboxed(image: Image.Image, max_ratio: float) -> tuple[Image.Image, tuple[int, int]]:
    """`image` padded with black (centred) so that its long side is at most `max_ratio` times its short side, and
    the offset of the original inside it; `image` itself when it already is."""
    width, height = image.size
    if max(width, height) <= max_ratio * min(width, height):
        return image, (0, 0)
    new_width = max(width, round(height / max_ratio))
    new_height = max(height, round(width / max_ratio))
    canvas = Image.new("RGB", (new_width, new_height))
    offset = ((new_width - width) // 2, (new_height - height) // 2)
    canvas.paste(image, offset)
    return canvas, offset


def edges_to_polygon(edges) -> list[int]:
    """Order a contour given as an unordered set of mesh edges: one closed loop, or two open chains (the upper and
    lower edge of a brow) joined into one polygon."""
    neighbours: dict[int, list[int]] = {}
    for a, b in edges:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    chains, seen = [], set()
    ends = [node for node, linked in neighbours.items() if len(linked) == 1]
    for start in ends + list(neighbours):
        if start in seen:
            continue
        chain, previous, current = [start], None, start
        seen.add(start)
        while True:
            following = [n for n in neighbours[current] if n != previous and n not in seen]
            if not following:
                break
            previous, current = current, following[0]
            chain.append(current)
            seen.add(current)
        chains.append(chain)
    if len(chains) == 1:
        return chains[0]
    first, second = chains[0], chains[1]
    return first + second[::-1]


class MediaPipeFaceParser:
    """Photo -> `FaceParsingResult`. Images whose short side is under `min_side` px are upscaled for detection."""

    def __init__(self, max_faces: int = 8, min_detection_confidence: float = 0.5, min_side: int = 192):
        try:
            import mediapipe as mp
        except ImportError as error:
            raise ImportError(INSTALL_HINT) from error
        if not hasattr(mp, "solutions") or not hasattr(mp.solutions, "face_mesh"):
            raise ImportError(f"this mediapipe ({mp.__version__}) has no face-mesh solution; {INSTALL_HINT}")
        connections = mp.solutions.face_mesh_connections
        self._detector = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=min_detection_confidence
        )  # full-range detector: small and distant faces too
        self._face_mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True,
            max_num_faces=max_faces,
            refine_landmarks=True,
            min_detection_confidence=min_detection_confidence,
        )
        self._crop_mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.3
        )
        self.max_faces = max_faces
        self._person = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faceinsight-person")
        self.min_side = min_side
        self.contours = {
            "skin": edges_to_polygon(connections.FACEMESH_FACE_OVAL),
            "l_eye": edges_to_polygon(connections.FACEMESH_LEFT_EYE),
            "r_eye": edges_to_polygon(connections.FACEMESH_RIGHT_EYE),
            "l_brow": edges_to_polygon(connections.FACEMESH_LEFT_EYEBROW),
            "r_brow": edges_to_polygon(connections.FACEMESH_RIGHT_EYEBROW),
            "u_lip": LIPS_UPPER_OUTER + LIPS_UPPER_INNER[::-1],
            "l_lip": LIPS_LOWER_OUTER + LIPS_LOWER_INNER[::-1],
            "mouth": LIPS_UPPER_INNER + LIPS_LOWER_INNER[-2:0:-1],
        }
        self.nose_points = sorted({i for edge in connections.FACEMESH_NOSE for i in edge})

    def close(self):
        self._detector.close()
        self._crop_mesh.close()
        self._face_mesh.close()
        self._person.close()
        self._pool.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -------------------------------------------------------------------------------------------------------------
    def parse(self, image: Image.Image) -> FaceParsingResult:
        """`image`: an upright RGB PIL image (see `load_image` for files: EXIF orientation, any mode). An image
        more elongated than MAX_ASPECT_RATIO is padded with black to that ratio for MediaPipe (whose upscaling of a
        1 x 5000 strip would exceed OpenCV's size limit and abort the process), and the map cropped back."""
        image = image.convert("RGB")
        padded, (dx, dy) = letterboxed(image, MAX_ASPECT_RATIO)
        result = self._parse(padded)
        if padded is image:
            return result
        label_map = result.label_map[dy : dy + image.height, dx : dx + image.width]
        boxes = [
            [max(0, x0 - dx), max(0, y0 - dy), min(image.width - 1, x1 - dx), min(image.height - 1, y1 - dy)]
            for x0, y0, x1, y1 in result.face_boxes
        ]
        return FaceParsingResult(label_map=np.ascontiguousarray(label_map), face_boxes=boxes)

    def _parse(self, image: Image.Image) -> FaceParsingResult:
        width, height = image.size
        label_map = np.zeros((height, width), dtype=np.uint8)
        detection_input = self._upscaled(image)
        # the person segmenter does not depend on the faces: it runs on a second thread while they are found (the
        # graphs wait outside the GIL), and its mask is used only when a face is
        person_mask = self._pool.submit(lambda: self._person.process(detection_input).segmentation_mask)
        faces = self._meshes_from_detections(image, detection_input)
        if not faces:  # the mesh's own (short-range) detector as a second opinion
            meshes = self._face_mesh.process(detection_input).multi_face_landmarks or []
            faces = [np.array([(p.x * width, p.y * height) for p in m.landmark], dtype=np.float32) for m in meshes]
        person = person_mask.result()
        if not faces:
            return FaceParsingResult(label_map=label_map)
        if person.shape != (height, width):
            person = np.asarray(Image.fromarray(person).resize((width, height), Image.Resampling.BILINEAR))
        self._paint_person(label_map, person > 0.5, faces)
        for points in faces:
            self._paint_face(label_map, points)
        boxes = []
        for points in faces:
            x0, y0 = np.floor(points.min(0)).clip(0).astype(int)
            x1, y1 = np.ceil(points.max(0)).astype(int)
            boxes.append([int(x0), int(y0), int(min(x1, width - 1)), int(min(y1, height - 1))])
        return FaceParsingResult(label_map=label_map, face_boxes=boxes)

    def _upscaled(self, image: Image.Image) -> np.ndarray:
        """The image with its short side at least `min_side` (small faces are found more reliably)."""
        if min(image.size) >= self.min_side:
            return np.ascontiguousarray(np.asarray(image))
        factor = self.min_side / min(image.size)
        size = (round(image.width * factor), round(image.height * factor))
        return np.asarray(image.resize(size, Image.Resampling.BICUBIC))

    def _meshes_from_detections(self, image: Image.Image, detection_input: np.ndarray) -> list[np.ndarray]:
        """Detect faces (full range), then fit the 478-point mesh inside each face's enlarged crop."""
        detections = (self._detector.process(detection_input).detections or [])[: self.max_faces]
        faces = []
        for detection in detections:
            box = detection.location_data.relative_bounding_box
            cx = (box.xmin + box.width / 2) * image.width
            cy = (box.ymin + box.height / 2) * image.height
            side = 2.0 * max(box.width * image.width, box.height * image.height)
            left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
            crop = image.crop((left, top, left + int(side), top + int(side)))  # pads outside with black
            scale = max(1.0, self.min_side / crop.width)
            if scale > 1:
                crop = crop.resize((round(crop.width * scale), round(crop.height * scale)), Image.Resampling.BICUBIC)
            meshes = self._crop_mesh.process(np.asarray(crop)).multi_face_landmarks or []
            if meshes:
                points = np.array([(p.x, p.y) for p in meshes[0].landmark], dtype=np.float32)
                faces.append(points * np.array([int(side), int(side)], dtype=np.float32) + np.array([left, top]))
        return faces

    @staticmethod
    def _fill_polygon(label_map: np.ndarray, points: np.ndarray, value: int):
        """label_map[inside the polygon] = value, drawn only over the polygon's bounding box (shifted by whole
        pixels, so the same pixels as on a full-size canvas)."""
        height, width = label_map.shape
        x0, y0 = (int(v) for v in np.floor(points.min(0)).clip(0))
        x1, y1 = int(min(width, np.ceil(points[:, 0].max()) + 2)), int(min(height, np.ceil(points[:, 1].max()) + 2))
        if x1 <= x0 or y1 <= y0:
            return
        canvas = Image.new("L", (x1 - x0, y1 - y0), 0)
        ImageDraw.Draw(canvas).polygon([(x - x0, y - y0) for x, y in points.tolist()], fill=1)
        label_map[y0:y1, x0:x1][np.asarray(canvas, dtype=bool)] = value

    def _paint_person(self, label_map: np.ndarray, person: np.ndarray, faces: list[np.ndarray]):
        """Person pixels outside the face: hair above the mouth line, neck in a band under the chin inside the
        face's width, cloth elsewhere below the mouth line. With several faces, the horizontally nearest face wins."""
        height, width = label_map.shape
        rows, columns = np.arange(height)[:, None], np.arange(width)[None, :]
        centres = np.stack([points[self.contours["skin"]].mean(0) for points in faces])
        nearest = np.argmin(np.abs(columns[..., None] - centres[:, 0]), axis=-1) if len(faces) > 1 else 0
        nearest = np.broadcast_to(nearest, (height, width)) if len(faces) > 1 else 0
        for index, points in enumerate(faces):
            mine = person & (nearest == index)
            oval = points[self.contours["skin"]]
            left, right = oval[:, 0].min(), oval[:, 0].max()
            chin, top = oval[:, 1].max(), oval[:, 1].min()
            mouth_line = points[[LIPS_UPPER_OUTER[0], LIPS_UPPER_OUTER[-1]], 1].mean()
            face_width, face_height = right - left, chin - top
            label_map[mine & (rows < mouth_line)] = LABEL_INDEX["hair"]
            below = mine & (rows >= mouth_line)
            label_map[below] = LABEL_INDEX["cloth"]
            in_neck_band = (
                (rows < chin + 0.45 * face_height)
                & (columns > left + 0.15 * face_width)
                & (columns < right - 0.15 * face_width)
            )
            label_map[below & in_neck_band] = LABEL_INDEX["neck"]

    def _paint_face(self, label_map: np.ndarray, points: np.ndarray):
        self._fill_polygon(label_map, points[self.contours["skin"]], LABEL_INDEX["skin"])
        self._fill_polygon(label_map, self._convex_hull(points[self.nose_points]), LABEL_INDEX["nose"])
        for part in ("l_brow", "r_brow", "l_eye", "r_eye", "u_lip", "l_lip", "mouth"):
            self._fill_polygon(label_map, points[self.contours[part]], LABEL_INDEX[part])

    @staticmethod
    def _convex_hull(points: np.ndarray) -> np.ndarray:
        """Andrew's monotone chain."""
        ordered = sorted(map(tuple, points.tolist()))

        def cross(o, a, b):
            return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

        lower, upper = [], []
        for p in ordered:
            while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
                lower.pop()
            lower.append(p)
        for p in reversed(ordered):
            while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
                upper.pop()
            upper.append(p)
        return np.array(lower[:-1] + upper[:-1], dtype=np.float32)
