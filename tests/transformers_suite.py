"""transformers' own common model tests, taken at test time from the transformers source distribution on the
package index (the wheel does not ship them), never copied into this repository.

The sdist of transformers 5.24 ships `tests/test_modeling_common.py` and `tests/test_configuration_common.py` but
not three modules they import. Those are replaced by empty stand-ins, each for a stated reason:

* `exporters/test_export.py` (`ExportTesterMixin`, torch.export tests): not shipped, so not run here.
* `generation/test_utils.py` (`GenerationTesterMixin`): not shipped; the generation behaviours it would check run as
  our own tests in `test_transformers_contract.py` (greedy == assisted, eager == sdpa, cache names, beams).
* `utils/test_configuration_utils.py` (`config_common_kwargs`): only read for configs without sub-configs, which
  FaceInsight's is not.

A stand-in is written only where the sdist lacks the module, so a later sdist that ships them runs them.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import transformers

PACKAGE = "hf_common_tests"
SHIPPED = ("test_modeling_common.py", "test_configuration_common.py")
STAND_INS = {
    "exporters/test_export.py": "class ExportTesterMixin:\n    pass\n",
    "generation/test_utils.py": "class GenerationTesterMixin:\n    pass\n",
    "utils/test_configuration_utils.py": "config_common_kwargs = {}\n",
}


def cache_root() -> Path:
    default = Path.home() / ".cache" / "faceinsight" / "transformers-tests"
    return Path(os.environ.get("FACEINSIGHT_TRANSFORMERS_TESTS", default)) / transformers.__version__


def _download_sdist(folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
    command += [f"transformers=={transformers.__version__}", "-d", str(folder)]
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    (sdist,) = folder.glob("transformers-*.tar.gz")
    return sdist


def _extract(sdist: Path, package: Path):
    prefix = f"transformers-{transformers.__version__}/tests/"
    with tarfile.open(sdist) as archive:
        members = {m.name[len(prefix) :]: m for m in archive.getmembers() if m.name.startswith(prefix) and m.isfile()}
        for relative, member in members.items():
            if relative.endswith(".py"):
                target = package / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.extractfile(member).read())
    for relative, text in STAND_INS.items():
        target = package / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.write_text(text)
    for folder in [package, *(p for p in package.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()


def fetch() -> Path:
    """The folder holding the `hf_common_tests` package (downloaded once per transformers version)."""
    root = cache_root()
    package = root / PACKAGE
    if not all((package / name).exists() for name in SHIPPED):
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root) as scratch:
            staging = Path(scratch) / PACKAGE
            _extract(_download_sdist(Path(scratch)), staging)
            staging.replace(package)
    return root


def import_common(module: str):
    """Import `hf_common_tests.<module>` (e.g. "test_modeling_common") from the fetched sdist."""
    root = str(fetch())
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module(f"{PACKAGE}.{module}")
