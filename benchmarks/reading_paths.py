"""How far a reader travels through FaceInsight's own code along two paths, measured by running them.

1. parsing modality: `processor(images=..., text=...)` then the model's forward, up to the moment the merged
   embeddings reach the language model;
2. a training run: `faceinsight train` (stage 2, synthetic faces) up to the first backward pass;
3. the knowledge head: the training run's knowledge step (C_hat and rules from training labels into the config)
   and the head's logic-consistent decisions for one face (`predict_face_labels`).

For each path it prints the package's functions entered (module-level code and class bodies left out), the files
they are in, and the files a reader opens to read them: those plus the files that define the package's names those
functions use (constants, helpers, classes).
Run it against another checkout to compare: put a folder holding a `faceinsight` link to that checkout first on
PYTHONPATH (the script prints which package it measured).

    python benchmarks/reading_paths.py
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import sys
import tempfile
from pathlib import Path

import torch


class Stop(Exception):
    pass


def _ours(root: Path, filename: str) -> str | None:
    if filename.startswith("<"):
        return None
    path = Path(filename).resolve()
    if root in path.parents and path.parts[len(root.parts)] != "benchmarks":
        return str(path.relative_to(root))
    return None


def _definitions(root: Path) -> dict[str, str]:
    """Top-level names assigned in the package's files (constants) -> the file that assigns them."""
    found = {}
    for path in root.rglob("*.py"):
        relative = _ours(root, str(path))
        if relative is None or relative.startswith(("tests", "build")):
            continue
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            for target in targets:
                for name in ast.walk(target) if target is not None else ():
                    if isinstance(name, ast.Name):
                        found.setdefault(name.id, relative)
    return found


def _used_files(root: Path, frame, constants: dict[str, str]) -> set[str]:
    """The files defining the package's global names a function's code refers to."""
    files = set()
    for name in frame.f_code.co_names:
        if name not in frame.f_globals:
            continue
        value = frame.f_globals[name]
        source = getattr(value, "__file__", None) or getattr(
            sys.modules.get(getattr(value, "__module__", "")), "__file__", None
        )
        relative = _ours(root, source) if source else constants.get(name)
        if relative:
            files.add(relative)
    return files


@contextlib.contextmanager
def trace(root: Path, seen: list, opened: set):
    constants = _definitions(root)

    def profiler(frame, event, arg):
        if event == "call":
            code = frame.f_code
            relative = _ours(root, code.co_filename)
            if relative and code.co_flags & inspect.CO_OPTIMIZED and not code.co_name.startswith(("<", "__")):
                caller = frame.f_back
                # a hop: our code calling another of our functions (a function calling itself is no new place to read)
                followed = (
                    caller is not None
                    and _ours(root, caller.f_code.co_filename) is not None
                    and caller.f_code is not code
                )
                depth, outer = 0, frame
                while outer is not None:  # how many of our frames are on the stack: the chain a reader follows
                    depth += _ours(root, outer.f_code.co_filename) is not None
                    outer = outer.f_back
                seen.append((relative, code.co_qualname, followed, depth))
                opened.add(relative)
                opened.update(_used_files(root, frame, constants))

    sys.setprofile(profiler)
    try:
        yield
    except Stop:
        pass
    finally:
        sys.setprofile(None)


def summary(name: str, seen: list, opened: set) -> None:
    files = sorted({f for f, _, _, _ in seen})
    functions = list(dict.fromkeys((f, q) for f, q, _, _ in seen))
    hops = list(dict.fromkeys((f, q) for f, q, followed, _ in seen if followed))
    deepest = max(seen, key=lambda entry: entry[3])
    print(
        f"{name}: {len(functions)} functions of ours in {len(files)} files, {len(hops)} of them called from our own "
        f"code (the hops a reader follows; the rest are called by transformers, TRL or torch); {len(opened)} files "
        f"to read them; the deepest chain of our calls is {deepest[3]} long (to {deepest[1]})"
    )
    print(f"  files read: {', '.join(sorted(opened))}")
    for f in files:
        print(f"  {f}: " + ", ".join(q for g, q in functions if g == f))


def knowledge_head(root: Path, model, targets: list, inputs) -> None:
    """What `faceinsight train` does with the training labels, then one face's structured decisions."""
    knowledge_module = (root / "modeling" / "knowledge_faceinsight.py").read_text()
    if "def write_knowledge(" in knowledge_module:  # the knowledge step beside the knowledge modules
        from faceinsight.modeling.knowledge_faceinsight import write_knowledge

        write_knowledge(model, targets)
        model.predict_face_labels(inputs["pixel_values"])
    elif (root / "training" / "knowledge.py").read_text().count("def ") == 0:  # the knowledge step in train.py
        from faceinsight.training.train import FaceInsightScriptArguments, write_knowledge

        write_knowledge(model, targets, FaceInsightScriptArguments())
        model.predict_face_labels(inputs["pixel_values"])
    else:  # checkouts before: training/knowledge.py's functions, called one by one as the training run called them
        from faceinsight.training.knowledge import apply_knowledge, derive_knowledge, record_label_coverage

        record_label_coverage(model.config, targets)
        apply_knowledge(model, derive_knowledge(targets, model.config))
        model.predict_attributes(inputs["pixel_values"])


def main() -> None:
    import faceinsight
    from faceinsight.hub.build import build_tiny

    root = Path(faceinsight.__file__).resolve().parent
    print(f"package measured: {root}")
    model, processor = build_tiny(seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        from PIL import Image

        face = Image.open(root / "assets" / "astronaut_face.png")
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Smiling?"}]}]
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True)

        def stop(*args, **kwargs):
            raise Stop

        model.model.language_model.forward = stop
        seen, opened = [], set()
        with trace(root, seen, opened):
            model(**processor(images=[face], text=prompt, return_tensors="pt"))
        summary("parsing modality, image to tokens", seen, opened)

        inputs = processor(images=[face], text=prompt, return_tensors="pt")
        targets = [[1, 0] * (len(model.config.label_names) // 2) + [1] * (len(model.config.label_names) % 2)] * 30
        for module in ("faceinsight.training.train", "faceinsight.training.knowledge"):  # imports are not reading
            with contextlib.suppress(ImportError):
                importlib.import_module(module)
        seen, opened = [], set()
        with trace(root, seen, opened):
            knowledge_head(root, model, targets, inputs)
        summary("knowledge head, training labels to one face's decisions", seen, opened)

        original_backward = torch.Tensor.backward
        torch.Tensor.backward = lambda *a, **k: stop()
        try:
            if (root / "commands").is_dir():
                from faceinsight.commands import main as entry

                stage = ["--stage", "stage2"]
            else:  # checkouts before the commands package
                from faceinsight.cli import main as entry

                stage = ["--recipe", "stage2"]
            argv = ["train", "--model_name_or_path", tmp, "--output_dir", f"{tmp}/run", "--dataset_name"]
            argv += ["synthetic", "--num_train_faces", "16", "--num_eval_faces", "0", "--max_steps", "1", *stage]
            seen, opened = [], set()
            with trace(root, seen, opened):
                entry(argv)
            summary("training run, command to first backward", seen, opened)
        finally:
            torch.Tensor.backward = original_backward


if __name__ == "__main__":
    main()
