import json

import pytest
import torch

from faceinsight import FaceInsightConfig
from faceinsight.commands import main
from faceinsight.training.face_datasets import synthetic_faces
from faceinsight.training.instructions import TURNS, encode_labels, to_conversations


@pytest.fixture(scope="module")
def trained(tiny_folder, tmp_path_factory):
    """`faceinsight train` on synthetic faces, CPU, the stage-2 recipe (LoRA on the LM + projectors + knowledge)."""
    out = tmp_path_factory.mktemp("trained")
    code = main(
        [
            "train",
            "--model_name_or_path",
            str(tiny_folder),
            "--dataset_name",
            "synthetic",
            "--output_dir",
            str(out),
            "--max_steps",
            "500",
            "--num_train_faces",
            "2000",
            "--num_eval_faces",
            "400",
            "--per_device_train_batch_size",
            "16",
            "--learning_rate",
            "3e-3",
            "--lr_scheduler_type",
            "constant",
            "--logging_steps",
            "50",
            "--save_steps",
            "250",
            "--seed",
            "0",
        ]
    )
    assert code == 0
    return out


@pytest.mark.slow
def test_all_three_loss_parts_fall(trained):
    history = json.loads((trained / "training_report.json").read_text())["loss_history"]
    first, last = history[0], history[-1]
    for part in ("lm_loss", "bce_loss", "logic_loss"):
        assert last[part] < first[part], (part, first, last)


@pytest.mark.slow
def test_attribute_accuracy_beats_the_majority_baseline(trained):
    held_out = json.loads((trained / "training_report.json").read_text())["held_out"]
    model, majority = held_out["structured"], held_out["majority_baseline"]
    assert model["faces"] == 400
    for facet in ("gender", "race"):
        ours, baseline = model["tasks"][facet]["accuracy"], majority["tasks"][facet]["accuracy"]
        assert ours >= baseline + 0.05, (facet, ours, baseline)
    ours, baseline = model["tasks"]["attributes"], majority["tasks"]["attributes"]
    # well above: the mean over the 22 drawn attributes gains >= 6 points, its interval clear of the baseline's
    assert ours["mean_accuracy"] >= baseline["mean_accuracy"] + 0.06, (ours["mean_accuracy"], baseline["mean_accuracy"])
    assert ours["ci95"][0] > baseline["ci95"][1]
    learned = [
        name for name in ours["per_attribute"] if ours["per_attribute"][name] >= baseline["per_attribute"][name] + 0.05
    ]
    assert len(learned) >= 8, learned
    # logic-consistent decisions break the model's rules no more often than thresholded ones
    assert model["logic_violation_rate"] <= held_out["structured_without_logic"]["logic_violation_rate"]


@pytest.mark.slow
def test_trained_folder_is_hub_ready_and_carries_the_knowledge(trained):
    from faceinsight.hub.export import REMOTE_CODE_FILES

    names = {p.name for p in trained.iterdir()}
    assert {"model.safetensors", "config.json", "knowledge_summary.json", *REMOTE_CODE_FILES} <= names
    assert not any(n.endswith(".bin") for n in names)
    config = json.loads((trained / "config.json").read_text())
    assert config["correlation_matrix"] is not None and len(config["logic_rules"]) > 0
    rules = {(r["type"], r["a"], r["b"]) for r in config["logic_rules"]}
    assert ("exclusion", "Bald", "Bangs") in rules  # a hard rule of the synthetic data, mined from its labels
    from faceinsight import FaceInsightForConditionalGeneration

    model = FaceInsightForConditionalGeneration.from_pretrained(trained)
    assert not any("lora" in name for name, _ in model.named_parameters())  # LoRA merged into the LM


