"""Publishing: the dry run's checks, and the upload through huggingface_hub's real calls against a fake Hub that
answers at the HTTP boundary (httpx transport), recording what a real Hub would receive."""

import base64
import json
import shutil

import httpx2
import huggingface_hub
import pytest
import yaml

from faceinsight.commands import main
from faceinsight.hub.model_card import card_problems


class FakeHub:
    """The few Hub endpoints `create_repo`, `create_branch` and `upload_folder` use (small files uploaded inline)."""

    def __init__(self):
        self.requests, self.committed, self.branches, self.repos = [], {}, [], []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        self.requests.append((request.method, path, request.headers.get("authorization")))
        if path == "/api/validate-yaml":
            content = json.loads(request.content)["content"]
            metadata = yaml.safe_load(content.split("---")[1])
            missing = [key for key in ("library_name", "license") if key not in metadata]
            if missing:
                return httpx2.Response(400, json={"errors": [{"message": f"missing {k}"} for k in missing]})
            return httpx2.Response(200, json={"warnings": []})
        if path == "/api/repos/create":
            body = json.loads(request.content)
            self.repos.append(body)
            return httpx2.Response(200, json={"url": f"https://huggingface.co/{body['organization']}/{body['name']}"})
        if "/branch/" in path:
            self.branches.append(path.rsplit("/", 1)[1])
            return httpx2.Response(200, json={})
        if "/preupload/" in path:
            files = json.loads(request.content)["files"]
            return httpx2.Response(
                200,
                json={"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]},
            )
        if "/commit/" in path:
            for line in request.content.decode().splitlines():
                entry = json.loads(line)
                if entry["key"] == "file":
                    self.committed[entry["value"]["path"]] = base64.b64decode(entry["value"]["content"])
            self.revision = path.rsplit("/", 1)[1]
            return httpx2.Response(
                200,
                json={
                    "commitUrl": "https://huggingface.co/org/fi/commit/0123abcd",
                    "commitOid": "0123abcd" * 5,
                    "success": True,
                },
            )
        return httpx2.Response(404, json={"error": f"the fake Hub does not know {request.method} {path}"})


@pytest.fixture
def fake_hub():
    hub = FakeHub()
    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(hub)))
    yield hub
    huggingface_hub.set_client_factory(huggingface_hub.utils._http.default_client_factory)


def test_push_uploads_the_folder_in_one_commit(tiny_folder, tmp_path, fake_hub, capsys):
    folder = tmp_path / "model"
    shutil.copytree(tiny_folder, folder)
    (folder / "checkpoint-5").mkdir()
    (folder / "checkpoint-5" / "optimizer.safetensors").write_bytes(b"x")  # training leftovers are not uploaded
    assert (
        main(["push", str(folder), "--repo-id", "org/fi", "--token", "hf_test", "--private", "--revision", "v1"]) == 0
    )
    out = capsys.readouterr().out
    assert "pushed" in out and "0123abcd" in out
    assert fake_hub.repos == [{"name": "fi", "organization": "org", "visibility": "private", "type": "model"}]
    assert fake_hub.branches == ["v1"] and fake_hub.revision == "v1"
    expected = {p.name for p in folder.iterdir() if p.is_file()}
    assert set(fake_hub.committed) == expected
    assert fake_hub.committed["config.json"] == (folder / "config.json").read_bytes()
    assert fake_hub.committed["model.safetensors"] == (folder / "model.safetensors").read_bytes()
    writes = [(method, path, auth) for method, path, auth in fake_hub.requests if method == "POST"]
    assert [path for _, path, _ in writes] == [
        "/api/repos/create",
        "/api/models/org/fi/branch/v1",
        "/api/validate-yaml",
        "/api/models/org/fi/preupload/v1",
        "/api/models/org/fi/commit/v1",
    ]
    assert all(auth == "Bearer hf_test" for _, _, auth in writes)


def test_push_refuses_pickles_before_any_request(tiny_folder, tmp_path, fake_hub, capsys):
    folder = tmp_path / "model"
    shutil.copytree(tiny_folder, folder)
    (folder / "pytorch_model.bin").write_bytes(b"pickle")
    assert main(["push", str(folder), "--repo-id", "org/fi", "--token", "hf_test"]) == 2
    assert "pytorch_model.bin: pickled weights" in capsys.readouterr().err
    assert fake_hub.requests == []


