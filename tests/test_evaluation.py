"""`faceinsight eval`: the answer reader on real-looking answers, the scorer and its intervals, and the command on a
FaceInsight folder, a plain transformers LLaVA folder and a dataset in its original layout."""

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from faceinsight.commands import main
from faceinsight.evaluation.answers import parse_choice, parse_yes_no
from faceinsight.evaluation.stats import bootstrap_mean_accuracy, bootstrap_paired_difference, wilson_interval
from faceinsight.evaluation.structured import UNANSWERED, paired_comparison, score_predictions, violation_rate
from faceinsight.modeling.configuration_faceinsight import DEFAULT_CATEGORICAL_FACETS, FaceInsightConfig

YES_NO = [
    ("Yes.", 1),
    ("yes, she is wearing eyeglasses", 1),
    ("Yeah", 1),
    ("Correct, the person has bangs.", 1),
    ("No.", 0),
    ("No, the person does not wear a hat.", 0),
    ("The person is not smiling.", 0),
    ("Absolutely not", 0),
    ("He doesn't have a beard", 0),
    ("NO!", 0),
    ("I cannot tell from this image.", None),
    ("", None),
    ("Eyeglasses", None),
    ("Maybe, yes.", None),
    ("Perhaps not", None),
]
CHOICES = [
    ("expression", "Happiness.", "Happiness"),
    ("expression", "The person looks happy!", "Happiness"),
    ("expression", "She seems unhappy.", "Sadness"),
    ("expression", "not happy, rather angry", "Anger"),
    ("expression", "SURPRISED", "Surprise"),
    ("expression", "A neutral expression.", "Neutral"),
    ("expression", "fearful", "Fear"),
    ("expression", "Disgust", "Disgust"),
    ("expression", "happy or sad", None),
    ("expression", "I don't know", None),
    ("gender", "Male.", "Male"),
    ("gender", "This is a woman.", "Female"),
    ("gender", "female", "Female"),
    ("gender", "A man with short hair", "Male"),
    ("gender", "Fale.", None),
    ("race", "Southeast Asian", "Southeast Asian"),
    ("race", "east asian", "East Asian"),
    ("race", "Latino/Hispanic", "Latino_Hispanic"),
    ("race", "The person appears to be Caucasian.", "White"),
    ("race", "Middle Eastern.", "Middle Eastern"),
    ("race", "Asian", None),
    ("age", "20-29", "20-29"),
    ("age", "20 to 29 years", "20-29"),
    ("age", "About 25 years old.", "20-29"),
    ("age", "70+", "70+"),
    ("age", "over 70", "70+"),
    ("age", "Probably in their twenties.", "20-29"),
    ("age", "3-9.", "3-9"),
    ("age", "The person is 45.", "40-49"),
    ("age", "a baby", "0-2"),
    ("age", "20-M9.", None),
    ("age", "between 20 and 40", None),
    # strict: a range spanning bins, a hedge or a list is unreadable, never guessed
    ("age", "20-49.", None),
    ("age", "25-28", "20-29"),
    ("age", "Maybe 30-39", None),
    ("age", "20-29 or 30-39", None),
    ("age", "between 20 and 29", "20-29"),
    ("expression", "Possibly happy.", None),
    ("expression", "Not sure, perhaps neutral", None),
    ("gender", "male, female", None),
    ("race", "White or Black", None),
]


@pytest.mark.parametrize("answer, expected", YES_NO)
def test_yes_no_answers(answer, expected):
    assert parse_yes_no(answer) == expected


@pytest.mark.parametrize("facet, answer, expected", CHOICES)
def test_choice_answers(facet, answer, expected):
    assert parse_choice(answer, DEFAULT_CATEGORICAL_FACETS[facet], facet=facet) == expected


def test_intervals():
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)  # published values
    assert wilson_interval(0, 50)[0] == pytest.approx(0.0, abs=1e-12) and wilson_interval(50, 50)[1] == pytest.approx(
        1.0
    )
    rng = np.random.default_rng(0)
    correct = rng.random((400, 5)) < np.array([0.5, 0.6, 0.7, 0.8, 0.9])
    mean, (low, high) = bootstrap_mean_accuracy(correct, np.ones_like(correct))
    assert mean == pytest.approx(correct.mean(0).mean())
    assert low < mean < high and 0.02 < high - low < 0.08  # sd of a mean of 5 rates over 400 faces is ~0.01


