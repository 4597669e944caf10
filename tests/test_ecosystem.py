"""FaceInsight through the ecosystem's own tools, as a user who never reads our code would use it: every save path
writes a folder that loads where faceinsight is not installed; TRL's own `trl sft` CLI fine-tunes a FaceInsight
folder in full and with LoRA; a PEFT adapter reloads on a fresh base to identical logits."""

import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from faceinsight.commands import main
from faceinsight.hub.validate import run_load_check

TRL_SFT = [sys.executable, "-m", "trl.cli.main", "sft"]


@pytest.fixture(scope="module")
def sft_dataset(tiny, tmp_path_factory):
    """16 synthetic faces as TRL's vision format (`messages` + `images`), in a folder `load_dataset` reads."""
    from faceinsight.training.face_datasets import synthetic_faces
    from faceinsight.training.instructions import to_conversations

    model, _ = tiny
    records, _ = synthetic_faces(16, 0, 64, "train")
    folder = tmp_path_factory.mktemp("sft_data")
    conversations = to_conversations(records, model.config, seed=0).select_columns(["messages", "images"])
    conversations.to_parquet(str(folder / "train.parquet"))
    return folder


def _sft(tiny_folder, dataset, output_dir, *flags):
    command = [
        *TRL_SFT,
        "--model_name_or_path",
        str(tiny_folder),
        "--trust_remote_code",
        "--dataset_name",
        str(dataset),
        "--output_dir",
        str(output_dir),
        "--max_steps",
        "3",
        "--per_device_train_batch_size",
        "4",
        "--learning_rate",
        "1e-2",
        "--use_cpu",
        "--bf16",
        "false",
        "--report_to",
        "none",
        *flags,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def _changed_parts(before, after):
    """{part: share of its weights that changed}, parts named as under `model.` (and `lm_head`)."""
    totals, changed = {}, {}
    for key, value in before.items():
        part = key.split(".")[1] if key.startswith("model.") else key.split(".")[0]
        totals[part] = totals.get(part, 0) + value.numel()
        changed[part] = changed.get(part, 0) + (0 if torch.equal(value, after[key]) else value.numel())
    return {part: changed[part] / totals[part] for part in totals}


def _assert_loads_without_faceinsight(folder, expected_class="FaceInsightForConditionalGeneration"):
    report = run_load_check(folder)
    assert report["AutoModel"] == report["AutoModelForImageTextToText"] == expected_class
    assert report["AutoProcessor"] == "FaceInsightProcessor"
    assert report["pipeline_answer_type"] == "str" and report["faceinsight_imported"] == []


@pytest.mark.slow
@pytest.mark.parametrize("save_path", ["save_pretrained", "Trainer.save_model"])
def test_every_save_path_writes_a_folder_that_loads_without_faceinsight(tiny, tmp_path, save_path, capsys):
    from transformers import Trainer, TrainingArguments

    model, processor = tiny
    folder = tmp_path / "saved"
    if save_path == "save_pretrained":
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
    else:
        arguments = TrainingArguments(output_dir=str(tmp_path / "run"), use_cpu=True, report_to=[])
        Trainer(model=model, args=arguments, processing_class=processor).save_model(str(folder))
    _assert_loads_without_faceinsight(folder)
    assert main(["push", str(folder), "--repo-id", "org/fi", "--dry-run"]) == 0
    assert "README.md: no card;" in capsys.readouterr().out  # the dry run says the card will be written


@pytest.mark.slow
def test_trl_sft_full_fine_tune_trains_the_whole_model_and_reloads(tiny_folder, sft_dataset, tmp_path, capsys):
    """`trl sft` loads the folder with trust_remote_code and trains every part TRL's LM loss reaches, as for LLaVA.
    TRL computes that loss itself (a fused LM head), so the attribute head's BCE and logic terms do not count:
    the knowledge modules keep their weights (`faceinsight train` trains the whole objective)."""
    out = tmp_path / "full"
    _sft(tiny_folder, sft_dataset, out)
    share = _changed_parts(load_file(tiny_folder / "model.safetensors"), load_file(out / "model.safetensors"))
    assert share["language_model"] == 1.0
    for part in ("multi_modal_projector", "parsing_projector"):
        assert share[part] == 1.0, part
    for tower in ("vision_tower", "parsing_encoder"):  # all but SigLIP's pooling head and last norm, unused by LLaVA
        assert share[tower] > 0.6, tower
    assert share["parser"] == 0.0 and share["correlation_module"] == 0.0
    _assert_loads_without_faceinsight(out)
    assert main(["push", str(out), "--repo-id", "org/fi", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "leaves out checkpoint-3/: training checkpoint" in printed
    assert "leaves out training_args.bin: trainer leftover" in printed
    assert "the trainer draft card is replaced by FaceInsight's card" in printed


@pytest.mark.slow
def test_trl_sft_lora_writes_an_adapter_that_loads_on_its_base(tiny_folder, sft_dataset, tmp_path):
    out = tmp_path / "lora"
    _sft(tiny_folder, sft_dataset, out, "--use_peft", "--lora_target_modules", r".*language_model.*\.(q_proj|v_proj)")
    report = run_load_check(out)
    assert report["lora_modules"] == 2 * 2  # q_proj and v_proj of the two LM layers, nothing in the towers
    assert report["generate_new_tokens"] == 6 and report["faceinsight_imported"] == []


def test_a_peft_adapter_reloads_on_a_fresh_base_to_identical_logits(tiny_folder, sft_dataset, tmp_path, make_inputs):
    """What `trl sft --use_peft` runs (SFTTrainer with a LoRA config), then the adapter on a freshly loaded base.
    Frozen parts stay in eval mode, so nothing outside the adapter (BatchNorm statistics) moves in training."""
    import datasets
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForImageTextToText
    from trl import SFTConfig, SFTTrainer

    arguments = SFTConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=3,
        per_device_train_batch_size=4,
        learning_rate=1e-2,
        use_cpu=True,
        bf16=False,
        report_to="none",
        save_strategy="no",
        trust_remote_code=True,
    )
    lora = LoraConfig(
        r=8, lora_dropout=0.1, task_type="CAUSAL_LM", target_modules=r".*language_model.*\.(q_proj|v_proj)"
    )
    train = datasets.load_dataset(str(sft_dataset))["train"]
    trainer = SFTTrainer(model=str(tiny_folder), args=arguments, train_dataset=train, peft_config=lora)
    trainer.train()
    trainer.save_model(str(tmp_path / "adapter"))
    inputs = make_inputs(["Smiling?", "How old is this person?"])
    base = AutoModelForImageTextToText.from_pretrained(tiny_folder, trust_remote_code=True)
    reloaded = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    with torch.no_grad():
        trained = trainer.model.eval()(**inputs).logits
        again = reloaded(**inputs).logits
    assert float((trained - again).abs().max()) == 0.0
