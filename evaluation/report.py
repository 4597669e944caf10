"""Reports of scored predictions: a text table (one row per model or variant) and pictures (confusion matrices,
per-attribute accuracy bars, variants with their 95% intervals)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TASK_ORDER = ("attributes", "age", "gender", "race", "expression")


def _cell(task: dict | None) -> str:
    if task is None:
        return "-"
    value = task["mean_accuracy"] if "mean_accuracy" in task else task["accuracy"]
    low, high = task["ci95"]
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def task_table(scores: dict[str, dict]) -> str:
    """Accuracy with 95% interval per task, one row per entry of `scores` (name -> `score_predictions` report)."""
    tasks = [t for t in TASK_ORDER if any(t in s["tasks"] for s in scores.values())]
    header = ["", *tasks, "logic violations"]
    rows = [
        [name, *(_cell(s["tasks"].get(t)) for t in tasks), f"{s['logic_violation_rate']:.3f}"]
        for name, s in scores.items()
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def paired_table(comparisons: dict[str, dict]) -> str:
    """Generated answers less structured decisions on the same questions, per task: the difference with its paired
    95% interval, and the share of questions answered alike; one row per model (name -> `paired_comparison`)."""
    tasks = [t for t in TASK_ORDER if any(t in c for c in comparisons.values())]
    rows = [["", *tasks]]
    for name, comparison in comparisons.items():
        cells = []
        for task in tasks:
            if task not in comparison:
                cells.append("-")
                continue
            c = comparison[task]
            low, high = c["difference_ci95"]
            cells.append(f"{c['difference']:+.3f} [{low:+.3f}, {high:+.3f}] alike {c['agreement']:.2f}")
        rows.append([name, *cells])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: str | Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    _pyplot().close(figure)
    return Path(path)


def plot_confusion_matrix(task: dict, title: str, path: str | Path) -> Path:
    """Rows: true value; columns: predicted value, plus 'none' for answers that named no single value."""
    plt = _pyplot()
    matrix = np.asarray(task["confusion_matrix"], dtype=float)
    labels = task["labels"]
    shares = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    # wide enough for the two-line title even with two classes (it used to be cut off)
    figure, axes = plt.subplots(figsize=(max(3.6, 1.0 + 0.75 * len(labels)), 1.4 + 0.65 * len(labels)))
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(labels) + 1), [*labels, "none"], rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for (row, column), count in np.ndenumerate(matrix):
        if count:
            axes.text(
                column,
                row,
                int(count),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if shares[row, column] > 0.5 else "black",
            )
    axes.set_title(f"{title}\naccuracy {task['accuracy']:.3f} on {task['n']}", fontsize=10)
    return _save(figure, path)


def plot_attribute_accuracy(scores: dict[str, dict], path: str | Path, title: str = "accuracy per attribute") -> Path:
    """Grouped horizontal bars: one group per attribute, one bar per entry of `scores`."""
    plt = _pyplot()
    names = sorted({a for s in scores.values() for a in s["tasks"].get("attributes", {}).get("per_attribute", {})})
    figure, axes = plt.subplots(figsize=(7, 0.3 * len(names) * max(1, len(scores)) / 1.5 + 1.5))
    height = 0.8 / max(1, len(scores))
    for k, (label, score) in enumerate(scores.items()):
        per_attribute = score["tasks"].get("attributes", {}).get("per_attribute", {})
        values = [per_attribute.get(n, np.nan) for n in names]
        axes.barh(np.arange(len(names)) + k * height, values, height=height, label=label)
    axes.set_yticks(np.arange(len(names)) + 0.4 - height / 2, names, fontsize=8)
    axes.set_xlim(0, 1)
    axes.invert_yaxis()
    axes.set_xlabel("accuracy")
    axes.legend(fontsize=8, loc="lower right")
    axes.set_title(title)
    return _save(figure, path)


def plot_variants(scores: dict[str, dict], path: str | Path, title: str = "accuracy with 95% intervals") -> Path:
    """One panel per task, one bar per variant, with its 95% interval; a last panel with each variant's
    logic-violation rate (share of faces whose predictions break a rule)."""
    plt = _pyplot()
    tasks = [t for t in TASK_ORDER if any(t in s["tasks"] for s in scores.values())]
    colours = plt.cm.tab10(np.arange(len(scores)))
    figure, axes = plt.subplots(1, len(tasks) + 1, figsize=(2.6 * (len(tasks) + 1), 3.4), squeeze=False)
    for axis, task in zip(axes[0], tasks):
        values, errors = [], [[], []]
        for score in scores.values():
            entry = score["tasks"].get(task)
            value = np.nan if entry is None else entry.get("mean_accuracy", entry.get("accuracy"))
            low, high = (np.nan, np.nan) if entry is None else entry["ci95"]
            values.append(value)
            errors[0].append(max(0.0, value - low))  # a bootstrap interval need not be centred on the estimate
            errors[1].append(max(0.0, high - value))
        axis.bar(range(len(values)), values, yerr=errors, capsize=3, color=colours)
        _variant_axis(axis, scores, task, "mean accuracy" if task == "attributes" else "accuracy")
    violations = axes[0][-1]
    violations.bar(range(len(scores)), [s["logic_violation_rate"] for s in scores.values()], color=colours)
    _variant_axis(violations, scores, "logic violations", "share of faces breaking a rule")
    figure.suptitle(title)
    return _save(figure, path)


def _variant_axis(axis, scores: dict, title: str, ylabel: str):
    axis.set_xticks(range(len(scores)), list(scores), rotation=45, ha="right", fontsize=8)
    axis.set_title(title)
    axis.set_ylabel(ylabel, fontsize=8)
    axis.set_ylim(0, 1)