def test_scorer_counts_as_the_paper_does():
    config = FaceInsightConfig()
    names = config.label_names
    targets = np.full((4, len(names)), -100)
    predictions = np.full((4, len(names)), UNANSWERED)
    bald, bangs = names.index("Bald"), names.index("Bangs")
    targets[:, bald], targets[:, bangs] = [1, 0, 0, 0], [0, 1, 1, 0]
    predictions[:, bald], predictions[:, bangs] = [1, 0, 1, 0], [1, 1, UNANSWERED, 0]
    happiness, neutral = names.index("expression:Happiness"), names.index("expression:Neutral")
    expression = config.facet_label_indices["expression"]
    targets[:, expression] = 0
    targets[[0, 1], happiness] = 1
    targets[[2, 3], neutral] = 1
    predictions[:, expression] = 0
    predictions[[0, 2], happiness] = 1
    predictions[1, neutral] = 1
    predictions[3, expression] = UNANSWERED  # no readable answer: wrong, and "none" in the confusion matrix
    rules = [{"type": "exclusion", "a": "Bald", "b": "Bangs"}]
    report = score_predictions(predictions, targets, config, rules)
    attributes = report["tasks"]["attributes"]
    assert attributes["per_attribute"] == {"Bald": 0.75, "Bangs": 0.5}
    assert attributes["mean_accuracy"] == pytest.approx(0.625) and attributes["unanswered"] == pytest.approx(0.125)
    task = report["tasks"]["expression"]
    assert task["accuracy"] == 0.25 and task["n"] == 4 and task["unanswered"] == 0.25
    values = task["labels"]
    matrix = np.asarray(task["confusion_matrix"])
    assert matrix[values.index("Happiness"), values.index("Happiness")] == 1
    assert matrix[values.index("Happiness"), values.index("Neutral")] == 1
    assert matrix[values.index("Neutral"), len(values)] == 1  # the unanswered column
    assert report["logic_violation_rate"] == 0.25  # face 0 predicts Bald and Bangs together
    assert violation_rate(predictions[1:], rules, config) == 0.0
    assert "age" not in report["tasks"]  # a facet with no labels is not scored


def test_paired_difference_is_narrower_than_two_separate_intervals():
    rng = np.random.default_rng(1)
    a = rng.random((300, 4)) < 0.8
    b = a.copy()
    flip = rng.random(a.shape) < 0.05  # the two readings disagree on 5% of the questions
    b[flip] = ~b[flip]
    known = np.ones_like(a)
    difference, (low, high) = bootstrap_paired_difference(a, b, known)
    assert difference == pytest.approx(a.mean(0).mean() - b.mean(0).mean())
    assert low <= difference <= high
    _, (a_low, a_high) = bootstrap_mean_accuracy(a, known)
    unpaired = np.sqrt(2) * (a_high - a_low)  # the width of a difference of two independent estimates like `a`
    assert high - low < unpaired / 2  # pairing removes the variation the two readings share
    assert bootstrap_paired_difference(a, a, known)[1] == (0.0, 0.0)


def test_paired_comparison_scores_both_readings_on_the_questions_asked():
    config = FaceInsightConfig()
    names = config.label_names
    rng = np.random.default_rng(0)
    faces = 50
    targets = np.full((faces, len(names)), -100)
    binary = [names.index(name) for name in ("Bald", "Bangs", "Smiling")]
    targets[:, binary] = rng.integers(0, 2, (faces, 3))
    race = config.facet_label_indices["race"]
    targets[:, race] = 0
    targets[np.arange(faces), np.asarray(race)[rng.integers(0, len(race), faces)]] = 1
    structured = np.zeros_like(targets)
    structured[:, binary] = rng.integers(0, 2, (faces, 3))
    structured[np.arange(faces), np.asarray(race)[rng.integers(0, len(race), faces)]] = 1
    generated = np.where(rng.random(targets.shape) < 0.8, structured, 1 - structured)  # mostly the same answers
    generated[:5, race] = UNANSWERED  # unreadable answers: wrong, and unlike any decision
    asked = np.zeros(targets.shape, dtype=bool)
    asked[:, binary[:2]] = True  # Smiling was never asked: not scored, though its target is known
    asked[:40, race] = True

    tasks = paired_comparison(generated, structured, targets, asked, config)
    assert set(tasks) == {"attributes", "race"}
    masked = np.where(asked, targets, -100)
    for task in tasks:  # each reading scored as the scorer scores it alone, on the same questions
        for reading, predictions in (("generated", generated), ("structured", structured)):
            alone = score_predictions(predictions, masked, config, [])["tasks"][task]
            assert tasks[task][reading] == pytest.approx(alone.get("mean_accuracy", alone.get("accuracy")))
        c = tasks[task]
        assert c["difference"] == pytest.approx(c["generated"] - c["structured"])
        assert c["difference_ci95"][0] <= c["difference"] <= c["difference_ci95"][1]
    assert tasks["attributes"]["questions"] == 2 * faces and tasks["race"]["questions"] == 40
    alike = (generated[:, binary[:2]] == structured[:, binary[:2]]).mean()
    assert tasks["attributes"]["agreement"] == pytest.approx(alike)
    chosen = [(generated[face, race] == structured[face, race]).all() for face in range(40)]
    assert tasks["race"]["agreement"] == pytest.approx(np.mean(chosen)) and tasks["race"]["agreement"] <= 35 / 40


