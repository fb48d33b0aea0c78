#!/usr/bin/env bash
# npm start: install what is missing, build what changed, and serve the CRI on the default socket
# with the embedded default config, the busybox test image imported.
#
# On a built tree every step before the daemon is a check: deps.sh finds everything installed,
# build.sh finds no input newer than its last build, the test images' stamp is current, and the
# daemon's --import finds the image in the store (a digest check) in the same process that
# serves, so the socket answers within about 2 s of `npm start` (README, Quick start).
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/deps.sh
# The builder compares busybox's hash with its stamp itself; a stamp newer than busybox and the
# builder saves starting node for that (touched after each check, also one that found it current).
imgs=.test-tmp/images
if ! [ "$imgs/.stamp" -nt /bin/busybox ] || ! [ "$imgs/.stamp" -nt dist/hack/build-test-images.js ] || ! [ -e "$imgs/busybox-oci/index.json" ]; then
  node dist/hack/build-test-images.js "$imgs" >/dev/null
  touch "$imgs/.stamp"
fi
# exec: the daemon takes this shell's pid (for `npm start`, npm is still its parent).
exec bin/cri-mesos daemon --import "$imgs/busybox-oci" "$@"
