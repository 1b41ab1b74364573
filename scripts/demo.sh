#!/usr/bin/env bash
# Run the example app on http://127.0.0.1:5000 (local files; set FS_* variables for other backends).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
exec .venv/bin/flask --app examples.gallery.app run --host "${HOST:-127.0.0.1}" --port "${PORT:-5000}" "$@"
