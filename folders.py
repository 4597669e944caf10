"""The folders a command is given, checked before it reads or writes anything.

Where a model comes from (`check_model_source`): a local folder (named at once when missing, never sent to the Hub
to retry) or a Hub repository (one quick lookup; an unknown id or an unreachable Hub is one line).

Output folders that lose nothing (`output_dir`): a command writes into a folder that is new, empty, or its own
earlier output; it replaces its own earlier output only when asked (`overwrite=True`), and then only the entries it
writes; and it holds a lock on the folder while it runs, so a second run on the same folder is refused with the
first one named.

Two small files in the folder make this work:

* `.faceinsight-output.json`: which command created the folder (and when). Without it, a non-empty folder belongs
  to someone else and is never written into.
* `.faceinsight.lock`: the running command's pid, host and start time. A lock whose process is gone (a run killed
  with SIGKILL) is stale: it is reported and taken over.

Under `accelerate launch` / `torchrun` only the main process (RANK 0) checks and locks; the others write into the
folder the main process holds.
"""

from __future__ import annotations

import contextlib
import datetime
import fnmatch
import json
import os
import shutil
import socket
import sys
from pathlib import Path

MARKER = ".faceinsight-output.json"
LOCK = ".faceinsight.lock"


class OutputDirError(ValueError):
    """An output folder that cannot be used: the message names it and says why."""


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def owner(folder: Path) -> str | None:
    """The command that created `folder`, from its marker (None: not ours)."""
    return _read_json(folder / MARKER).get("command")


def _entries(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name not in (MARKER, LOCK)] if folder.is_dir() else []


def _refuse_locked(folder: Path):
    """Raise if a run holds `folder` now (a lock left by a process that is gone on this host does not count)."""
    holder = _read_json(folder / LOCK)
    if not holder:
        return
    if holder.get("host") == socket.gethostname() and not _process_alive(int(holder.get("pid", -1))):
        return
    raise OutputDirError(
        f"{folder} is in use by faceinsight {holder.get('command')} (pid {holder.get('pid')} on "
        f"{holder.get('host')}, since {holder.get('started')}); wait for it or choose another output folder"
    )


def _refuse_foreign(folder: Path, command: str, overwrite: bool, reuse: bool):
    """Raise unless `folder` is absent, empty, or `command`'s own earlier output that `overwrite` may replace (or,
    with `reuse`, continue: a resumed run)."""
    entries = _entries(folder)
    if not entries:
        return
    creator = owner(folder)
    if creator != command:
        by = f"by faceinsight {creator}" if creator else "not by faceinsight"
        raise OutputDirError(
            f"{folder} already holds {len(entries)} entries written {by}; choose a new or empty output folder "
            "(nothing there is touched)"
        )
    if not overwrite and not reuse:
        raise OutputDirError(
            f"{folder} holds an earlier faceinsight {command} output; pass --overwrite to replace it, or choose "
            "another output folder"
        )


def _clear_own(folder: Path, command: str, patterns: tuple[str, ...]):
    """Remove the entries of `command`'s earlier output that match `patterns`; name what is kept."""
    kept = []
    for entry in _entries(folder):
        if any(fnmatch.fnmatch(entry.name, pattern) for pattern in patterns):
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
        else:
            kept.append(entry.name)
    if kept:
        print(
            f"faceinsight {command}: kept {len(kept)} entries of {folder} it did not write: {', '.join(kept)}",
            file=sys.stderr,
        )


def _take_lock(folder: Path, command: str):
    lock = folder / LOCK
    _refuse_locked(folder)
    if lock.exists():
        stale = _read_json(lock)
        print(
            f"faceinsight {command}: {lock} was left by a run that is gone (pid {stale.get('pid')}, "
            f"faceinsight {stale.get('command')}); taking it over",
            file=sys.stderr,
        )
        lock.unlink()
    record = {
        "command": command,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
    }
    try:
        with open(lock, "x") as handle:  # O_EXCL: of two runs starting together, one wins
            json.dump(record, handle)
    except FileExistsError:
        raise OutputDirError(f"{folder} was just locked by another run; choose another output folder") from None


@contextlib.contextmanager
def output_dir(
    path: str | Path, command: str, overwrite: bool = False, reuse: bool = False, patterns: tuple[str, ...] = ("*",)
):
    """Hold `path` as `command`'s output folder for the duration of the block (see the module docstring).
    `overwrite`: replace `command`'s earlier output there (only the entries matching `patterns`, the ones `command`
    writes); `reuse`: keep writing into it (a resumed run)."""
    folder = Path(path)
    if os.environ.get("RANK", "0") != "0" or os.environ.get("LOCAL_RANK", "0") != "0":  # not the main process
        yield folder
        return
    if folder.exists() and not folder.is_dir():
        raise OutputDirError(f"{folder} exists and is not a folder")
    created = not folder.exists()
    if folder.is_dir():  # before anything is written there
        _refuse_locked(folder)
        _refuse_foreign(folder, command, overwrite, reuse)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _take_lock(folder, command)
    except PermissionError as error:
        raise OutputDirError(f"{folder} is not writable ({error.strerror})") from None
    try:
        _refuse_foreign(folder, command, overwrite, reuse)  # again, under the lock
        if overwrite:
            _clear_own(folder, command, patterns)
        if owner(folder) != command:
            created = datetime.datetime.now().isoformat(timespec="seconds")
            (folder / MARKER).write_text(json.dumps({"command": command, "created": created}) + "\n")
        yield folder
    except BaseException:
        if created and not _entries(folder):  # a run that failed before writing anything leaves no folder
            (folder / MARKER).unlink(missing_ok=True)
            (folder / LOCK).unlink(missing_ok=True)
            folder.rmdir()
        raise
    finally:
        (folder / LOCK).unlink(missing_ok=True)


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
