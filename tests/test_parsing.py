import io
import json
import sys

import numpy as np
import pytest
from PIL import Image

from faceinsight.commands import main
from faceinsight.modeling.schema_faceinsight import LABEL_INDEX
from faceinsight.parsing.labels import class_pixel_counts, overlay, to_palette_image
from faceinsight.parsing.mediapipe_backend import INSTALL_HINT, MediaPipeFaceParser
from faceinsight.parsing.run import load_image


@pytest.fixture(scope="module")
def parser():
    with MediaPipeFaceParser() as face_parser:
        yield face_parser


@pytest.fixture(scope="module")
def portraits():
    from matplotlib import cbook
    from skimage.data import astronaut

    return {
        "astronaut": Image.fromarray(astronaut()),
        "grace_hopper": Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"),
    }


def centroid(label_map, name):
    ys, xs = np.nonzero(label_map == LABEL_INDEX[name])
    assert len(xs) > 0, f"no {name} pixels"
    return xs.mean(), ys.mean()


def assert_anatomy(label_map, box):
    parts = {
        name: centroid(label_map, name)
        for name in ("l_eye", "r_eye", "l_brow", "r_brow", "nose", "u_lip", "l_lip", "mouth", "skin")
    }
    y = {name: c[1] for name, c in parts.items()}
    x = {name: c[0] for name, c in parts.items()}
    assert y["l_brow"] < y["l_eye"] and y["r_brow"] < y["r_eye"]  # brows above eyes
    assert max(y["l_eye"], y["r_eye"]) < y["nose"]  # both eyes above the nose
    assert y["nose"] < y["u_lip"] < y["mouth"] < y["l_lip"]  # nose above the lips, upper lip above lower
    assert x["r_eye"] < x["nose"] < x["l_eye"]  # person's left eye on the image's right
    assert x["r_brow"] < x["l_brow"]
    assert y["hair"] < y["l_eye"] if "hair" in y else True
    x0, y0, x1, y1 = box
    for name in parts:  # the face box holds every facial part
        assert x0 <= x[name] <= x1 and y0 <= y[name] <= y1, name
    skin = label_map == LABEL_INDEX["skin"]
    ys, xs = np.nonzero(skin)
    for name in ("l_eye", "r_eye", "nose", "mouth"):  # skin surrounds the inner parts
        assert xs.min() < x[name] < xs.max() and ys.min() < y[name] < ys.max(), name


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_portraits_are_parsed_anatomically(parser, portraits, name):
    result = parser.parse(portraits[name])
    assert result.face_found and len(result.face_boxes) == 1
    assert result.label_map.shape == (portraits[name].height, portraits[name].width)
    assert_anatomy(result.label_map, result.face_boxes[0])
    counts = class_pixel_counts(result.label_map)
    assert counts["skin"] > 10 * counts["l_eye"] > 0 and counts["hair"] > 0 and counts["cloth"] > 0
    assert counts["eye_g"] == counts["hat"] == counts["l_ear"] == 0  # classes this backend cannot produce


def test_lfw_faces_are_detected(parser):
    from skimage.data import lfw_subset

    faces = lfw_subset()[:100]  # the first 100 are faces, the rest are not
    found = 0
    for face in faces:
        result = parser.parse(Image.fromarray((face * 255).astype(np.uint8)))
        found += result.face_found
        if result.face_found:
            assert result.label_map.shape == (25, 25)
    assert found / len(faces) >= 0.9  # measured: 0.97 (benchmarks/bench_parsing.py reports it)


def test_no_face_gives_an_empty_map_and_a_flag(parser):
    result = parser.parse(Image.new("RGB", (300, 200), (90, 140, 200)))
    assert not result.face_found and result.face_boxes == []
    assert result.label_map.shape == (200, 300) and not result.label_map.any()