def _check_report(folder, faces, sources):
    report = json.loads((folder / "eval_report.json").read_text())
    assert report["faces"] == faces and set(report["scores"]) == sources
    generated = report["scores"]["generated"]
    assert set(generated["tasks"]) == {"attributes", "age", "gender", "race", "expression"}
    assert len(generated["tasks"]["attributes"]["per_attribute"]) == 22  # the drawn attributes
    assert report["questions"] == faces * (4 + 22)
    lines = (folder / "answers.jsonl").read_text().splitlines()
    assert len(lines) == report["questions"] and {"question", "answer", "read_as"} <= set(json.loads(lines[0]))
    for picture in report["pictures"]:
        assert Image.open(folder / picture).size[0] > 100
    return report


@pytest.mark.slow
def test_eval_runs_the_same_command_on_faceinsight_and_plain_llava(tiny_folder, tmp_path, capsys):
    out = tmp_path / "fi"
    assert (
        main(
            [
                "eval",
                "--model",
                str(tiny_folder),
                "--num_faces",
                "6",
                "--output_dir",
                str(out),
                "--batch_size",
                "4",
                "--max_new_tokens",
                "4",
            ]
        )
        == 0
    )
    report = _check_report(out, 6, {"generated", "structured", "structured_without_logic", "majority_baseline"})
    assert report["model_class"] == "FaceInsightForConditionalGeneration"
    assert "confusion_expression_structured.png" in report["pictures"]
    paired = report["generated_vs_structured"]  # the model's answers against its own decisions, question by question
    assert set(paired) == {"attributes", "age", "gender", "race", "expression"}
    structured = report["scores"]["structured"]["tasks"]
    assert paired["gender"]["structured"] == pytest.approx(structured["gender"]["accuracy"])  # every face asked
    assert paired["gender"]["generated"] == pytest.approx(report["scores"]["generated"]["tasks"]["gender"]["accuracy"])
    assert paired["attributes"]["questions"] == 6 * 22
    printed = capsys.readouterr().out
    assert "structured" in printed and "less structured decisions" in printed

    llava = tmp_path / "llava_model"
    assert main(["build", "--preset", "tiny-llava", str(llava)]) == 0
    out = tmp_path / "llava"
    assert (
        main(
            [
                "eval",
                "--model",
                str(llava),
                "--num_faces",
                "6",
                "--output_dir",
                str(out),
                "--batch_size",
                "4",
                "--max_new_tokens",
                "4",
            ]
        )
        == 0
    )
    report = _check_report(out, 6, {"generated", "majority_baseline"})
    assert report["model_class"] == "LlavaForConditionalGeneration" and "generated_vs_structured" not in report
    assert main(["eval", "--model", str(llava), "--num_faces", "2", "--structured", "yes"]) == 2
    assert "structured predictions need a FaceInsight model" in capsys.readouterr().err


