"""FaceInsight's facial-knowledge modules.

* Correlation Constraint Module (CCM): uncertain dependencies between labels. A GCN over the label graph, whose
  adjacency C_hat comes from label co-occurrence statistics (the ML-GCN recipe, Chen et al., CVPR 2019), turns one
  embedding per label into one classifier vector per label.
* Logical Constraint Module (LCM): deterministic relations. Exclusion rules (a and b never hold together),
  implication rules (a implies b) and the schema's one-value-per-categorical-facet constraint give a differentiable
  violation loss L_c during training and logic-consistent decisions at inference.
* Knowledge tokens (ours; the paper does not say how the LM reads the head): the head's probabilities written into
  tokens the LM reads after the parsing tokens, one per binary attribute and one per facet.

This file is uploaded to the Hub as remote code: it imports only `torch`.
"""

import math
import warnings

import torch
from torch import nn


# --------------------------------------------------------------------------------------------------------------------
# Training labels -> knowledge: C_hat and the rules the config stores (run by `faceinsight train`)
# --------------------------------------------------------------------------------------------------------------------
def label_cooccurrence(labels: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Co-occurrence counts m_ij (both labelled and positive) and the counts n_ij of samples where label i is
    positive and label j is known, of a 0/1 label matrix (S x N); n_ii is label i's positive count.

    `mask` (S x N, 1 = known) restricts both counts to samples that carry both labels, so that p_ij = m_ij / n_ij is
    measured where j could be seen: in a mixture of datasets that each label one task, an attribute and an expression
    never known together give no evidence (n_ij = 0), not p_ij = 0.
    """
    labels = labels.float()
    mask = torch.ones_like(labels) if mask is None else mask.float()
    positives = labels * mask
    return positives.T @ positives, positives.T @ mask


def _pair_counts(counts: torch.Tensor) -> torch.Tensor:
    """n_ij from `label_cooccurrence`, or from a label's positive counts n_i (N,) as earlier callers pass them (every
    label known wherever i is)."""
    return counts if counts.dim() == 2 else counts.unsqueeze(1).expand(-1, counts.shape[0])


def build_correlation_matrix(
    labels: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    tau: float = 0.4,
    omega: float = 0.2,
    counts: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """C_hat from training labels (or their `label_cooccurrence` `counts`, when already taken), following ML-GCN.

    p_ij = m_ij / n_ij (asymmetric conditional probability of j given i, where both are known); edges where
    p_ij >= tau; each row's neighbours share weight `omega` and the node keeps 1 - omega for itself (against
    over-smoothing). A label that never occurs keeps only its self loop.
    """
    cooccurrence, counts = counts if counts is not None else label_cooccurrence(labels, mask)
    conditional = cooccurrence / _pair_counts(counts).clamp(min=1)
    edges = (conditional >= tau).float()
    edges.fill_diagonal_(0)
    neighbour_count = edges.sum(1, keepdim=True)
    reweighted = torch.where(neighbour_count > 0, omega * edges / neighbour_count.clamp(min=1), torch.zeros_like(edges))
    self_weight = torch.where(neighbour_count.squeeze(1) > 0, 1.0 - omega, 1.0)
    return reweighted + torch.diag(self_weight)


def mine_logic_rules(
    labels: torch.Tensor | None,
    names: list[str],
    mask: torch.Tensor | None = None,
    min_support: int = 20,
    counts: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> list[dict]:
    """Deterministic relations seen in the labels (or their `label_cooccurrence` `counts`, when already taken):
    p_ij == 0 (exclusion) or p_ij == 1 (implication i -> j), each backed by at least `min_support` samples where
    label i is positive and label j is known (for an exclusion, also the other way round)."""
    cooccurrence, counts = counts if counts is not None else label_cooccurrence(labels, mask)
    pairs = _pair_counts(counts)
    rules = []
    for i in range(len(names)):
        for j in range(len(names)):
            if i == j or pairs[i, j] < min_support:
                continue
            if cooccurrence[i, j] == 0 and pairs[j, i] >= min_support and i < j:
                rules.append({"type": "exclusion", "a": names[i], "b": names[j]})
            elif cooccurrence[i, j] == pairs[i, j] and pairs[j, i] > pairs[i, j]:
                rules.append({"type": "implication", "a": names[i], "b": names[j]})
    return rules


def derive_knowledge(face_labels, config, tau: float = 0.4, omega: float = 0.2, min_support: int = 20) -> dict:
    """C_hat (ML-GCN) and rules mined from training labels (rows of 0/1, -100 unknown), as the config stores them.
    Exclusions between values of one categorical facet are left out (the schema already says exactly one value)."""
    targets = torch.tensor(face_labels, dtype=torch.float32)
    mask = targets != -100
    labels, mask = targets.clamp(min=0) * mask, mask.float()
    names = config.label_names
    facet_of = {i: facet for facet, indices in config.facet_label_indices.items() for i in indices}
    index = {name: i for i, name in enumerate(names)}

    def same_facet(rule):
        facet = facet_of.get(index[rule["a"]])
        return facet is not None and facet == facet_of.get(index[rule["b"]])

    cooccurrence, counts = label_cooccurrence(labels, mask)  # once, for the rules and C_hat alike
    rules = mine_logic_rules(None, names, min_support=min_support, counts=(cooccurrence, counts))
    conditional = cooccurrence / counts.clamp(min=1)
    pairs = sorted(
        (
            (float(conditional[i, j]), names[i], names[j])
            for i in range(len(names))
            for j in range(len(names))
            if i != j and counts[i, j] >= min_support and 0 < conditional[i, j] < 1
        ),
        reverse=True,
    )
    return {
        "correlation_matrix": build_correlation_matrix(tau=tau, omega=omega, counts=(cooccurrence, counts)).tolist(),
        "logic_rules": [rule for rule in rules if not (rule["type"] == "exclusion" and same_facet(rule))],
        "tau": tau,
        "omega": omega,
        "samples": int(labels.shape[0]),
        "label_counts": {name: int(counts[i, i]) for i, name in enumerate(names)},
        "top_dependencies": [{"p": round(p, 3), "given": a, "then": b} for p, a, b in pairs[:15]],
    }


def write_knowledge(
    model,
    face_labels: list,
    derive: bool = True,
    correlation_graph: bool = True,
    logic_rules: bool = True,
    tau: float = 0.4,
    omega: float = 0.2,
    min_support: int = 20,
) -> dict | None:
    """What a training run learns from its labels (rows of 0/1, -100 unknown), written into `model.config`: C_hat
    and the mined rules (`derive`), or for the ablations the identity graph (`correlation_graph=False`) and no rules
    and no rule loss (`logic_rules=False`); the faces per label node are added to `config.labelled_faces` (a node
    at 0 was never trained). The config-derived buffers follow. Returns what was derived (None without `derive`)."""
    config = model.config
    known = (torch.tensor(face_labels) != -100).sum(0).tolist() if face_labels else []
    config.labelled_faces = [int(a) + int(b) for a, b in zip(config.labelled_faces or [0] * len(known), known)]
    knowledge = None
    if derive:
        knowledge = derive_knowledge(face_labels, config, tau=tau, omega=omega, min_support=min_support)
        if not correlation_graph:
            knowledge["correlation_matrix"] = torch.eye(len(config.label_names)).tolist()
        if not logic_rules:
            knowledge["logic_rules"] = []
        config.correlation_matrix = knowledge["correlation_matrix"]
        config.correlation_tau, config.correlation_omega = knowledge["tau"], knowledge["omega"]
        config.logic_rules = knowledge["logic_rules"]
    if not logic_rules:  # the no-LCM ablation: neither the loss nor mined rules in the decisions
        config.logic_rules, config.logic_loss_weight = [], 0.0
    config.validate()
    model.refresh_config_buffers()
    return knowledge


def fit_decision_calibration(logits, targets, config, min_faces: int = 20, steps: int = 60) -> dict:
    """`config.decision_calibration` fitted on validation faces (logits (V, N), targets 0/1/-100): per binary
    attribute a Platt scaling (scale, bias) by binary cross-entropy, per categorical facet one temperature and a bias
    per value by the facet's softmax cross-entropy, each on the faces that carry its label (at least `min_faces`,
    else left as it is: scale 1, bias 0). A small pull towards (1, 0) keeps a fit on few faces tame; scales stay >= 0
    (a head no better than chance gives its prior)."""
    logits = torch.as_tensor(logits, dtype=torch.float32)
    targets = torch.as_tensor(targets)
    known = targets != -100
    scale, bias = torch.ones(logits.shape[1]), torch.zeros(logits.shape[1])

    def fit(columns, rows, loss_of):
        a = torch.ones(1, requires_grad=True)
        b = torch.zeros(len(columns), requires_grad=True)
        optimiser = torch.optim.LBFGS([a, b], max_iter=steps, line_search_fn="strong_wolfe")
        x = logits[rows][:, columns]

        def closure():
            optimiser.zero_grad()
            loss = loss_of(a * x + b) + 1e-3 * ((a - 1).pow(2).sum() + b.pow(2).sum())
            loss.backward()
            return loss

        optimiser.step(closure)
        scale[columns], bias[columns] = a.detach().clamp(min=0), b.detach()

    for i in range(len(config.binary_attributes)):
        rows = known[:, i]
        y = targets[rows, i].float()
        if rows.sum() >= min_faces and 0 < y.mean() < 1:
            fit([i], rows, lambda z, y=y: nn.functional.binary_cross_entropy_with_logits(z[:, 0], y))
    for indices in config.facet_label_indices.values():
        rows = known[:, indices].all(1)
        if rows.sum() >= min_faces:
            truth = targets[rows][:, indices].argmax(1)
            fit(list(indices), rows, lambda z, truth=truth: nn.functional.cross_entropy(z, truth))
    return {"scale": scale.tolist(), "bias": bias.tolist(), "faces": int(known.any(1).sum())}


def held_out_rules(targets, schema, min_support: int = 20) -> list[dict]:
    """The rules a prediction is checked against for the violation rate: the schema's definitional rules and those
    that hold in the evaluated split's ground truth (the same for every model)."""
    mined = derive_knowledge(targets, schema, min_support=min_support)["logic_rules"]
    definitional = schema.definitional_rules
    return definitional + [rule for rule in mined if rule not in definitional]


