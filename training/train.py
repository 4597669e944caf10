"""Supervised fine-tuning of FaceInsight with TRL's SFTTrainer on the whole objective (LM + BCE + logic): the
library behind `faceinsight train` (commands/train.py parses the flags) and the demo.

A run, step by step (`run_training`): load the model and the records; write the knowledge (C_hat, rules) derived
from the training labels into the config; choose what trains (the training stage: stage1 trains the projectors and
the knowledge head, stage2 adds LoRA on the LM); train; save the Hub-ready folder (LoRA merged, and the adapter on
its own when asked).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from faceinsight.modeling.configuration_faceinsight import KNOWLEDGE_TOKEN_SOURCES
from faceinsight.training.face_datasets import SPLITS
from faceinsight.training.trainer import PARSING_MAP_SOURCES

STAGES = ("stage1", "stage2")
FULLY_TRAINED_WITH_LORA = ["multi_modal_projector", "parsing_projector", "correlation_module", "knowledge_tokens"]
LM_ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
# the knowledge step's flags, by the names `faceinsight.modeling.knowledge_faceinsight.write_knowledge` takes
KNOWLEDGE_FLAGS = {
    "derive": "derive_knowledge",
    "correlation_graph": "use_correlation_graph",
    "logic_rules": "use_logic_rules",
    "tau": "correlation_tau",
    "omega": "correlation_omega",
    "min_support": "min_rule_support",
}


def _flag(default, help_text, **extra):
    return field(default=default, metadata={"help": help_text, **extra})


@dataclass
class FaceInsightScriptArguments:
    """FaceInsight's own options of `faceinsight train` (TRL's SFTConfig and ModelConfig give the rest)."""

    _argument_group_name = "FaceInsight: data, training stage, knowledge, ablations"

    dataset_name: str = _flag(
        "synthetic",
        "synthetic, celeba, lfwa, fairface, utkface, rafdb, affectnet, celebamask_hq, maadface, or a datasets folder "
        "saved with save_to_disk; several, comma-separated, train on their mixture (the paper's protocol: each "
        "dataset labels its own tasks), e.g. celeba,fairface,rafdb; synthetic:attributes, synthetic:age_gender_race "
        "and synthetic:expression are synthetic faces labelled for one task only",
    )
    dataset_dir: str | None = _flag(
        None, "the dataset's root in its original layout; with several datasets, one per non-synthetic one, in order"
    )
    dataset_weights: str | None = _flag(
        None,
        "with several datasets: comma-separated sampling weights, one per dataset (the share of training samples "
        "each gives, oversampling the smaller until every face was seen; default: their sizes, each face once)",
    )
    num_train_faces: int = _flag(2000, "synthetic: training faces (shared equally by the synthetic parts)")
    num_eval_faces: int = _flag(500, "synthetic: held-out faces for the final report")
    num_validation_faces: int = _flag(
        500, "synthetic: validation faces for calibrating the decisions (real datasets: their validation split)"
    )
    stage: str = _flag(
        "stage2",
        "training stage: stage1 (projectors + knowledge head) or stage2 (+ LoRA on the LM)",
        choices=list(STAGES),
    )
    derive_knowledge: bool = _flag(True, "compute C_hat and rules from the training labels")
    correlation_tau: float = 0.4
    correlation_omega: float = 0.2
    min_rule_support: int = 20
    train_vision_tower: bool = _flag(
        False,
        "also train the image tower (needed when it starts random, as in the tiny "
        "preset; the paper keeps a pretrained one frozen)",
    )
    train_parsing_encoder: bool = _flag(False, "also train the parsing-map encoder")
    train_language_model: bool = _flag(
        False,
        "stage2: train the LM in full instead of LoRA (for a small LM that starts random, as in the tiny preset)",
    )
    parsing_map_source: str = _flag(
        "dataset",
        "dataset (its maps; the parser where it has none), parser (the "
        "in-model parser always), blank (all background: the no-parsing ablation)",
        choices=list(PARSING_MAP_SOURCES),
    )
    parsing_maps_dir: str | None = _flag(
        None,
        "maps written once by `faceinsight parse` over the dataset's images: every image without a map "
        "of its own takes its map from there, and the parser never runs in the training loop",
    )
    eval_parsing_map_source: str | None = _flag(
        None, "maps for the held-out report (default: as --parsing_map_source); 'parser' measures what a user gets"
    )
    calibrate_decisions: bool = _flag(
        True,
        "after training, calibrate the head's probabilities on the validation faces (per attribute, per facet) "
        "before the LCM decides (config.decision_calibration); false keeps sigmoid(logit)",
    )
    use_correlation_graph: bool = _flag(True, "false: C_hat = identity (the no-CCM ablation)")
    use_logic_rules: bool = _flag(True, "false: no mined rules and no L_c (the no-LCM ablation)")
    knowledge_tokens: bool | None = _flag(
        None,
        "true/false: the LM reads (or not) the knowledge head's tokens after the parsing tokens (default: as the "
        "model's config; false is the no-knowledge-tokens ablation)",
    )
    ground_knowledge_words: bool | None = _flag(
        None,
        "true/false: the prompt's words naming an attribute or a facet's value carry (or not) its knowledge token, up "
        "to the answer (default: as the model's config; needs knowledge tokens)",
    )
    grounded_descriptions: bool | None = _flag(
        None,
        "true/false: asked for a description, the saved model states only what its head decided (or generates "
        "freely); inference only, written into the saved config (default: as the model's config)",
    )
    knowledge_token_source: str | None = _flag(
        None,
        "probabilities/decisions: the knowledge tokens carry the head's probabilities or its logic-consistent "
        "decisions (default: as the model's config)",
        choices=list(KNOWLEDGE_TOKEN_SOURCES),
    )
    knowledge_teacher_forcing: float = _flag(
        0.5,
        "the share of training faces whose knowledge tokens are made from their labels instead of what the head "
        "gives them (--knowledge_token_source), so the LM learns to read the tokens from a clean signal; the rest "
        "read the head, so the LM also meets the tokens it gets in use (1: always the labels, 0: always the head's)",
    )
    save_adapter: bool = _flag(
        False,
        "stage2: also write the LoRA adapter (with the modules trained in full) to "
        "OUTPUT_DIR/adapter, naming --adapter_base",
    )
    adapter_base: str | None = _flag(
        None, "the base the adapter names (its Hub id once the base is published; default: --model_name_or_path)"
    )
    on_error: str = _flag(
        "raise",
        "a bad row or image: raise (stop, naming it) or skip (and count it in training_report.json)",
        choices=["raise", "skip"],
    )
    verify_images: bool = _flag(True, "decode every image once before training (a corrupt file is found up front)")
    overwrite: bool = _flag(
        False,
        "replace an earlier faceinsight train output in --output_dir (only what it "
        "wrote); without it a non-empty folder is refused, except to resume",
    )
    # earlier names, kept for a release
    recipe: str | None = _flag(None, "deprecated: --stage")
    parsing_maps: str | None = _flag(None, "deprecated: --parsing_map_source")
    eval_parsing_maps: str | None = _flag(None, "deprecated: --eval_parsing_map_source")


@dataclass
class TrainingRun:
    """What a run leaves for its caller: the trained model (LoRA merged), its processor, the trainer (state, logs),
    the held-out records and the training targets (for a report), the knowledge and the data report."""

    model: object
    processor: object
    trainer: object
    test_records: object
    train_targets: list
    knowledge: dict | None
    data_report: dict
    also_trained: list[str]


# -- the steps ------------------------------------------------------------------------------------------------------
def dataset_parts(script_args) -> list[tuple[str, str | None]]:
    """(name, folder) per dataset of --dataset_name, folders from --dataset_dir in order for the non-synthetic ones."""
    names = [name.strip() for name in script_args.dataset_name.split(",") if name.strip()]
    real = [name for name in names if name.split(":")[0] != "synthetic"]
    folders = [d.strip() for d in (script_args.dataset_dir or "").split(",") if d.strip()]
    if len(real) > 1 and len(folders) != len(real):
        raise ValueError(
            f"--dataset_dir: {len(real)} datasets that are not synthetic ({', '.join(real)}) need one folder each, "
            f"comma-separated in the same order; got {len(folders)}"
        )
    folder_of = dict(zip(real, folders)) if len(real) > 1 else {name: script_args.dataset_dir for name in real}
    return [(name, folder_of.get(name)) for name in names]


def _read_part(name: str, folder: str | None, script_args, image_size: int, seed: int, part: tuple[int, int]):
    """{split: records} and the reader's report of one dataset; the synthetic parts share the face counts
    (`part` = (this synthetic part's index, how many there are)) and take disjoint faces."""
    from faceinsight.training import face_datasets

    if name.split(":")[0] == "synthetic":
        task = name.split(":", 1)[1] if ":" in name else None
        index, parts = part
        splits, report = {}, None
        for split, total in (
            ("train", script_args.num_train_faces),
            ("validation", script_args.num_validation_faces),
            ("test", script_args.num_eval_faces),
        ):
            count = total // parts
            splits[split], reported = face_datasets.synthetic_faces(
                count, seed, image_size, split, start=index * count, task=task
            )
            report = report or reported
        return splits, report
    records, report = face_datasets.read_named_dataset(
        name, folder, script_args.on_error, verify_images=script_args.verify_images
    )
    if report.get("skipped"):
        print(f"skipped while reading {name}: {report['skipped']} (--on_error skip; also in training_report.json)")
    splits = {split: records.filter(lambda s, split=split: s == split, input_columns="split") for split in SPLITS}
    if len(splits["train"]) == 0:
        raise ValueError(
            f"--dataset_name {name}: no training rows in {folder} (its splits: {report['splits']}); training needs some"
        )
    if script_args.parsing_maps_dir:
        splits = {
            split: face_datasets.attach_parsing_maps(rows, script_args.parsing_maps_dir) if len(rows) else rows
            for split, rows in splits.items()
        }
    return splits, report


def mix_records(parts: list, weights: list[float] | None, seed: int):
    """One training set from several: their concatenation (each face once), or with `weights` a random draw of
    each sample's dataset by weight (datasets' `interleave_datasets`), the smaller oversampled until every face of
    every dataset was drawn."""
    import datasets

    if len(parts) == 1:
        return parts[0]
    if weights is None:
        return datasets.concatenate_datasets(parts)
    total = sum(weights)
    return datasets.interleave_datasets(
        parts, probabilities=[w / total for w in weights], seed=seed, stopping_strategy="all_exhausted"
    )


def parse_weights(script_args, count: int) -> list[float] | None:
    if script_args.dataset_weights is None:
        return None
    try:
        weights = [float(w) for w in script_args.dataset_weights.split(",")]
    except ValueError:
        raise ValueError(f"--dataset_weights {script_args.dataset_weights}: give comma-separated numbers") from None
    if len(weights) != count or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(
            f"--dataset_weights {script_args.dataset_weights}: give {count} non-negative weights (one per dataset of "
            "--dataset_name), not all zero"
        )
    return weights


def load_records(script_args, image_size: int, seed: int, with_validation: bool = False):
    """(train records, held-out records, reader's report) for the chosen dataset or mixture of datasets; with
    `with_validation`, (train, validation, held-out, report). A mixture's held-out and validation records are every
    dataset's own, each face labelled as its dataset labels it."""
    import datasets

    parts = dataset_parts(script_args)
    weights = parse_weights(script_args, len(parts))
    synthetic = [name for name, _ in parts if name.split(":")[0] == "synthetic"]
    read, reports = [], []
    for name, folder in parts:
        index = (synthetic.index(name), len(synthetic)) if name in synthetic else (0, 1)
        splits, report = _read_part(name, folder, script_args, image_size, seed, index)
        read.append(splits)
        reports.append(report)
    train = mix_records([splits["train"] for splits in read], weights, seed)
    held = {
        split: datasets.concatenate_datasets([splits[split] for splits in read]) for split in ("validation", "test")
    }
    report = reports[0]
    if len(parts) > 1:
        counts = {report["dataset"]: len(splits["train"]) for report, splits in zip(reports, read)}
        report = {"dataset": script_args.dataset_name, "rows": len(train), "parts": reports, "train_faces": counts}
        report["weights"] = weights
    if with_validation:
        return train, held["validation"], held["test"], report
    return train, held["test"], report


def load_model_and_processor(
    model_args,
    knowledge_tokens: bool | None = None,
    ground_knowledge_words: bool | None = None,
    knowledge_token_source: str | None = None,
    grounded_descriptions: bool | None = None,
):
    """The model and processor to train; `knowledge_tokens` (not None) switches the knowledge tokens on or off in the
    config, the model (a new module starts initialised) and the processor's placeholder count alike;
    `ground_knowledge_words` (not None) switches the grounded words, spelled with the processor's
    tokenizer when the config has no spellings yet; `knowledge_token_source` (not None) sets what the tokens carry."""
    from transformers import AutoProcessor

    from faceinsight import FaceInsightForConditionalGeneration
    from faceinsight.hub.build import description_token_ids, knowledge_word_token_ids

    dtype = model_args.dtype if model_args.dtype not in (None, "auto") else None
    switches = {
        "knowledge_tokens": knowledge_tokens,
        "ground_knowledge_words": ground_knowledge_words,
        "knowledge_token_source": knowledge_token_source,
        "grounded_descriptions": grounded_descriptions,
    }
    model = FaceInsightForConditionalGeneration.from_pretrained(
        model_args.model_name_or_path,
        use_safetensors=True,
        dtype=getattr(torch, dtype) if dtype else None,
        attn_implementation=model_args.attn_implementation or "sdpa",
        **{name: value for name, value in switches.items() if value is not None},
    )
    processor = AutoProcessor.from_pretrained(model_args.model_name_or_path)
    processor.knowledge_seq_length = model.config.knowledge_seq_length
    if model.config.ground_knowledge_words and model.config.knowledge_word_token_ids is None:
        model.config.knowledge_word_token_ids = knowledge_word_token_ids(processor.tokenizer, model.config)
        model.refresh_config_buffers()
    if model.config.grounded_descriptions and model.config.description_token_ids is None:  # an older folder
        model.config.description_token_ids = description_token_ids(processor.tokenizer, model.config)
    return model, processor


def write_knowledge(model, train_targets: list, script_args) -> dict | None:
    """Deprecated: `faceinsight.modeling.knowledge_faceinsight.write_knowledge`, which takes the flags by name."""
    import warnings

    from faceinsight.modeling.knowledge_faceinsight import write_knowledge as write

    warnings.warn(
        "faceinsight.training.train.write_knowledge is deprecated; use "
        "faceinsight.modeling.knowledge_faceinsight.write_knowledge",
        FutureWarning,
        stacklevel=2,
    )
    return write(model, train_targets, **{name: getattr(script_args, flag) for name, flag in KNOWLEDGE_FLAGS.items()})


def lora_target_regex(targets) -> str:
    """LoRA targets scoped to the language model: module names (a list, or one name) become a regular expression
    over the LM's modules (the towers have q_proj too); a regular expression is taken as it is."""
    if isinstance(targets, str) and any(char in targets for char in ".*|()[]\\"):
        return targets
    names = [targets] if isinstance(targets, str) else list(targets)
    names = [part.strip() for name in names for part in name.split(",") if part.strip()]
    return rf".*language_model.*\.({'|'.join(names)})"


def choose_what_trains(model, script_args, model_args) -> tuple[object, list[str]]:
    """Freeze what the stage does not train (frozen parts stay in eval mode); stage2 puts LoRA on the LM (PEFT
    freezes its base weights; the LM stays in train mode for the adapter's dropout). Returns (model, extra parts)."""
    from peft import get_peft_model
    from trl import get_peft_config

    extra = [
        part
        for part, wanted in (
            ("vision_tower", script_args.train_vision_tower),
            # the label-patch encoder has no pretrained form to keep: it trains like the projectors
            (
                "parsing_encoder",
                script_args.train_parsing_encoder or model.config.parsing_encoder_type == "label_patches",
            ),
        )
        if wanted
    ]
    frozen = [part for part in ("vision_tower", "parsing_encoder") if part not in extra]
    model.freeze("parser", *frozen, *(["language_model"] if script_args.stage == "stage1" else []))
    if script_args.stage == "stage2" and not script_args.train_language_model:
        lora = get_peft_config(model_args)
        lora.target_modules = lora_target_regex(model_args.lora_target_modules or LM_ATTENTION)
        present = [name for name in FULLY_TRAINED_WITH_LORA if getattr(model.model, name, None) is not None]
        lora.modules_to_save = list(model_args.lora_modules_to_save or present) + extra
        model = get_peft_model(model, lora)
    return model, extra


def build_trainer(model, processor, train_records, script_args, training_args):
    from faceinsight.training.instructions import to_conversations
    from faceinsight.training.trainer import FaceInsightCollator, FaceInsightSFTTrainer

    if training_args.gradient_checkpointing:  # frozen embeddings: checkpointed blocks still need an input with grad
        model.enable_input_require_grads()
    training_args.remove_unused_columns = False
    training_args.dataset_kwargs = {"skip_prepare_dataset": True}
    return FaceInsightSFTTrainer(
        model=model,
        args=training_args,
        train_dataset=to_conversations(train_records, model.config, seed=training_args.seed),
        processing_class=processor,
        data_collator=FaceInsightCollator(processor, parsing_map_source=script_args.parsing_map_source),
    )


@torch.no_grad()
def calibrate_decisions(model, processor, validation, script_args) -> dict | None:
    """`config.decision_calibration` fitted on the validation records (the head's logits against their labels), with
    the maps the held-out report uses; None (and nothing written) without validation records."""
    from faceinsight.modeling.knowledge_faceinsight import fit_decision_calibration
    from faceinsight.training.instructions import encode_labels
    from faceinsight.training.trainer import parsing_maps_from

    if validation is None or len(validation) == 0:
        print("no validation faces: the decisions stay uncalibrated (sigmoid of the head's logits)")
        return None
    source = script_args.eval_parsing_map_source or script_args.parsing_map_source
    logits = []
    for start in range(0, len(validation), 64):
        batch = validation[start : start + 64]
        maps = parsing_maps_from(source, batch["image"], batch.get("parsing_map") or [None] * len(batch["image"]))
        inputs = processor.image_processor(batch["image"], parsing_maps=maps, return_tensors="pt")
        logits.append(model.predict_face_labels(inputs["pixel_values"], inputs.get("parsing_maps")).logits.cpu())
    targets = [encode_labels(json.loads(labels), model.config) for labels in validation["labels"]]
    model.config.decision_calibration = fit_decision_calibration(torch.cat(logits), targets, model.config)
    model.config.validate()
    model.refresh_config_buffers()
    return model.config.decision_calibration


def save_trained(trainer, processor, script_args, model_args, output_dir: Path, validation=None):
    """The adapter on its own (when asked), then the Hub-ready folder with LoRA merged, its decisions calibrated on
    `validation` (with --calibrate_decisions); returns the merged model."""
    from faceinsight import FaceInsightForConditionalGeneration
    from faceinsight.hub.export import save_model_folder

    final = trainer.model
    if script_args.save_adapter:
        from faceinsight.hub.adapters import save_adapter

        source = model_args.model_name_or_path
        base = script_args.adapter_base or source
        base_config = FaceInsightForConditionalGeneration.config_class.from_pretrained(source)
        save_adapter(
            final, output_dir / "adapter", str(Path(base).resolve()) if Path(base).is_dir() else base, base_config
        )
    if hasattr(final, "merge_and_unload"):
        final = final.merge_and_unload()
    final.eval()
    if script_args.calibrate_decisions:
        calibrate_decisions(final, processor, validation, script_args)
    save_model_folder(final, processor, output_dir)
    return final


def run_training(script_args, training_args, model_args) -> TrainingRun | None:
    """One training run (see the module docstring); None on the processes of a distributed run that do not
    write the folder."""
    from transformers import set_seed

    from faceinsight.modeling.knowledge_faceinsight import knowledge_summary, write_knowledge
    from faceinsight.training.instructions import encode_labels

    set_seed(training_args.seed)  # LoRA's initialisation comes before the Trainer seeds anything
    model, processor = load_model_and_processor(
        model_args,
        script_args.knowledge_tokens,
        script_args.ground_knowledge_words,
        script_args.knowledge_token_source,
        script_args.grounded_descriptions,
    )
    model.model.knowledge_teacher_forcing = script_args.knowledge_teacher_forcing  # training only, not saved
    model.config.decision_calibration = None  # fitted anew after this training (calibrate_decisions)
    model.refresh_config_buffers()
    train_records, validation_records, test_records, data_report = load_records(
        script_args, processor.image_processor.size, training_args.seed, with_validation=True
    )
    train_targets = [encode_labels(json.loads(labels), model.config) for labels in train_records["labels"]]
    # C_hat and rules from the training labels into the config (or the ablations' identity graph / no rules)
    knowledge = write_knowledge(
        model, train_targets, **{name: getattr(script_args, flag) for name, flag in KNOWLEDGE_FLAGS.items()}
    )
    if knowledge is not None:
        print(knowledge_summary(knowledge))
    model, extra = choose_what_trains(model, script_args, model_args)
    trainer = build_trainer(model, processor, train_records, script_args, training_args)
    trainer.train(resume_from_checkpoint=resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir))
    if not trainer.is_world_process_zero():  # under accelerate/torchrun only the main process writes the folder
        return None
    output_dir = Path(training_args.output_dir)
    final = save_trained(trainer, processor, script_args, model_args, output_dir, validation_records)
    return TrainingRun(final, processor, trainer, test_records, train_targets, knowledge, data_report, extra)


# -- resuming -------------------------------------------------------------------------------------------------------
def _is_complete(checkpoint: Path) -> bool:
    """The Trainer writes trainer_state.json last: a checkpoint is complete when that file is there and parses."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


def latest_complete_checkpoint(output_dir: str | Path) -> str | None:
    """The newest checkpoint-N folder written to the end; newer ones that a killed run or a full disk left
    incomplete are passed over, and named."""
    numbered = sorted(
        (p for p in Path(output_dir).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
        reverse=True,
    )
    for checkpoint in numbered:
        if _is_complete(checkpoint):
            return str(checkpoint)
        print(f"resume: passing over {checkpoint} (incomplete: its trainer_state.json is missing or truncated)")
    return None


def resolve_resume(value: str | None, output_dir: str) -> str | None:
    if value is None or str(value).lower() in ("false", "no", ""):
        return None
    if str(value).lower() in ("true", "latest", "yes"):
        checkpoint = latest_complete_checkpoint(output_dir)
        if checkpoint is None:
            raise FileNotFoundError(f"--resume_from_checkpoint {value}: no complete checkpoint in {output_dir}")
        return checkpoint
    if not Path(value).is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint: {value} is not a checkpoint folder")
    if not _is_complete(Path(value)):
        raise ValueError(
            f"--resume_from_checkpoint: {value} is incomplete (trainer_state.json missing or truncated); "
            "pass 'true' to resume from the newest complete checkpoint"
        )
    return value


def training_report(run: TrainingRun, script_args, held_out: dict | None) -> dict:
    """What training_report.json holds."""
    history = [
        {k: v for k, v in entry.items() if k in ("step", "loss", "lm_loss", "bce_loss", "logic_loss")}
        for entry in run.trainer.state.log_history
        if "loss" in entry
    ]
    return {
        "data": run.data_report,
        "stage": script_args.stage,
        "also_trained": run.also_trained,
        "steps": run.trainer.state.global_step,
        "loss_history": history,
        "held_out": held_out,
    }
