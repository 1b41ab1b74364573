"""Build one virtualenv per peer library under bench/.venvs/ (idempotent).

Each peer gets the Pillow release it can import: Flask-FS 0.6.1 still calls
``Image.ANTIALIAS`` (removed in Pillow 10), flask-fs2 0.8.2 pins Pillow 12.1.0 in its test extras.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

VENVS = Path(__file__).resolve().parent.parent / ".venvs"

# name -> pip requirements installed in that peer's own virtualenv
PEERS: dict[str, list[str]] = {
    "flask-fs-0.6.1": ["flask-fs==0.6.1", "pillow<10", "six", "flask"],
    "flask-fs2-0.8.2": ["flask-fs2==0.8.2", "pillow==12.1.0"],
    "sqlalchemy-file-0.7.0": ["sqlalchemy-file==0.7.0", "apache-libcloud", "sqlalchemy>=2", "pillow", "fasteners"],
}


def python_of(name: str) -> Path:
    """Interpreter path of the peer virtualenv ``name``."""
    return VENVS / name / "bin" / "python"


def ensure(name: str) -> Path:
    """Create the virtualenv of ``name`` and install its requirements unless already done."""
    python = python_of(name)
    stamp = VENVS / name / ".installed"
    wanted = "\n".join(PEERS[name])
    if stamp.exists() and stamp.read_text() == wanted:
        return python
    venv.EnvBuilder(with_pip=True, clear=True).create(VENVS / name)
    subprocess.run([python, "-m", "pip", "install", "-q", *PEERS[name]], check=True)
    stamp.write_text(wanted)
    return python


def main() -> None:
    for name in PEERS:
        print(f"{name}: {ensure(name)}", file=sys.stderr)


if __name__ == "__main__":
    main()