def test_two_faces_share_one_map_with_a_box_each(parser, portraits):
    left = portraits["astronaut"].resize((400, 400))
    right = portraits["grace_hopper"].resize((340, 400))
    canvas = Image.new("RGB", (740, 400))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (400, 0))
    result = parser.parse(canvas)
    assert len(result.face_boxes) == 2
    boxes = sorted(result.face_boxes)
    assert boxes[0][2] < 400 <= boxes[1][0]  # one box in each half
    for box in boxes:
        x0, y0, x1, y1 = box
        crop = result.label_map[y0 : y1 + 1, x0 : x1 + 1]
        assert (crop == LABEL_INDEX["l_eye"]).any() and (crop == LABEL_INDEX["mouth"]).any()


def test_exif_orientation_is_honoured(parser, portraits, tmp_path):
    stored = portraits["astronaut"].transpose(Image.Transpose.ROTATE_90)  # sideways on disk
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "sideways.jpg"
    stored.save(path, exif=exif, quality=95)
    image = load_image(path)
    assert image.size == portraits["astronaut"].size
    result = parser.parse(image)
    assert_anatomy(result.label_map, result.face_boxes[0])


def test_missing_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(ImportError, match=r'pip install "faceinsight\[mediapipe\]"'):
        MediaPipeFaceParser()
    assert "faceinsight[mediapipe]" in INSTALL_HINT


def test_palette_png_round_trips_labels(tmp_path):
    labels = np.tile(np.arange(19, dtype=np.uint8), (4, 1))  # column k holds label k
    path = tmp_path / "labels.png"
    to_palette_image(labels).save(path)
    reloaded = Image.open(path)
    assert reloaded.mode == "P" and np.array_equal(np.asarray(reloaded), labels)
    assert reloaded.getpalette()[3:6] == [204, 0, 0]  # skin's colour
    with pytest.raises(ValueError, match="valid are 0..18"):
        to_palette_image(np.full((2, 2), 30))
    blended = np.asarray(overlay(Image.new("RGB", (19, 4), (0, 0, 0)), labels))
    assert (blended[:, 0] == 0).all() and blended[0, 1].tolist() == [102, 0, 0]  # background untouched, skin half


def test_parse_command_writes_maps_overlays_and_statistics(portraits, tmp_path, capsys):
    inputs = tmp_path / "in"
    (inputs / "nested").mkdir(parents=True)
    portraits["astronaut"].save(inputs / "astronaut.png")
    portraits["grace_hopper"].save(inputs / "nested" / "grace_hopper.jpg")
    (inputs / "broken.jpg").write_bytes(b"definitely not a jpeg")
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 200, 200)).save(buffer, format="PNG")
    (inputs / "empty_wall.png").write_bytes(buffer.getvalue())
    out = tmp_path / "out"
    assert main(["parse", str(inputs), "--output", str(out)]) == 1  # one file failed
    captured = capsys.readouterr()
    assert "broken.jpg" in captured.err and "parsed 3 image(s)" in captured.out and "1 failed" in captured.out
    stats = json.loads((out / "grace_hopper.json").read_text())
    assert stats["face_found"] and len(stats["face_boxes"]) == 1 and stats["class_pixel_counts"]["nose"] > 0
    assert not json.loads((out / "empty_wall.json").read_text())["face_found"]
    labels = np.asarray(Image.open(out / "astronaut_labels.png"))
    assert labels.shape == (512, 512) and (labels == LABEL_INDEX["nose"]).any()
    assert Image.open(out / "astronaut_overlay.png").size == (512, 512)
    assert main(["parse", str(inputs / "astronaut.png"), "--output", str(out)]) == 2  # its own earlier output
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["parse", str(inputs / "astronaut.png"), "--output", str(out), "--overwrite"]) == 0


def test_model_backend_parses_with_the_in_model_parser(tiny_folder, portraits, tmp_path):
    out = tmp_path / "out"
    image = tmp_path / "astronaut.png"
    portraits["astronaut"].save(image)
    assert main(["parse", str(image), "--output", str(out), "--backend", "model", "--model", str(tiny_folder)]) == 0
    labels = np.asarray(Image.open(out / "astronaut_labels.png"))
    assert labels.shape == (512, 512) and labels.max() < 19
    assert main(["parse", str(image), "--output", str(out), "--backend", "model"]) == 2  # needs --model