def knowledge_summary(knowledge: dict) -> str:
    """What `derive_knowledge` found, for a person: the rules and the strongest dependencies."""
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


def normalize_adjacency(adjacency: torch.Tensor) -> torch.Tensor:
    """Deprecated: the CCM's `adjacency` buffer is C_hat normalised so (D^-1/2 A D^-1/2, ML-GCN's `gen_adj`)."""
    warnings.warn(
        "`normalize_adjacency` is deprecated and will be removed in faceinsight 0.3; read the CCM's `adjacency`",
        FutureWarning,
        stacklevel=2,
    )
    degree = adjacency.sum(1).clamp(min=1e-12).pow(-0.5)
    return degree.unsqueeze(1) * adjacency * degree.unsqueeze(0)


# --------------------------------------------------------------------------------------------------------------------
# Correlation Constraint Module
# --------------------------------------------------------------------------------------------------------------------
class FaceInsightCorrelationConstraintModule(nn.Module):
    """GCN over the label graph: T^l = rho(C_hat T^{l-1} W^{l-1}); the last layer gives one classifier per label.

    Node inputs T^0 are the mean token embeddings of one text prompt per label, taken from the language model's own
    embedding table (so they follow it when it is fine-tuned), or learned embeddings when no prompt ids are known.
    Logits are the pooled visual feature (projected image and parsing tokens) against those classifiers.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        num_labels = config.num_label_nodes
        hidden_size = config.text_config.hidden_size
        for name, value in self.compute_buffers().items():
            self.register_buffer(name, value, persistent=False)
        if config.label_prompt_token_ids is None:
            self.node_embeddings = nn.Parameter(torch.randn(num_labels, hidden_size) * 0.02)
        else:
            self.node_embeddings = None

        sizes = [hidden_size, *config.gcn_hidden_sizes, hidden_size]
        self.gcn_layers = nn.ModuleList(nn.Linear(sizes[i], sizes[i + 1], bias=False) for i in range(len(sizes) - 1))
        for layer in self.gcn_layers:
            layer.is_gcn_layer = True  # initialised like ML-GCN (scale 1/sqrt(fan-in)), not like an LM projection
        self.activation = nn.LeakyReLU(config.gcn_negative_slope)
        # word embeddings are tiny (std ~0.02) and visual tokens arbitrary in scale: both sides are normalised so
        # the classifiers and features start at unit scale and the logits at O(1) (1/sqrt(d) like attention)
        self.node_norm = nn.LayerNorm(hidden_size)
        self.feature_norm = nn.LayerNorm(hidden_size)
        self.logit_scale = hidden_size**-0.5
        self.label_bias = nn.Parameter(torch.zeros(num_labels))
        # parsing-guided read-out: one vector per (label, face region), zero at start (the plain CCM)
        self.region_readout = (
            nn.Parameter(torch.zeros(num_labels, config.parser_config.num_labels, hidden_size))
            if config.region_readout
            else None
        )
        # spatial read-out of the parsing tokens: one vector per (label, token position), zero at start
        self.parsing_readout = (
            nn.Parameter(torch.zeros(num_labels, config.parsing_seq_length, hidden_size))
            if config.parsing_readout
            else None
        )

    def compute_buffers(self) -> dict[str, torch.Tensor]:
        """Buffers derived from the config (not saved with the weights: the config is their single source)."""
        config, num_labels = self.config, self.config.num_label_nodes
        correlation = (
            torch.tensor(config.correlation_matrix, dtype=torch.float32)
            if config.correlation_matrix is not None
            else torch.eye(num_labels)
        )
        degree = correlation.sum(1).clamp(min=1e-12).pow(-0.5)  # D^-1/2 C_hat D^-1/2 (ML-GCN's `gen_adj`)
        buffers = {"adjacency": degree.unsqueeze(1) * correlation * degree.unsqueeze(0)}
        if config.label_prompt_token_ids is not None:
            longest = max(len(ids) for ids in config.label_prompt_token_ids)
            prompt_ids = torch.zeros(num_labels, longest, dtype=torch.long)
            prompt_mask = torch.zeros(num_labels, longest)
            for row, ids in enumerate(config.label_prompt_token_ids):
                prompt_ids[row, : len(ids)] = torch.tensor(ids)
                prompt_mask[row, : len(ids)] = 1.0
            buffers.update(prompt_ids=prompt_ids, prompt_mask=prompt_mask)
        return buffers

    def learn_node_inputs(self, initial: torch.Tensor):
        """Switch from prompt-based node inputs to learned ones, starting at `initial` (N, d) (after the LM's
        vocabulary lost the prompts' tokens); the caller clears `config.label_prompt_token_ids` to match."""
        self.node_embeddings = nn.Parameter(initial.to(self.label_bias.device))
        for name in ("prompt_ids", "prompt_mask"):
            if name in self._buffers:
                del self._buffers[name]

    def node_inputs(self, input_embeddings: nn.Module) -> torch.Tensor:
        if self.node_embeddings is not None:
            return self.node_embeddings
        token_embeddings = input_embeddings(self.prompt_ids)  # (N, L, d)
        mask = self.prompt_mask.to(token_embeddings.dtype).unsqueeze(-1)
        return (token_embeddings * mask).sum(1) / mask.sum(1)

    def label_classifiers(self, input_embeddings: nn.Module) -> torch.Tensor:
        nodes = self.node_norm(self.node_inputs(input_embeddings).to(self.gcn_layers[0].weight.dtype))
        adjacency = self.adjacency.to(nodes.dtype)
        for index, layer in enumerate(self.gcn_layers):
            nodes = adjacency @ layer(nodes)
            if index < len(self.gcn_layers) - 1:
                nodes = self.activation(nodes)
        return nodes  # (N, d)

    def forward(
        self,
        pooled_visual_features: torch.Tensor,
        input_embeddings: nn.Module,
        region_features: torch.Tensor | None = None,
        region_present: torch.Tensor | None = None,
        parsing_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (B, N): the pooled feature (B, d) against the GCN's classifiers, plus, with the region read-out,
        each present region's averaged image tokens (B, R, d) read by that label's vector for the region."""
        classifiers = self.label_classifiers(input_embeddings)
        features = self.feature_norm(pooled_visual_features.to(classifiers.dtype))
        logits = features @ classifiers.T
        if self.region_readout is not None and region_features is not None:
            regions = self.feature_norm(region_features.to(classifiers.dtype))
            per_region = torch.einsum("brd,nrd->bnr", regions, self.region_readout.to(classifiers.dtype))
            logits = logits + (per_region * region_present.unsqueeze(1).to(per_region.dtype)).sum(-1)
        if self.parsing_readout is not None and parsing_features is not None:
            tokens = self.feature_norm(parsing_features.to(classifiers.dtype))
            logits = logits + torch.einsum("btd,ntd->bn", tokens, self.parsing_readout.to(classifiers.dtype))
        return self.logit_scale * logits + self.label_bias


# --------------------------------------------------------------------------------------------------------------------
# Knowledge tokens
# --------------------------------------------------------------------------------------------------------------------
class FaceInsightKnowledgeTokens(nn.Module):
    """The knowledge head's evidence as tokens for the LM: one token per binary attribute, one per facet.

    A label node's identity c_i is what its label looks like to the LM: the mean embedding of its label prompt (the
    CCM's node inputs), less the mean over all nodes (the prompts' shared words), rescaled to the node input's own
    size, so that a question's words find their token. A binary attribute of probability p gives `c_i + (2p - 1) * evidence_i`; a facet gives
    `sum_v q_v * (c_v + evidence_v)`, q its values' probabilities renormalised over the facet (the expected value's
    identity). `evidence` (one learned vector per label node, all starting as one shared "present" direction, so
    what the LM learns to read for one attribute holds for the others) is the only parameter. The probabilities are
    detached: the head learns from its own losses, and the LM learns to read it.

    Grounded words (`config.ground_knowledge_words`): where the prompt names a knowledge token's label (a binary
    attribute's name, or any value of a facet: the options a question lists), the name's last token and every prompt
    token after it, up to the model's next answer or the next name, also carry that knowledge token. A question's
    answer then starts from a position that holds what the head perceives about what was asked, instead of having
    to find that token among the others.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config
        for name, value in self.compute_buffers().items():
            self.register_buffer(name, value, persistent=False)
        shared = torch.randn(1, config.text_config.hidden_size) * 0.02
        self.evidence = nn.Parameter(shared.repeat(config.num_label_nodes, 1))

    def compute_buffers(self) -> dict[str, torch.Tensor]:
        """`groups` (G, N): 1 where label node n belongs to token g (binary attributes, then facets); `binary` (N,):
        1 for binary attributes, 0 for facet values."""
        config = self.config
        num_binary, num_nodes = len(config.binary_attributes), config.num_label_nodes
        facets = list(config.facet_label_indices.values())
        groups = torch.zeros(num_binary + len(facets), num_nodes)
        groups[torch.arange(num_binary), torch.arange(num_binary)] = 1.0
        for row, indices in enumerate(facets):
            groups[num_binary + row, indices] = 1.0
        binary = torch.zeros(num_nodes)
        binary[:num_binary] = 1.0
        # each spelling of a token's names, its token ids from the last one back (-1 past its first token)
        spellings = [(g, ids) for g, names in enumerate(config.knowledge_word_token_ids or []) for ids in names]
        longest = max((len(ids) for _, ids in spellings), default=0)
        word_ids = torch.full((len(spellings), longest), -1, dtype=torch.long)
        word_token = torch.zeros(len(spellings), len(groups))
        for row, (token, ids) in enumerate(spellings):
            word_ids[row, : len(ids)] = torch.tensor(ids[::-1], dtype=torch.long)
            word_token[row, token] = 1.0
        return {"groups": groups, "binary": binary, "word_ids": word_ids, "word_token": word_token}

    def forward(self, face_label_logits: torch.Tensor, node_inputs: torch.Tensor) -> torch.Tensor:
        """(B, G, d) knowledge tokens from face-label logits (B, N) and the CCM's node inputs (N, d)."""
        dtype = self.evidence.dtype
        groups, binary = self.groups.to(dtype), self.binary.to(dtype)
        probabilities = torch.sigmoid(face_label_logits.detach().float()).to(dtype)
        facet_share = probabilities / ((probabilities @ groups.T) @ groups).clamp(min=1e-6)  # q within each facet
        identity_weight = binary + (1 - binary) * facet_share  # (B, N)
        evidence_weight = binary * (2 * probabilities - 1) + (1 - binary) * facet_share
        node_inputs = node_inputs.to(dtype)
        identity = node_inputs - node_inputs.mean(0, keepdim=True)  # (N, d): what tells the labels apart
        # at the scale of a node input (the shared prompt words made up most of it)
        node_rms = node_inputs.pow(2).mean(-1, keepdim=True).sqrt()
        identity = identity * (node_rms / identity.pow(2).mean(-1, keepdim=True).sqrt().clamp(min=1e-12))
        per_node = identity_weight.unsqueeze(-1) * identity + evidence_weight.unsqueeze(-1) * self.evidence
        return torch.einsum("gn,bnd->bgd", groups, per_node)

    def ground_words(
        self,
        input_ids: torch.LongTensor,
        image_index: torch.LongTensor,
        knowledge: torch.Tensor,
        answer_mask: torch.BoolTensor | None = None,
    ) -> torch.Tensor:
        """(B, T, d) to add to the prompt's embeddings. `image_index` (B, T): the image (row of `knowledge`, the
        knowledge tokens (N, G, d)) a position follows, -1 before any; `answer_mask` (B, T): the model's own answers
        (training: labels != -100), which generation writes without the image's outputs at hand, so they are never
        grounded and they end what a question named."""
        batch, length = input_ids.shape
        answer = torch.zeros_like(input_ids, dtype=torch.bool) if answer_mask is None else answer_mask.bool()
        ends = torch.ones(batch, length, self.word_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for back in range(self.word_ids.shape[1]):  # a spelling ends at t if its tokens stand at t - back, ...
            earlier = nn.functional.pad(input_ids, (back, 0), value=-1)[:, :length].unsqueeze(-1)
            expected = self.word_ids[:, back]
            ends &= (earlier == expected) | (expected < 0)
        named = (ends.to(self.word_token.dtype) @ self.word_token).clamp(max=1) * (~answer).unsqueeze(-1)
        # each prompt position reads what was named last before it, unless an answer came in between
        position = torch.arange(length, device=input_ids.device).expand(batch, length)
        event = torch.where((named.sum(-1) > 0) | answer, position, -1).cummax(1).values
        held = (event >= 0) & ~answer.gather(1, event.clamp(min=0)) & (image_index >= 0)
        named = named.gather(1, event.clamp(min=0).unsqueeze(-1).expand_as(named)) * held.unsqueeze(-1)
        images, tokens, width = knowledge.shape
        per_image = nn.functional.one_hot(image_index.clamp(min=0), images).to(named.dtype)  # (B, T, N)
        weights = (per_image.unsqueeze(-1) * named.unsqueeze(-2)).reshape(batch, length, images * tokens)
        return weights.to(knowledge.dtype) @ knowledge.reshape(images * tokens, width)


# --------------------------------------------------------------------------------------------------------------------
# Logical Constraint Module
# --------------------------------------------------------------------------------------------------------------------
class FaceInsightLogicalConstraintModule(nn.Module):
    """Rule-violation loss on predicted probabilities, and logic-consistent decisions."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        for name, value in self.compute_buffers().items():
            self.register_buffer(name, value, persistent=False)
        self.num_binary = len(config.binary_attributes)
        self.facet_indices = list(config.facet_label_indices.values())

    def compute_buffers(self) -> dict[str, torch.Tensor]:
        """Rule index pairs and facet membership, derived from the config (not saved with the weights)."""
        config = self.config
        index = {name: i for i, name in enumerate(config.label_names)}
        pairs = {
            kind: torch.tensor(
                [(index[r["a"]], index[r["b"]]) for r in config.all_logic_rules if r["type"] == kind], dtype=torch.long
            ).reshape(-1, 2)
            for kind in ("exclusion", "implication")
        }
        facet_membership = torch.zeros(len(config.categorical_facets), config.num_label_nodes)
        for row, indices in enumerate(config.facet_label_indices.values()):
            facet_membership[row, indices] = 1.0
        calibration = config.decision_calibration or {}
        scale = calibration.get("scale") or [1.0] * config.num_label_nodes
        bias = calibration.get("bias") or [0.0] * config.num_label_nodes
        return {
            "exclusions": pairs["exclusion"],
            "implications": pairs["implication"],
            "facet_membership": facet_membership,
            "calibration_scale": torch.tensor(scale, dtype=torch.float32),
            "calibration_bias": torch.tensor(bias, dtype=torch.float32),
        }

    def probabilities(self, face_label_logits: torch.Tensor) -> torch.Tensor:
        """The probabilities decisions are made from: sigmoid of the logits, calibrated where the config holds a
        `decision_calibration` (float32)."""
        logits = face_label_logits.float()
        return torch.sigmoid(
            logits * self.calibration_scale.to(logits.device) + self.calibration_bias.to(logits.device)
        )

    def loss(self, probabilities: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Mean violation over every rule and facet constraint: p_a p_b for exclusions, p_a (1 - p_b) for
        implications, (sum of a facet's value probabilities - 1)^2 for one-value-per-facet. `reduction="none"`
        gives one mean per image (B,)."""
        terms = []
        if len(self.exclusions):
            terms.append(probabilities[:, self.exclusions[:, 0]] * probabilities[:, self.exclusions[:, 1]])
        if len(self.implications):
            terms.append(probabilities[:, self.implications[:, 0]] * (1 - probabilities[:, self.implications[:, 1]]))
        if len(self.facet_membership):
            facet_mass = probabilities @ self.facet_membership.to(probabilities.dtype).T
            terms.append((facet_mass - 1.0) ** 2)
        if not terms:
            per_image = probabilities.sum(1) * 0.0
        else:
            per_image = torch.cat(terms, dim=1).mean(1)
        return per_image if reduction == "none" else per_image.mean()

    @torch.no_grad()
    def decide(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Logic-consistent 0/1 decisions (B x N): per image, the most probable assignment (each label node an
        independent Bernoulli with its predicted probability) with exactly one value per categorical facet that
        violates no exclusion and no implication, found exactly (`most_probable_consistent`). Where a group of
        rules contradicts itself, the group's most probable assignment breaking no exclusion is taken (and where
        even the exclusions contradict each other, its unconstrained decisions: argmax per facet, 0.5 per label)."""
        exclusions = [tuple(pair) for pair in self.exclusions.tolist()]
        implications = [tuple(pair) for pair in self.implications.tolist()]
        rows = probabilities.float().cpu().tolist()
        decided = [
            most_probable_consistent(row, self.num_binary, self.facet_indices, exclusions, implications) for row in rows
        ]
        return torch.tensor(decided, dtype=torch.bool, device=probabilities.device).reshape(probabilities.shape)


# --------------------------------------------------------------------------------------------------------------------
# Exact logic-consistent decisions
# --------------------------------------------------------------------------------------------------------------------
def _components(rules: list, unit_of: dict) -> list[list[int]]:
    """Groups of units tied together by rules (units in no rule are left out: their best option stands)."""
    group_of = {}
    for _, a, b in rules:
        ua, ub = unit_of[a], unit_of[b]
        merged = group_of.get(ua, {ua}) | group_of.get(ub, {ub})
        group_of.update(dict.fromkeys(merged, merged))
    return sorted({min(group): sorted(group) for group in group_of.values()}.values())


def _search(group: list[int], units: list, unit_of: dict, rules: list) -> dict | None:
    """Branch and bound over one group: {unit: option index} of the highest total log-probability that breaks no
    rule, or None when no assignment satisfies the group's rules. Exact: a branch is cut only when even the best
    option of every unit still open cannot beat the best complete assignment found."""
    degree = {u: 0 for u in group}
    for _, a, b in rules:
        for u in {unit_of[a], unit_of[b]}:
            if u in degree:
                degree[u] += 1
    order = sorted(group, key=lambda u: (-degree[u], u))
    position = {u: k for k, u in enumerate(order)}
    # the rules to check once a unit is set: those whose other end is already set (or in the same unit)
    checks = {u: [] for u in order}
    for kind, a, b in rules:
        ua, ub = unit_of[a], unit_of[b]
        if ua in position and ub in position:
            checks[max((ua, ub), key=position.get)].append((kind, a, b))
    bound = [0.0] * (len(order) + 1)
    for k in range(len(order) - 1, -1, -1):
        bound[k] = bound[k + 1] + units[order[k]][0][0]
    chosen, on_nodes = {}, set()
    best = {"score": -math.inf, "assignment": None}

    def visit(k, score):
        if score + bound[k] <= best["score"]:
            return
        if k == len(order):
            best["score"], best["assignment"] = score, dict(chosen)
            return
        u = order[k]
        for index, (option_score, nodes) in enumerate(units[u]):
            on_nodes.update(nodes)
            chosen[u] = index
            # an exclusion breaks when a and b are both on, an implication when a is on and b is off
            if not any(a in on_nodes and (b in on_nodes) == (kind == "exclusion") for kind, a, b in checks[u]):
                visit(k + 1, score + option_score)
            on_nodes.difference_update(nodes)
        del chosen[u]

    visit(0, 0.0)
    return best["assignment"]


def most_probable_consistent(
    probabilities: list, num_binary: int, facets: list, exclusions: list, implications: list
) -> list[bool]:
    """The most probable 0/1 assignment of the label nodes (binary labels first, then each facet's values) with one
    value per facet, no exclusion (a and b both on) and no implication (a on, b off) violated: the paper's
    logic-consistent decision, solved exactly per group of units the rules tie together.

    Decision units and their options: a binary label is a unit with two options (off, on), a categorical facet a
    unit with one option per value. Each option is (log-probability of the unit's nodes under it, nodes it turns
    on), options sorted best first; `unit_of` maps a node to its unit."""
    eps = 1e-6
    on = [math.log(min(max(q, eps), 1 - eps)) for q in probabilities]
    off = [math.log(min(max(1 - q, eps), 1 - eps)) for q in probabilities]
    units, unit_of = [], {}
    for i in range(num_binary):
        unit_of[i] = len(units)
        units.append(sorted([(off[i], ()), (on[i], (i,))], key=lambda option: -option[0]))
    for values in facets:
        everything_off = sum(off[v] for v in values)
        unit_of.update(dict.fromkeys(values, len(units)))
        units.append(sorted([(everything_off - off[v] + on[v], (v,)) for v in values], key=lambda o: -o[0]))
    rules = [("exclusion", a, b) for a, b in exclusions] + [("implication", a, b) for a, b in implications]
    choice = [0] * len(units)  # every unit's best option, kept where no rule reaches it
    exclusions_only = [rule for rule in rules if rule[0] == "exclusion"]
    for group in _components(rules, unit_of):
        # rules that contradict each other: keep the exclusions at least (then nothing) for this group
        assignment = _search(group, units, unit_of, rules) or _search(group, units, unit_of, exclusions_only)
        for u, index in (assignment or {}).items():
            choice[u] = index
    decisions = [False] * len(probabilities)
    for u, index in enumerate(choice):
        for node in units[u][index][1]:
            decisions[node] = True
    return decisions
