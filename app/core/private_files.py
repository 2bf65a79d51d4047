"""Files for this user's eyes only: `var/` and what the app writes under it in development."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Give back `path`, created 0700 when missing, and so are its missing parents (e.g. var/
    under var/outbox); an existing folder keeps its mode."""
    if not path.is_dir():
        if not path.parent.exists():
            private_dir(path.parent)
        path.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
    return path


def write_private(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write `data` to `path` as a 0600 file; with `exclusive`, fail if it already exists."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    # Created 0600 by open itself, so no other user can open it between creation and a chmod.
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "wb") as handle:
        # A file left by an older version may be wider; narrow it before the data goes in.
        os.fchmod(fd, PRIVATE_FILE_MODE)
        handle.write(data)


def create_private(path: Path) -> None:
    """Create `path` as an empty 0600 file unless it exists (e.g. an SQLite database)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)
