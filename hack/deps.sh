#!/usr/bin/env bash
# Installs what cri-mesos needs on a fresh Debian 12 machine (as root), then
# the npm packages from the lockfile, then builds what changed (addon, API types, TypeScript, bundle).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v busybox >/dev/null 2>&1 || [ -x /bin/busybox ] || need+=(busybox-static)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v make >/dev/null 2>&1 || need+=(make)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# libseccomp compiles the seccomp filters (linked into the addon and the launch helper).
[ -e /usr/include/seccomp.h ] || need+=(libseccomp-dev)
if [ "${1:-}" = --test ]; then
  # Only the tests need these: a loopback registry, htpasswd (bcrypt) and openssl for its token auth,
  # and the zstd CLI to make zstd-compressed layers.
  [ -x /usr/bin/docker-registry ] || need+=(docker-registry)
  command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  command -v zstd >/dev/null 2>&1 || need+=(zstd)
  # CNI: Debian's plugins (in /usr/lib/cni) and iptables for portmap and ipMasq, used only inside
  # the network namespaces the tests make; nsenter (util-linux) enters them.
  [ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
  command -v iptables >/dev/null 2>&1 || need+=(iptables)
  # The docker containerizer's tests start a dockerd of their own (test/helpers/dockerd.ts);
  # Debian's docker.io (20.10) is not started by its postinst here.
  command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || need+=(docker.io)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 "${need[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# Only what changed since the last build (hack/build.sh); everything on a fresh tree.
bash hack/build.sh
