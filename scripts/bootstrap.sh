#!/usr/bin/env bash
# Create .venv (Python >= 3.11) and install flask_fs with its test and docs extras, once per
# change of pyproject.toml. Sourced by demo.sh and test.sh; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

python=""
for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        python=$candidate
        break
    fi
done
[ -n "$python" ] || { echo "flask_fs needs Python 3.11 or newer" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
stamp=.venv/.flask-fs-installed
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip uninstall --quiet -y flask-fs 2>/dev/null || true  # the distribution's former name
    .venv/bin/python -m pip install --quiet -e '.[dev]'
    echo "$wanted" > "$stamp"
fi
