"""Where a model comes from, checked before anything loads it: a local folder (named at once when missing, never sent
to the Hub to retry) or a Hub repository (one quick lookup; an unknown id or an unreachable Hub is one line)."""

from __future__ import annotations

import os
from pathlib import Path


def looks_local(name: str) -> bool:
    """A name only a local path would have: absolute, relative with ./ or ../, ~, a trailing slash, or more than
    one slash (a Hub id is NAME or ORG/NAME)."""
    return name.startswith(("/", "./", "../", "~")) or name.endswith("/") or name.count("/") > 1


def check_model_source(name: str, flag: str) -> None:
    """Raise (FileNotFoundError/ValueError naming `flag` and `name`) unless `name` is a model folder here or a
    repository on the Hub."""
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{flag} {name} is a file; expected a model folder or a Hub repo id")
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise FileNotFoundError(f"{flag} {name} is not a model folder (it has no config.json)")
        return
    if looks_local(name):
        raise FileNotFoundError(f"{flag} {name}: no such folder")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise ValueError(f"{flag} {name} is not a folder here, and the Hub is switched off (HF_HUB_OFFLINE)")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        HfApi().model_info(name, timeout=10)
    except GatedRepoError:
        raise ValueError(f"{flag} {name} is a gated Hub repository: accept its terms and log in") from None
    except RepositoryNotFoundError:
        raise ValueError(f"{flag} {name}: no such folder here, and no such model on the Hub") from None
    except Exception as error:  # noqa: BLE001 - any network failure is the same finding for the user
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(f"{flag} {name} is not a folder here, and the Hub cannot be reached ({reason})") from None
