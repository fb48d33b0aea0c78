#!/usr/bin/env bash
# npm run build: the native addon and launch helper, the generated API types, the TypeScript
# (dist/) and the bundle (dist/cri-mesos.cjs, and its V8 code cache), each step only when its inputs changed.
#
# Each step hashes its inputs (file contents and names, plus the tool versions that shape its
# output) and compares the hash with the stamp it wrote when it last succeeded; equal, and its
# outputs present, means nothing to do. Hashes, not mtimes: a git checkout or a copy changes
# mtimes, not contents. A step that fails writes no stamp and runs again next time. Before any
# hashing, one find answers the common case: no input is newer than the last complete build
# (dist/.stamps/all, whose mtime is the time that build started; api/generated, which the build
# itself writes, is left to the hashes). So on a built tree this costs
# about 50 ms instead of 20-40 s, and a fresh clone builds everything.
#
#   --force    rebuild everything (node-gyp rebuild, a full tsc), as npm run build:clean; also
#              for the one case the fast path cannot see: files replaced by older-dated ones
#              with other contents (e.g. rsync -t from another tree)
set -euo pipefail
cd "$(dirname "$0")/.."

force=0
[ "${1:-}" = --force ] && force=1
stamps=dist/.stamps
mkdir -p "$stamps"
outputs=(addon/build/Release/cri_mesos_native.node addon/build/Release/cri-mesos-launch api/generated/runtime-v1.ts
  dist/src/cli.js dist/hack/bundle.js dist/hack/build-test-images.js dist/cri-mesos.cjs dist/cri-mesos.cjs.v8cache dist/api/runtime-v1.json)
inputs=(src api hack test addon bin tsconfig.json package.json package-lock.json node_modules/.package-lock.json)
[ -e /usr/include/seccomp.h ] && inputs+=(/usr/include/seccomp.h)
toolchain="$(node -v) $(uname -m)"

if [ $force = 0 ] && [ "$(cat "$stamps/all" 2>/dev/null)" = "$toolchain" ] &&
  [ -z "$(find "${inputs[@]}" \( -path addon/build -o -path api/generated \) -prune -o -newer "$stamps/all" -print -quit)" ]; then
  missing=0
  for f in "${outputs[@]}"; do [ -e "$f" ] || missing=1; done
  [ $missing = 1 ] || exit 0
fi
# Its mtime is now: an input changed while the steps below run is newer than the stamp.
echo "$toolchain" >"$stamps/all.next"
rm -f "$stamps/all"

# Hash of the named files (contents and names) and of any extra text on stdin.
hash_of() {
  {
    cat
    if [ $# -gt 0 ]; then sha256sum -- "$@"; fi
  } | sha256sum | cut -c1-64
}
# Files under the given dirs whose names end in one of the given suffixes, in a fixed order.
files_in() {
  local dirs=() pat=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do dirs+=("$1"); shift; done
  shift
  for s in "$@"; do pat+=(-o -name "*$s"); done
  find "${dirs[@]}" -path addon/build -prune -o -type f \( -false "${pat[@]}" \) -print | LC_ALL=C sort
}
# up_to_date STAMP KEY OUTPUT...: the stamp holds KEY and every output exists.
up_to_date() {
  local stamp=$1 key=$2
  shift 2
  [ $force = 0 ] || return 1
  [ "$(cat "$stamp" 2>/dev/null)" = "$key" ] || return 1
  for f in "$@"; do [ -e "$f" ] || return 1; done
}

node_v=${toolchain% *}

# 1. The addon and the launch helper. node-gyp rebuild (configure + a clean build) when
#    binding.gyp or the toolchain changed, else node-gyp build: make recompiles only what changed
#    (its dependency files cover the headers in addon/common).
mapfile -t addon_files < <(files_in addon -- .cc .h .gyp)
seccomp_h=(); [ -e /usr/include/seccomp.h ] && seccomp_h=(/usr/include/seccomp.h)
configure_key=$(printf '%s\n' "$node_v" "$(uname -m)" | hash_of addon/binding.gyp node_modules/node-gyp/package.json node_modules/node-addon-api/package.json "${seccomp_h[@]}")
native_key=$(echo "$configure_key" | hash_of "${addon_files[@]}")
native_out=(addon/build/Release/cri_mesos_native.node addon/build/Release/cri-mesos-launch)
if ! up_to_date addon/build/.stamp-native "$native_key" "${native_out[@]}"; then
  if [ $force = 0 ] && up_to_date addon/build/.stamp-configure "$configure_key" addon/build/Makefile; then
    echo "build: addon (node-gyp build)"
    npx node-gyp build --nodedir=/usr --directory=addon --loglevel=warn
  else
    echo "build: addon (node-gyp rebuild)"
    npx node-gyp rebuild --nodedir=/usr --directory=addon --loglevel=warn
    echo "$configure_key" >addon/build/.stamp-configure
  fi
  echo "$native_key" >addon/build/.stamp-native
fi

# 2. api/generated from the proto (the generator's flags are in package.json, its version in the lockfile).
api_key=$(echo | hash_of api/runtime-v1.proto package.json package-lock.json)
if ! up_to_date "$stamps/api" "$api_key" api/generated/runtime-v1.ts; then
  echo "build: api types"
  npm run --silent gen:api >/dev/null
  echo "$api_key" >"$stamps/api"
fi

# 3. TypeScript, incrementally: tsc keeps what it learnt in dist/.tsbuildinfo and re-checks only
#    what a change reaches. (After gen:api: api/generated is one of its inputs.)
mapfile -t ts_files < <(files_in src api hack test -- .ts)
ts_key=$(echo "$node_v" | hash_of tsconfig.json package-lock.json "${ts_files[@]}")
if ! up_to_date "$stamps/ts" "$ts_key" dist/src/cli.js dist/hack/bundle.js dist/hack/build-test-images.js; then
  echo "build: typescript"
  [ $force = 0 ] || rm -f dist/.tsbuildinfo
  npx tsc -p . --incremental --tsBuildInfoFile dist/.tsbuildinfo
  echo "$ts_key" >"$stamps/ts"
fi

# 4. The bundle, its code cache and the proto descriptor: from tsc's output (ts_key), the dependencies, the proto
#    and bin/cri-mesos.
# bin/cri-mesos: its node flags are part of what the code cache is valid for
bundle_key=$(echo "$ts_key" | hash_of api/runtime-v1.proto bin/cri-mesos)
if ! up_to_date "$stamps/bundle" "$bundle_key" dist/cri-mesos.cjs dist/cri-mesos.cjs.v8cache dist/api/runtime-v1.json; then
  echo "build: bundle"
  rm -f dist/cri-mesos.cjs.v8cache
  node dist/hack/bundle.js
  # V8's code cache for it (src/boot.cts), made through bin/cri-mesos: under its node flags
  CRI_MESOS_WRITE_CODE_CACHE=1 bin/cri-mesos --version >/dev/null
  echo "$bundle_key" >"$stamps/bundle"
fi

mv "$stamps/all.next" "$stamps/all"
