#!/usr/bin/env bash
# The whole test suite: lint, the tests (starting their own moto and Swift servers), and the docs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
.venv/bin/ruff check flask_fs tests bench examples tasks.py
.venv/bin/python -m pytest "$@"
.venv/bin/python -m sphinx -W --keep-going -q -b html docs docs/_build/html
.venv/bin/python -m sphinx -q -b doctest docs docs/_build/doctest
