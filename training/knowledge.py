"""Knowledge from training labels: co-occurrence statistics, C_hat and mined logic rules, written into a model's
config, with a summary a person can read."""

from __future__ import annotations

import torch

from faceinsight.modeling.knowledge_faceinsight import build_correlation_matrix, label_cooccurrence, mine_logic_rules


def label_matrix(face_labels: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    targets = torch.tensor(face_labels, dtype=torch.float32)
    mask = targets != -100
    return targets.clamp(min=0) * mask, mask.float()


def derive_knowledge(face_labels, config, tau: float = 0.4, omega: float = 0.2, min_support: int = 20) -> dict:
    """C_hat (ML-GCN) and rules mined from the training labels; exclusions between values of one categorical facet
    are left out (the schema already says exactly one value)."""
    labels, mask = label_matrix(face_labels)
    names = config.label_names
    c_hat = build_correlation_matrix(labels, mask, tau=tau, omega=omega)
    facet_of = {i: facet for facet, indices in config.facet_label_indices.items() for i in indices}
    index = {name: i for i, name in enumerate(names)}
    rules = [
        rule
        for rule in mine_logic_rules(labels, names, mask, min_support=min_support)
        if not (
            rule["type"] == "exclusion"
            and facet_of.get(index[rule["a"]]) is not None
            and facet_of.get(index[rule["a"]]) == facet_of.get(index[rule["b"]])
        )
    ]
    cooccurrence, counts = label_cooccurrence(labels, mask)
    conditional = cooccurrence / counts.clamp(min=1).unsqueeze(1)
    pairs = [
        (float(conditional[i, j]), names[i], names[j])
        for i in range(len(names))
        for j in range(len(names))
        if i != j and counts[i] >= min_support and 0 < conditional[i, j] < 1
    ]
    pairs.sort(reverse=True)
    return {
        "correlation_matrix": c_hat.tolist(),
        "logic_rules": rules,
        "tau": tau,
        "omega": omega,
        "samples": int(labels.shape[0]),
        "label_counts": {name: int(counts[i]) for i, name in enumerate(names)},
        "top_dependencies": [{"p": round(p, 3), "given": a, "then": b} for p, a, b in pairs[:15]],
    }


def held_out_rules(targets, schema, min_support: int = 20) -> list[dict]:
    """The rules a prediction is checked against for the violation rate: the schema's definitional rules and those
    that hold in the evaluated split's ground truth (the same for every model)."""
    mined = derive_knowledge(targets, schema, min_support=min_support)["logic_rules"]
    definitional = schema.definitional_rules
    return definitional + [rule for rule in mined if rule not in definitional]


def record_label_coverage(config, face_labels: list[list[int]]):
    """Add this run's training faces per label node to `config.labelled_faces` (nodes at 0 were never trained)."""
    known = (torch.tensor(face_labels) != -100).sum(0).tolist() if face_labels else []
    previous = config.labelled_faces or [0] * len(known)
    config.labelled_faces = [int(a) + int(b) for a, b in zip(previous, known)]


def apply_knowledge(model, knowledge: dict):
    """Write C_hat, tau, omega and the rules into the config and refresh the modules' config-derived buffers."""
    config = model.config
    config.correlation_matrix = knowledge["correlation_matrix"]
    config.correlation_tau, config.correlation_omega = knowledge["tau"], knowledge["omega"]
    config.logic_rules = knowledge["logic_rules"]
    config.validate()
    model.refresh_config_buffers()


def summary_text(knowledge: dict) -> str:
    lines = [
        f"knowledge from {knowledge['samples']} training samples (tau={knowledge['tau']}, "
        f"omega={knowledge['omega']}): {len(knowledge['logic_rules'])} rules"
    ]
    for rule in knowledge["logic_rules"][:20]:
        arrow = "never with" if rule["type"] == "exclusion" else "implies"
        lines.append(f"  rule: {rule['a']} {arrow} {rule['b']}")
    for dependency in knowledge["top_dependencies"][:10]:
        lines.append(f"  p({dependency['then']} | {dependency['given']}) = {dependency['p']}")
    return "\n".join(lines)