def test_dry_run_passes_on_a_good_folder_and_names_each_problem(tiny_folder, tmp_path, capsys):
    assert main(["push", str(tiny_folder), "--repo-id", "org/fi", "--dry-run"]) == 0
    assert "is ready for org/fi" in capsys.readouterr().out

    broken = tmp_path / "broken"
    shutil.copytree(tiny_folder, broken)
    (broken / "modeling_faceinsight.py").unlink()
    (broken / "knowledge_faceinsight.py").unlink()
    (broken / "pytorch_model.bin").write_bytes(b"pickle")
    assert main(["push", str(broken), "--repo-id", "org/fi", "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "modeling_faceinsight.py is missing" in out and "knowledge_faceinsight.py is missing" in out
    assert "pytorch_model.bin: pickled weights" in out


def test_dry_run_fails_when_the_folder_does_not_load(tiny_folder, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_folder, broken)
    config = json.loads((broken / "config.json").read_text())
    config["auto_map"]["AutoConfig"] = "configuration_faceinsight.NoSuchConfig"
    (broken / "config.json").write_text(json.dumps(config))
    assert main(["push", str(broken), "--repo-id", "org/fi", "--dry-run"]) == 1
    assert "does not load in a fresh process" in capsys.readouterr().out


def test_card_problems_name_unfilled_cards(tmp_path):
    card = tmp_path / "README.md"
    card.write_text("---\nlicense: mit\n---\n# {model_name}\n## Results\nTODO\n")
    problems = card_problems(card)
    assert any("library_name" in p for p in problems) and any("{model_name}" in p for p in problems)
    assert any("'Intended use'" in p for p in problems) and any("TODO" in p for p in problems)
    assert card_problems(tmp_path / "absent.md") == ["absent.md is missing (the model card)"]


@pytest.mark.slow
def test_lora_adapter_publishes_alone_and_merges_back(tiny_folder, tmp_path, capsys):
    """stage 2 with --save_adapter: the adapter names its base by repo id; loaded on a local copy of that base it
    answers in a fresh process (PEFT, no faceinsight), passes the dry run, and merging it gives the same weights as
    the run's own merged folder. An adapter naming a local path is refused: a Hub user could not load it."""
    from safetensors.torch import load_file

    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--model_name_or_path",
                str(tiny_folder),
                "--output_dir",
                str(out),
                "--max_steps",
                "3",
                "--num_train_faces",
                "32",
                "--num_eval_faces",
                "0",
                "--per_device_train_batch_size",
                "4",
                "--learning_rate",
                "1e-2",
                "--save_adapter",
                "true",
                "--adapter_base",
                "org/fi-base",
                "--save_strategy",
                "no",
            ]
        )
        == 0
    )
    adapter = out / "adapter"
    names = {p.name for p in adapter.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "faceinsight_knowledge.json"} <= names
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == "org/fi-base"
    assert main(["push", str(adapter), "--repo-id", "org/fi-lora", "--dry-run", "--base-dir", str(tiny_folder)]) == 0

    from faceinsight.hub.validate import run_load_check

    report = run_load_check(adapter, base_dir=tiny_folder)
    assert report["lora_modules"] > 0 and report["knowledge_applied"] and report["faceinsight_imported"] == []

    local = tmp_path / "local_adapter"
    shutil.copytree(adapter, local)
    config = json.loads((local / "adapter_config.json").read_text())
    (local / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(tiny_folder)}))
    capsys.readouterr()
    assert main(["push", str(local), "--repo-id", "org/fi-lora", "--dry-run"]) == 1
    assert "base_model_name_or_path is a local path" in capsys.readouterr().out

    merged = tmp_path / "merged"
    assert main(["merge", str(adapter), "--output_dir", str(merged), "--base", str(tiny_folder)]) == 0
    ours, theirs = load_file(merged / "model.safetensors"), load_file(out / "model.safetensors")
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert (ours[key] - theirs[key]).abs().max() < 1e-5, key
    assert (
        json.loads((merged / "config.json").read_text())["logic_rules"]
        == json.loads((out / "config.json").read_text())["logic_rules"]
    )


def test_cards_meant_for_the_hub_name_no_local_path_and_get_the_repo_id(tiny_folder, tmp_path, capsys):
    folder = tmp_path / "model"
    shutil.copytree(tiny_folder, folder)
    assert "MODEL_DIR_OR_ID" in (folder / "README.md").read_text()  # as built: the placeholder push fills
    assert main(["push", str(folder), "--repo-id", "org/fi", "--dry-run"]) == 0
    assert "MODEL_DIR_OR_ID is filled with org/fi in the upload" in capsys.readouterr().out
    assert any("MODEL_DIR_OR_ID" in p for p in card_problems(folder / "README.md"))  # the folder's own card as is
    card = (folder / "README.md").read_text().replace("license:", f"base_model:\n- {tiny_folder}\nlicense:", 1)
    (folder / "README.md").write_text(card)
    assert any("base_model names a local path" in p for p in card_problems(folder / "README.md"))