@pytest.mark.slow
def test_trained_folder_with_its_checkpoints_passes_the_dry_run(trained, capsys):
    assert (trained / "checkpoint-250").is_dir()
    assert main(["push", str(trained), "--repo-id", "org/fi", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "leaves out checkpoint-250/: training checkpoint" in printed and "is ready for org/fi" in printed
    assert "leaves out .faceinsight-output.json: hidden file" in printed


def test_conversations_and_label_encoding(tiny):
    model, _ = tiny
    records, _ = synthetic_faces(6, seed=3)
    conversations = to_conversations(records, model.config, seed=0)
    assert set(conversations.column_names) >= {"messages", "images", "face_labels", "parsing_map"}
    row = conversations[0]
    roles = [message["role"] for message in row["messages"]]
    assert roles == ["user", "assistant"] * TURNS  # the image comes with the first question only
    images_in = [[item["type"] for item in m["content"]].count("image") for m in row["messages"] if m["role"] == "user"]
    assert images_in == [1] + [0] * (TURNS - 1)
    asked = [m["content"][-1]["text"] for m in row["messages"] if m["role"] == "user"]
    assert len(set(asked)) == TURNS
    assert len(row["images"]) == 1 and len(row["face_labels"]) == model.config.num_label_nodes
    targets = encode_labels({"gender": "Female", "Smiling": 1}, model.config)
    names = model.config.label_names
    assert targets[names.index("gender:Female")] == 1 and targets[names.index("gender:Male")] == 0
    assert targets[names.index("Smiling")] == 1 and targets[names.index("Bald")] == -100
    assert all(targets[i] == -100 for i in model.config.facet_label_indices["age"])
    with pytest.raises(ValueError, match="gender='Robot'"):
        encode_labels({"gender": "Robot"}, model.config)


def test_collator_masks_prompt_placeholders_and_padding(tiny):
    from faceinsight.training.trainer import FaceInsightCollator

    model, processor = tiny
    records, _ = synthetic_faces(3, seed=4)
    rows = [to_conversations(records, model.config, seed=0)[i] for i in range(3)]
    batch = FaceInsightCollator(processor)(rows)
    labels, ids = batch["labels"], batch["input_ids"]
    assert batch["face_labels"].shape == (3, model.config.num_label_nodes)
    assert batch["parsing_maps"].shape == (3, 64, 64) and int(batch["parsing_maps"].max()) <= 18
    assert not ((labels == processor.image_token_id) | (labels == processor.parsing_token_id)).any()
    assert (labels[batch["attention_mask"] == 0] == -100).all()
    for row in range(3):  # what is trained on is exactly every answer (and its end-of-turn token), no question
        answers = [m["content"][0]["text"] for m in rows[row]["messages"] if m["role"] == "assistant"]
        assert len(answers) == TURNS
        trained = processor.decode(ids[row][labels[row] != -100], skip_special_tokens=True)
        assert trained.split() == " ".join(answers).split()
    with torch.no_grad():
        out = model(**batch)
    assert out.lm_loss is not None and out.bce_loss is not None and out.logic_loss is not None


def test_trl_trains_transformers_llava_on_the_same_answers(tiny):
    """The demo's LLaVA baseline goes through TRL's own collator (assistant_only_loss, which the chat template's
    generation marks make possible): it trains on exactly the tokens FaceInsight's collator trains on."""
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from faceinsight.hub.build import plain_llava_like
    from faceinsight.training.trainer import FaceInsightCollator

    model, processor = tiny
    _, llava_processor = plain_llava_like(model.config, processor)
    records, _ = synthetic_faces(3, seed=4)
    conversations = to_conversations(records, model.config, seed=0)
    ours = FaceInsightCollator(processor)([conversations[i] for i in range(3)])
    plain = conversations.remove_columns(["parsing_map", "face_labels"])
    trl = DataCollatorForVisionLanguageModeling(processor=llava_processor, assistant_only_loss=True)(
        [dict(plain[i]) for i in range(3)]
    )
    for row in range(3):
        trained = [batch["input_ids"][row][batch["labels"][row] != -100] for batch in (ours, trl)]
        assert torch.equal(*trained) and len(trained[0]) > 0


def test_example_configs_parse_and_flags_win():
    """The YAML training configs in examples/ fill FaceInsight's, TRL's SFTConfig and ModelConfig options alike."""
    from pathlib import Path

    from faceinsight.commands.train import parse_arguments
    from faceinsight.training.train import lora_target_regex

    examples = Path(__file__).resolve().parent.parent / "examples"
    script, training, model = parse_arguments(
        [
            "--config",
            str(examples / "stage2.yaml"),
            "--model_name_or_path",
            "m",
            "--output_dir",
            "o",
            "--max_steps",
            "7",
        ]
    )
    assert script.stage == "stage2" and script.dataset_name == "synthetic" and model.use_peft
    assert model.lora_r == 8 and model.lora_modules_to_save == [
        "multi_modal_projector",
        "parsing_projector",
        "correlation_module",
    ]
    assert lora_target_regex(model.lora_target_modules) == r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)"
    assert training.max_steps == 7 and training.learning_rate == 1e-3 and training.lr_scheduler_type == "cosine"
    script, _, model = parse_arguments(
        ["--config", str(examples / "stage1.yaml"), "--model_name_or_path", "m", "--output_dir", "o"]
    )
    assert script.stage == "stage1" and not model.use_peft


def test_bad_training_input_is_named(tiny_folder, tmp_path, capsys):
    base = ["train", "--model_name_or_path", str(tiny_folder), "--output_dir", str(tmp_path)]
    assert main([*base, "--stage", "x"]) == 2
    assert "argument --stage: invalid choice: 'x'" in capsys.readouterr().err
    assert main([*base, "--parsing_map_source", "exact"]) == 2
    assert "invalid choice: 'exact'" in capsys.readouterr().err
    with pytest.warns(FutureWarning, match="--recipe is deprecated; use --stage"):
        assert main([*base, "--recipe", "stage1", "--use_peft"]) == 2  # the earlier flag still reads
    assert "--use_peft and --save_adapter need --stage stage2" in capsys.readouterr().err
    assert main([*base, "--dataset_name", "celeba"]) == 2
    assert "--dataset_name celeba needs --dataset_dir" in capsys.readouterr().err
    assert main([*base, "--knowledge_teacher_forcing", "1.5"]) == 2
    assert "--knowledge_teacher_forcing 1.5: expected 0 to 1" in capsys.readouterr().err
    assert main([*base, "--resume_from_checkpoint", "true", "--num_train_faces", "16", "--max_steps", "1"]) == 2
    assert "no complete checkpoint" in capsys.readouterr().err


def _short_run(tiny_folder, out, *flags):
    """Two steps of `faceinsight train` on 16 synthetic faces; (model before, model after) from their folders."""
    assert (
        main(
            [
                "train",
                "--model_name_or_path",
                str(tiny_folder),
                "--output_dir",
                str(out),
                "--max_steps",
                "2",
                "--num_train_faces",
                "16",
                "--num_eval_faces",
                "4",
                "--per_device_train_batch_size",
                "4",
                "--learning_rate",
                "1e-2",
                *flags,
            ]
        )
        == 0
    )
    from faceinsight import FaceInsightForConditionalGeneration

    return FaceInsightForConditionalGeneration.from_pretrained(
        tiny_folder
    ), FaceInsightForConditionalGeneration.from_pretrained(out)


def test_gradient_checkpointing_run_trains_lora(tiny_folder, tmp_path):
    before, after = _short_run(tiny_folder, tmp_path / "gc", "--gradient_checkpointing", "true")
    q_before = before.model.language_model.layers[0].self_attn.q_proj.weight
    q_after = after.model.language_model.layers[0].self_attn.q_proj.weight
    assert not torch.equal(q_before, q_after)  # LoRA trained through checkpointed blocks, then merged


def test_train_vision_tower_trains_it_and_nothing_is_saved_frozen(tiny_folder, tmp_path):
    """A random tower (the tiny preset) can be trained beside LoRA; freezing was the run's choice, not saved."""
    out = tmp_path / "vt"
    before, after = _short_run(tiny_folder, out, "--train_vision_tower", "true")
    patch_before = before.model.vision_tower.embeddings.patch_embedding.weight
    patch_after = after.model.vision_tower.embeddings.patch_embedding.weight
    assert not torch.equal(patch_before, patch_after)
    # the label-patch parsing encoder has no pretrained form to keep: it trains like the projectors, always
    parsing_before = before.model.parsing_encoder.patch_embedding.weight
    assert not torch.equal(parsing_before, after.model.parsing_encoder.patch_embedding.weight)
    assert all(p.requires_grad for p in after.parameters()) and "freeze_vision_tower" not in after.config.to_dict()
    assert json.loads((out / "training_report.json").read_text())["also_trained"] == ["vision_tower", "parsing_encoder"]


def test_knowledge_tokens_train_and_their_ablation_leaves_the_earlier_model(tiny_folder, tmp_path, face_image):
    """The knowledge tokens' parameters train (stage 2 keeps them whole beside LoRA); `--knowledge_tokens false` gives
    the earlier model: config, processor placeholders and weights without them, and it answers."""
    from transformers import AutoProcessor

    from faceinsight.inference import FaceInsightAssistant

    before, after = _short_run(tiny_folder, tmp_path / "kt")
    assert not torch.equal(before.model.knowledge_tokens.evidence, after.model.knowledge_tokens.evidence)

    out = tmp_path / "no_kt"
    _, ablated = _short_run(tiny_folder, out, "--knowledge_tokens", "false")
    processor = AutoProcessor.from_pretrained(out)
    assert not ablated.config.knowledge_tokens and ablated.model.knowledge_tokens is None
    assert processor.knowledge_seq_length == 0
    assert not any("knowledge_tokens" in name for name in ablated.state_dict())
    assistant = FaceInsightAssistant(ablated.eval(), processor)
    assert isinstance(assistant.ask(face_image, "Is this person smiling?", max_new_tokens=3), str)


def test_train_language_model_trains_the_lm_in_full_without_lora(tiny_folder, tmp_path):
    """For an LM that starts random (the tiny preset), stage 2 can train it whole: every LM weight moves, no adapter."""
    out = tmp_path / "full_lm"
    before, after = _short_run(tiny_folder, out, "--train_language_model", "true")
    for name in ("embed_tokens.weight", "layers.0.mlp.up_proj.weight", "norm.weight"):
        assert not torch.equal(
            before.model.language_model.get_parameter(name), after.model.language_model.get_parameter(name)
        ), name
    assert not (out / "adapter").exists()


@pytest.mark.slow
def test_structured_outputs_mark_what_training_never_covered(trained, face_image):
    """Synthetic faces label 22 of CelebA's 40 attributes and every facet: the other 18 are marked untrained."""
    from faceinsight.inference import FaceInsightAssistant
    from faceinsight.modeling.configuration_faceinsight import CELEBA_ATTRIBUTES

    result = FaceInsightAssistant.from_pretrained(str(trained)).attributes(face_image)
    untrained = [name for name, entry in result["attributes"].items() if not entry["trained"]]
    assert len(untrained) == 18 and set(untrained) < set(CELEBA_ATTRIBUTES)
    assert all(entry["trained"] for entry in result["facets"].values())
    assert "18 of 65 label nodes were never trained" in result["warnings"][0]
    assert "face" in result and 0 <= result["face"]["share"] <= 1


def _write_celeba_and_rafdb(root):
    """Two datasets in their original layouts: CelebA (attributes, gender from Male) and RAF-DB (expression)."""
    from test_face_datasets import _image, _write_celeba

    rows = [(f"{i:06d}.jpg", {"Male", "Smiling"} if i % 2 else {"Eyeglasses"}) for i in range(12)]
    _write_celeba(root / "celeba", rows)
    labels = root / "rafdb" / "EmoLabel"
    labels.mkdir(parents=True)
    names = [f"train_{i:05d}.jpg {1 + i % 7}" for i in range(10)] + [f"test_{i:04d}.jpg {4}" for i in range(3)]
    labels.joinpath("list_patition_label.txt").write_text("\n".join(names) + "\n")
    for line in names:
        stem = line.split()[0].removesuffix(".jpg")
        _image(root / "rafdb" / "Image" / "aligned" / f"{stem}_aligned.jpg")
    return f"{root / 'celeba'},{root / 'rafdb'}"


@pytest.mark.slow
def test_a_mixture_of_two_real_format_datasets_trains_each_on_its_own_labels(tiny_folder, tmp_path, capsys):
    """The paper's protocol: CelebA's faces carry the attributes, RAF-DB's the expression; the knowledge is counted
    only where both labels are known, so no rule joins an attribute to an expression."""
    folders = _write_celeba_and_rafdb(tmp_path / "data")
    out = tmp_path / "mixture"
    args = ["train", "--model_name_or_path", str(tiny_folder), "--output_dir", str(out), "--max_steps", "2"]
    args += ["--dataset_name", "celeba,rafdb", "--dataset_dir", folders]
    args += ["--per_device_train_batch_size", "4", "--min_rule_support", "2"]
    assert main(args) == 0  # every face once (with --dataset_weights the smaller datasets are drawn again)
    report = json.loads((out / "training_report.json").read_text())
    assert report["data"]["train_faces"] == {"celeba": 4, "rafdb": 10}
    config = json.loads((out / "config.json").read_text())
    counts = dict(zip(FaceInsightConfig.from_pretrained(out).label_names, config["labelled_faces"]))
    assert counts["Eyeglasses"] == 4 and counts["gender:Male"] == 4 and counts["expression:Happiness"] == 10
    assert counts["age:20-29"] == 0 and counts["race:White"] == 0  # neither dataset labels them
    rules = config["logic_rules"]
    assert {"type": "exclusion", "a": "Eyeglasses", "b": "Smiling"} in rules  # seen together on CelebA's faces
    assert not [r for r in rules if r["a"].startswith("expression:") != r["b"].startswith("expression:")]
    # one folder per real dataset, and one weight per dataset
    one_folder = [folders.split(",")[0] if a == folders else a for a in args]
    assert main([*one_folder[:4], str(tmp_path / "bad1"), *one_folder[5:]]) == 2
    message = "--dataset_dir: 2 datasets that are not synthetic (celeba, rafdb) need one folder each"
    assert message in capsys.readouterr().err
    assert main([*args[:4], str(tmp_path / "bad2"), *args[5:], "--dataset_weights", "1"]) == 2
    assert "--dataset_weights 1: give 2 non-negative weights" in capsys.readouterr().err
