#!/usr/bin/env bash
# npm test: install what is missing, build, then run the unit and integration
# tests. Integration tests need root (they create namespaces, cgroups and mounts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/deps.sh --test
if [ "$(id -u)" != 0 ]; then
  echo "WARNING: not root: integration tests will be skipped" >&2
fi
npx tsc -p . --noEmit
exec npx ava "$@"
