#!/usr/bin/env bash
# npm start: install what is missing, build, import the busybox test image,
# and serve the CRI on the default socket with the embedded default config.
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/deps.sh
node dist/hack/build-test-images.js .test-tmp/images >/dev/null
bin/cri-mesos images import .test-tmp/images/busybox-oci "$@" || true
exec bin/cri-mesos daemon "$@"
