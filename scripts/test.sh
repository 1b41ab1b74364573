#!/usr/bin/env bash
# The whole test suite: lint, the tests (starting their own moto and Swift servers), and the docs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
.venv/bin/ruff check flask_fs tests bench examples tasks.py
# The gallery's browser test drives Debian's Chromium (never a downloaded one); without it, it is skipped.
command -v chromium >/dev/null || { [ "$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || echo "chromium could not be installed: browser tests will be skipped"
# The SQLAlchemy tests also run on a PostgreSQL server of their own, from Debian's packages.
[ -x /usr/lib/postgresql/15/bin/initdb ] || { [ "$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; } || echo "postgresql could not be installed: the PostgreSQL variants of the SQLAlchemy tests will be skipped"
# The jobs tests run RQ against Debian's redis-server; without it, they are skipped.
command -v redis-server >/dev/null || { [ "$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; } || echo "redis-server could not be installed: RQ tests will be skipped"
.venv/bin/python -m pytest "$@"
.venv/bin/python -m sphinx -W --keep-going -q -b html docs docs/_build/html
.venv/bin/python -m sphinx -q -b doctest docs docs/_build/doctest
