"""`faceinsight demo` end to end at reduced sizes (--quick runs the same code with tiny counts and steps), and the
dry-run publication check on the folder it writes."""

import json

import pytest
from huggingface_hub import ModelCard
from PIL import Image

from faceinsight.commands import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--output_dir", str(out), "--eval_faces", "30"]) == 0
    return out


# the trained FaceInsight variants, written out here (not read from the demo) so that a renamed or lost one fails
VARIANT_NAMES = {
    "full",
    "probability tokens",
    "no grounded words",
    "no knowledge tokens",
    "no parsing map",
    "no CCM",
    "no LCM",
    "rendered-map encoder",
}


@pytest.mark.slow
def test_demo_reports_every_variant_with_intervals(demo, capsys):
    report = json.loads((demo / "demo_report.json").read_text())
    assert set(report["scores"]) == VARIANT_NAMES | {"full, exact maps", "full, thresholds", "majority baseline"}
    assert report["settings"]["protocol"] == "synthetic:attributes,synthetic:age_gender_race,synthetic:expression"
    for name, score in report["scores"].items():
        assert score["faces"] == 30, name
        for task in ("attributes", "age", "gender", "race", "expression"):
            entry = score["tasks"][task]
            value = entry.get("mean_accuracy", entry.get("accuracy"))
            low, high = entry["ci95"]
            assert 0 <= low <= high <= 1 and 0 <= value <= 1, (name, task)
    assert report["settings"]["seed"] == 0 and report["rules_from_held_out_ground_truth"] >= 0
    # every model, the LLaVA baseline included, answers the same closed questions and describes the same faces
    models = VARIANT_NAMES | {"LLaVA baseline"}
    faces = report["settings"]["answer_faces"]
    assert set(report["generated_scores"]) == models
    assert set(report["description_scores"]) == models | {"full, free descriptions"}
    # the grounded descriptions state only what the full model decided; freely generated ones need not
    agreement = report["description_vs_structured"]
    assert set(agreement) == VARIANT_NAMES | {"full, free descriptions"}
    # the rendered-map variant was built with the earlier parsing encoder, and holds the same trained parser
    rendered = json.loads((demo / "work" / "ablations" / "rendered-map_encoder" / "config.json").read_text())
    full = json.loads((demo / "model" / "config.json").read_text())
    assert rendered["parsing_encoder_type"] == "vision_tower" and full["parsing_encoder_type"] == "label_patches"
    assert rendered["parser_image_size"] == full["parser_image_size"] == 128
    for task in ("age", "gender", "race", "expression"):
        assert agreement["full"][task]["precision"] == 1.0 and agreement["full"][task]["recall"] == 1.0, task
    for name in models:
        assert report["generated_answers"]["questions"][name] == faces * 26, name
        assert (
            report["scores"][name if name in report["scores"] else "full"][
                "logic_violation_rate_of_rules_seen_in_training"
            ]
            >= 0
        )
        assert report["generated_scores"][name]["faces"] == faces, name
        assert report["description_scores"][name]["gender"]["known"] == faces, name
    # each FaceInsight's answers against its own structured decisions on the same questions
    assert set(report["generated_vs_structured"]) == VARIANT_NAMES
    for name, tasks in report["generated_vs_structured"].items():
        assert tasks["gender"]["questions"] == faces, name
        low, high = tasks["attributes"]["difference_ci95"]
        assert low <= tasks["attributes"]["difference"] <= high and 0 <= tasks["attributes"]["agreement"] <= 1, name


@pytest.mark.slow
def test_demo_reloads_in_a_fresh_process_and_writes_pictures(demo):
    report = json.loads((demo / "demo_report.json").read_text())
    fresh = report["fresh_process"]
    assert fresh["AutoModel"] == "FaceInsightForConditionalGeneration" and fresh["faceinsight_imported"] == []
    assert len(fresh["answers"]) == 3
    for picture in report["pictures"]:
        assert Image.open(picture).size[0] >= 128
    sheet = Image.open(demo / "parsing_maps.png")
    assert sheet.size == (3 * 128 + 220, 18 + 6 * 128)  # three columns of faces and the colour legend


@pytest.mark.slow
def test_demo_folder_passes_the_dry_run_with_a_filled_card(demo, capsys):
    card = ModelCard.load(demo / "model" / "README.md")
    assert card.data.pipeline_tag == "image-text-to-text" and card.data.library_name == "transformers"
    names = {result.metric_name for result in card.data.eval_results}
    assert "expression accuracy (full)" in names and "mean attribute accuracy (full)" in names
    assert {result.task_name for result in card.data.eval_results} == {"face perception"}
    assert "no parsing map" in card.text and "research only" in card.text
    assert main(["push", str(demo / "model"), "--repo-id", "org/faceinsight-demo", "--dry-run"]) == 0
    assert "is ready for org/faceinsight-demo" in capsys.readouterr().out


def test_demo_never_deletes_a_folder_it_did_not_write(tmp_path, capsys):
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "thesis.tex").write_text("precious")
    assert main(["demo", "--quick", "--output_dir", str(keep)]) == 2
    assert "not by faceinsight; choose a new or empty output folder" in capsys.readouterr().err
    assert (keep / "thesis.tex").read_text() == "precious"
