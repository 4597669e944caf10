import json
import sys

from faceinsight.hub.export import REMOTE_CODE_FILES
from faceinsight.modeling.configuration_faceinsight import AUTO_MAP
from helpers import load_check_report


def test_folder_is_hub_ready(tiny_folder):
    files = {p.name for p in tiny_folder.iterdir()}
    expected = {
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "processor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "README.md",
        *REMOTE_CODE_FILES,
    }
    assert expected <= files
    config = json.loads((tiny_folder / "config.json").read_text())
    assert config["auto_map"] == AUTO_MAP
    assert config["auto_map"]["AutoModel"].endswith("FaceInsightForConditionalGeneration")
    for code in REMOTE_CODE_FILES:  # remote code imports only torch, transformers, the standard library, siblings
        for line in (tiny_folder / code).read_text().splitlines():  # (and PIL, guarded by a try, indented)
            if line.startswith(("import ", "from ")):
                module = line.split()[1]
                top = module.split(".")[0]
                assert top in {"torch", "transformers"} or top in sys.stdlib_module_names or module.startswith("."), (
                    code,
                    line,
                )


def test_fresh_process_without_faceinsight_loads_and_answers(tiny_folder, face_image, tmp_path):
    image_path = tmp_path / "face.png"
    face_image.save(image_path)
    report = load_check_report(tiny_folder, image_path, tmp_path)
    assert report["AutoModel"] == report["AutoModelForImageTextToText"] == "FaceInsightForConditionalGeneration"
    assert report["AutoProcessor"] == "FaceInsightProcessor"
    assert report["AutoImageProcessor"] == "FaceInsightImageProcessor"
    assert report["generate_new_tokens"] == 6
    assert report["facets"] == ["age", "expression", "gender", "race"]
    assert report["pipeline_roles"] == ["user", "assistant"] and report["pipeline_answer_type"] == "str"
    assert report["faceinsight_imported"] == []