def test_eval_reads_a_dataset_in_its_original_layout(tiny_folder, tmp_path, capsys):
    root = tmp_path / "rafdb"
    (root / "EmoLabel").mkdir(parents=True)
    lines = [f"train_{i:05d}.jpg {1 + i % 7}" for i in range(6)] + [f"test_{i:04d}.jpg {1 + i % 7}" for i in range(5)]
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    (root / "Image" / "aligned").mkdir(parents=True)
    for line in lines:
        stem = line.split()[0][: -len(".jpg")]
        colour = tuple(hashlib.md5(stem.encode()).digest()[:3])  # distinct pictures: the reader refuses duplicates
        Image.new("RGB", (40, 40), colour).save(root / "Image" / "aligned" / f"{stem}_aligned.jpg")
    out = tmp_path / "eval"
    assert (
        main(
            [
                "eval",
                "--model",
                str(tiny_folder),
                "--dataset",
                "rafdb",
                "--dataset_dir",
                str(root),
                "--output_dir",
                str(out),
                "--max_new_tokens",
                "4",
            ]
        )
        == 0
    )
    report = json.loads((out / "eval_report.json").read_text())
    assert report["faces"] == 5 and report["questions"] == 5  # RAF-DB labels only the expression
    assert set(report["scores"]["generated"]["tasks"]) == {"expression"}
    assert report["scores"]["majority_baseline"]["tasks"]["expression"]["n"] == 5
    assert (
        main(
            [
                "eval",
                "--model",
                str(tiny_folder),
                "--dataset",
                "rafdb",
                "--dataset_dir",
                str(root),
                "--split",
                "validation",
            ]
        )
        == 2
    )
    assert "--split validation: rafdb has no such rows (its splits: test, train)" in capsys.readouterr().err


def test_the_violation_rate_counts_definitional_rules(tiny):
    """Predictions whose gender facet and Male attribute disagree break a rule, even if no data mined it."""
    from faceinsight.evaluation.structured import score_predictions
    from faceinsight.modeling.knowledge_faceinsight import held_out_rules

    model, _ = tiny
    config, names = model.config, model.config.label_names
    probabilities = torch.rand(4, len(names), generator=torch.Generator().manual_seed(1))
    targets = model.model.logic_module.decide(probabilities).long().numpy()  # a consistent ground truth
    rules = held_out_rules(targets.tolist(), config)
    assert {"type": "implication", "a": "gender:Male", "b": "Male"} in rules
    predictions = targets.copy()
    predictions[0, names.index("Male")] = 1 - predictions[0, names.index("Male")]  # gender and Male now disagree
    assert score_predictions(predictions, targets, config, rules)["logic_violation_rate"] == 0.25


def test_eval_reads_a_maadface_layout(tiny_folder, tmp_path, capsys):
    """`faceinsight eval --dataset maadface` on MAAD-Face's layout, for a FaceInsight folder and a plain LLaVA one."""
    import json as json_module

    from PIL import Image

    from faceinsight.commands import main
    from faceinsight.modeling.schema_faceinsight import MAAD_FACE_ATTRIBUTES

    lines = [",".join(["Filename", "Identity", *MAAD_FACE_ATTRIBUTES])]
    for i, split in enumerate(["train", "train", "test", "test"]):
        name = f"n00000{i}/0001_01.jpg"
        (tmp_path / "maad" / split / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 40), (40 * i, 120, 90)).save(tmp_path / "maad" / split / name)
        values = ["1" if (a == "Square_Face") == (i % 2 == 0) else "-1" for a in MAAD_FACE_ATTRIBUTES]
        lines.append(",".join([name, f"n00000{i}", *values]))
    (tmp_path / "maad" / "MAAD_Face.csv").write_text("\n".join(lines) + "\n")
    llava = tmp_path / "llava"
    assert main(["build", str(llava), "--preset", "tiny-llava"]) == 0
    for model in (tiny_folder, llava):
        out = tmp_path / f"eval_{model.name}"
        argv = ["eval", "--model", str(model), "--dataset", "maadface", "--dataset_dir", str(tmp_path / "maad")]
        assert main([*argv, "--output_dir", str(out), "--max_new_tokens", "3"]) == 0
        report = json_module.loads((out / "eval_report.json").read_text())
        assert report["faces"] == 2 and "gender" in report["scores"]["generated"]["tasks"]
    # a general MLLM is asked about MAAD-Face's own attributes too (FaceInsight about the label nodes it has)
    asked = [json_module.loads(line)["question"] for line in (out / "answers.jsonl").read_text().splitlines()]
    assert any("square face" in question.lower() for question in asked)


