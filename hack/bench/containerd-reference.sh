#!/usr/bin/env bash
# Debian's containerd 1.6 (+ runc) as a reference CRI runtime for hack/bench.
#
#   containerd-reference.sh start [IMAGES_DIR]   install (apt) if missing, write the config, start containerd in the
#                                                background, import the pause + busybox images; prints the socket path
#                                                as the last line of stdout
#   containerd-reference.sh stop                 stop it by the PID recorded at start, kill the shims it started
#                                                (found by their -address <our socket>), unmount, delete root and state
#
# Everything lives in its own places, so nothing collides with another containerd:
#   /run/cri-mesos-bench-containerd/        socket, config, pid file, log, state, runc root
#   /var/lib/cri-mesos-bench-containerd/    root (content store, snapshots)
# IMAGES_DIR must hold busybox.tar and pause.tar (hack/bench/images.ts); without it they are built into the state dir.
#
# By default no CNI: an empty conf dir, for host-network pods (NamespaceOption network NODE) only.
# A second instance (the benchmark's cni workload) gets, through the environment (the same for start and stop):
#   CRI_BENCH_CONTAINERD_RUN, CRI_BENCH_CONTAINERD_ROOT   its own state and root instead of the two above
#   CRI_BENCH_CNI_CONF_DIR, CRI_BENCH_CNI_BIN_DIR         the CNI conf dir and plugin dir containerd uses
#   CRI_BENCH_NETNS                                       a network namespace file (/run/netns/<name>) that containerd
#                                                         is started in (nsenter --net), so it, its shims and the CNI
#                                                         plugins (bridge, iptables rules, IPs) live there, never on
#                                                         the host's network; the caller makes and deletes it
# The pods' own namespaces are pinned under the state dir (netns_mounts_under_state_dir), so stop unmounts them too.
set -euo pipefail

NAME=cri-mesos-bench-containerd
RUN=${CRI_BENCH_CONTAINERD_RUN:-/run/$NAME}
ROOT=${CRI_BENCH_CONTAINERD_ROOT:-/var/lib/$NAME}
SOCK=$RUN/containerd.sock
PIDFILE=$RUN/containerd.pid
CGROUPS_CREATED=$RUN/cgroups-created
CNI_CONF_DIR=${CRI_BENCH_CNI_CONF_DIR:-$RUN/cni-conf}
CNI_BIN_DIR=${CRI_BENCH_CNI_BIN_DIR:-$RUN/cni-bin}
NETNS=${CRI_BENCH_NETNS:-}
PAUSE_IMAGE=cri-mesos.test/pause:bench
HERE=$(cd "$(dirname "$0")" && pwd)

log() { echo "containerd-reference: $*" >&2; }

install() {
  if command -v containerd >/dev/null && command -v runc >/dev/null && command -v ctr >/dev/null; then return; fi
  log "installing containerd + runc from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends containerd runc >&2 ||
    { DEBIAN_FRONTEND=noninteractive apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends containerd runc >&2; }
}

write_config() {
  mkdir -p "$CNI_CONF_DIR" "$CNI_BIN_DIR" "$ROOT"
  cat >"$RUN/config.toml" <<EOF
version = 2
root = "$ROOT"
state = "$RUN/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[debug]
  address = ""
  level = "warn"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Without CAP_SYS_RESOURCE runc cannot give the pause container oom_score_adj -998 (platform-probe.md)
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_apparmor = true
  stats_collect_period = 10
  # pod network namespaces under the state dir (not /run/netns), so stop finds and removes them
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    # by default empty: no CNI, host-network pods only
    conf_dir = "$CNI_CONF_DIR"
    bin_dir = "$CNI_BIN_DIR"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$RUN/runc"
        SystemdCgroup = false
EOF
}

