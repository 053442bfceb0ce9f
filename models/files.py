"""Writing files so readers never see half of one, and reading the project's JSON files with one
clear sentence when they are missing or broken."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from models.cli import UserError


def atomic_write(path: str | os.PathLike, write: Any) -> None:
    """Call ``write(tmp_path)`` and rename the result onto ``path``, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes owner-only files; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_json(path: str | os.PathLike, what: str, missing_hint: str, error: type[UserError] = UserError) -> Any:
    """The parsed contents of ``path``; raises ``error`` naming ``what`` and the file when it is
    missing (with ``missing_hint``, the command that makes it) or not JSON."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist ({missing_hint})")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{what} {path} is not valid JSON (truncated?)") from exc