def test_description_facts_are_read_sentence_by_sentence():
    from faceinsight.evaluation.descriptions import CONFLICTING, score_descriptions, stated_facts
    from faceinsight.evaluation.run import default_schema

    schema = default_schema()
    text = (
        "The person in the image is a White man, aged 50-59. He has a square face with a receding hairline and "
        "black hair. He appears happy. He is not wearing eyeglasses, and he has bags under his eyes; no hat."
    )
    facts = stated_facts(text, schema)
    assert facts["race"] == "White" and facts["gender"] == "Male" and facts["age"] == "50-59"
    assert facts["expression"] == "Happiness"
    assert facts["Square_Face"] == 1 and facts["Receding_Hairline"] == 1 and facts["Black_Hair"] == 1
    assert facts["Eyeglasses"] == 0 and facts["Wearing_Hat"] == 0 and facts["Bags_Under_Eyes"] == 1
    assert "Wearing_Lipstick" not in facts  # never mentioned: not a statement
    assert stated_facts("A young woman. Actually a man.", schema)["gender"] == CONFLICTING
    # "black hair" is hair colour, not race
    assert "race" not in stated_facts("She has long black hair.", schema)

    truth = {"race": "White", "gender": "Male", "age": "40-49", "Eyeglasses": 0, "Black_Hair": 1, "Smiling": 1}
    scores = score_descriptions([text], [truth], schema)
    assert scores["gender"]["precision"] == 1.0 and scores["age"]["precision"] == 0.0  # 50-59 for a 40-49 face
    # attributes: Eyeglasses absent (right), Black_Hair (right), the rest stated have no ground truth here
    assert scores["attributes"]["statements"] == 2 and scores["attributes"]["right"] == 2
    assert scores["attributes"]["known"] == 2 and scores["attributes"]["recall"] == 0.5  # Smiling not stated
    low, high = scores["attributes"]["precision_interval"]
    assert 0 < low < 1.0 <= high + 1e-12


def test_eval_scores_descriptions(tiny_folder, tmp_path):
    import json as json_module

    from faceinsight.commands import main

    out = tmp_path / "eval"
    argv = ["eval", "--model", str(tiny_folder), "--dataset", "synthetic", "--num_faces", "3", "--no_generated"]
    assert main([*argv, "--descriptions", "2", "--output_dir", str(out), "--structured", "no"]) == 0
    report = json_module.loads((out / "eval_report.json").read_text())
    assert report["described_faces"] == 2
    lines = [json_module.loads(line) for line in (out / "descriptions.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(isinstance(line["description"], str) for line in lines)
    for task, score in report["description_scores"].items():
        assert score["known"] >= 0 and (score["precision"] is None or 0 <= score["precision"] <= 1), task
    assert report["description_scores"]["gender"]["known"] == 2


def test_training_descriptions_state_every_known_fact_the_reader_reads_back():
    """The description answers of the instruction data, read by eval's description reader: every fact stated is
    right (precision 1) and every facet and present attribute is stated (recall 1), on 300 synthetic faces."""
    import random

    from faceinsight.evaluation.descriptions import score_descriptions
    from faceinsight.evaluation.run import default_schema
    from faceinsight.training.instructions import NOT_STATED, describe
    from faceinsight.training.synthetic import sample_labels

    rng = random.Random(0)
    labels = [sample_labels(rng) for _ in range(300)]
    descriptions = [describe(truth, random.Random(i)) for i, truth in enumerate(labels)]
    assert len(set(descriptions)) == 300 and len({d.split(" ")[0] for d in descriptions}) >= 2  # varied openings
    truths = [{k: v for k, v in truth.items() if k not in NOT_STATED} for truth in labels]
    scores = score_descriptions(descriptions, truths, default_schema())
    for task in ("attributes", "age", "gender", "race", "expression"):
        assert scores[task]["precision"] == 1.0 and scores[task]["recall"] == 1.0, (task, scores[task])
    assert scores["attributes"]["statements"] > scores["attributes"]["known"]  # absences are stated too


def test_rules_seen_together_are_those_some_training_face_labels_both_ends_of():
    from faceinsight.evaluation.structured import rules_seen_together
    from faceinsight.modeling.schema_faceinsight import LabelSchema

    schema = LabelSchema(
        binary_attributes=["Smiling", "Bald"], categorical_facets={"expression": ["Happiness", "Neutral"]}
    )
    rules = [
        {"type": "implication", "a": "expression:Happiness", "b": "Smiling"},
        {"type": "exclusion", "a": "Bald", "b": "Smiling"},
    ]
    attributes_only = [[1, 0, -100, -100], [0, 1, -100, -100]]
    expression_only = [[-100, -100, 1, 0]]
    assert rules_seen_together(rules, attributes_only + expression_only, schema) == rules[1:]
    assert rules_seen_together(rules, [[1, 0, 1, 0]], schema) == rules