# containerd's default cgroups path for CRI pods without cgroup_parent is /k8s.io/<id> in every v1 hierarchy.
# Remember which of those parents did not exist before, so stop can remove them (only if empty).
record_cgroups() {
  : >"$CGROUPS_CREATED"
  for h in /sys/fs/cgroup/*/; do
    [ -d "$h" ] || continue
    [ -e "${h}k8s.io" ] || echo "${h}k8s.io" >>"$CGROUPS_CREATED"
  done
}

start() {
  local images=${1:-}
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    log "already running (pid $(cat "$PIDFILE"))"
    echo "$SOCK"
    return
  fi
  install
  mkdir -p "$RUN"
  write_config
  record_cgroups
  if [ -z "$images" ]; then
    images=$RUN/images
    (cd "$HERE/../.." && npx tsx hack/bench/images.ts "$images" >/dev/null)
  fi
  # Its own session: a Ctrl-C in the terminal must not kill it before the benchmark has removed its pods.
  # (Without job control the background child is no group leader, so setsid execs in place: $! is containerd;
  # nsenter execs too.)
  local in_netns=()
  if [ -n "$NETNS" ]; then
    [ -e "$NETNS" ] || { log "no network namespace $NETNS"; exit 1; }
    in_netns=(nsenter "--net=$NETNS" --)
  fi
  setsid "${in_netns[@]}" containerd --config "$RUN/config.toml" >"$RUN/containerd.log" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 100); do
    if [ -S "$SOCK" ] && ctr -a "$SOCK" version >/dev/null 2>&1; then break; fi
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      log "containerd exited:"; tail -20 "$RUN/containerd.log" >&2; exit 1
    fi
    sleep 0.1
  done
  ctr -a "$SOCK" version >/dev/null
  for t in pause busybox; do
    ctr -a "$SOCK" -n k8s.io images import "$images/$t.tar" >&2
  done
  log "containerd $(containerd --version | awk '{print $3}') running, pid $(cat "$PIDFILE"), socket $SOCK${NETNS:+, network namespace $NETNS, CNI conf $CNI_CONF_DIR}"
  echo "$SOCK"
}

stop() {
  if [ -f "$PIDFILE" ]; then
    local pid
    pid=$(cat "$PIDFILE")
    # Only that PID, and only if it still is our containerd (the pid may have been reused).
    if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--config $RUN/config.toml"; then
      kill -TERM "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" || true
    fi
    rm -f "$PIDFILE"
  fi
  # Shims our containerd started (normally gone once every pod was removed): their cmdline has -address <our socket>.
  local p
  for p in /proc/[0-9]*; do
    [ -r "$p/cmdline" ] || continue
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "^[^ ]*containerd-shim[^ ]* .*-address $SOCK "; then
      log "killing leftover shim ${p#/proc/}"
      kill -KILL "${p#/proc/}" 2>/dev/null || true
    fi
  done
  sleep 0.2
  # Container processes whose shim is gone: they sit in the per-container cgroups under the k8s.io parents this
  # script created (never in a k8s.io that existed before). Freeze, SIGKILL, thaw.
  if [ -f "$CGROUPS_CREATED" ]; then
    local fz=/sys/fs/cgroup/freezer/k8s.io
    if grep -qx "$fz" "$CGROUPS_CREATED" && [ -d "$fz" ]; then
      local d pids
      for d in "$fz"/*/; do
        [ -f "$d/cgroup.procs" ] || continue
        pids=$(cat "$d/cgroup.procs")
        [ -n "$pids" ] || continue
        log "killing leftover container processes in $d: $(echo $pids)"
        echo FROZEN >"$d/freezer.state" 2>/dev/null || true
        kill -KILL $pids 2>/dev/null || true
        echo THAWED >"$d/freezer.state" 2>/dev/null || true
      done
      sleep 0.2
    fi
  fi
  # Unmount whatever is left under our root/state (deepest first), then delete them.
  awk -v r="$ROOT/" -v s="$RUN/" '$5 ~ "^" r || $5 ~ "^" s {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
  if [ -f "$CGROUPS_CREATED" ]; then
    while read -r cg; do
      # leftover per-container cgroups first (only empty ones can go), then the parent
      find "$cg" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
      rmdir "$cg" 2>/dev/null || true
    done <"$CGROUPS_CREATED"
  fi
  rm -rf "$ROOT" "$RUN"
  log "stopped and removed $RUN and $ROOT"
}

case "${1:-}" in
  start) start "${2:-}" ;;
  stop) stop ;;
  socket) echo "$SOCK" ;;
  *) echo "usage: $0 start [IMAGES_DIR] | stop | socket" >&2; exit 2 ;;
esac
