#!/usr/bin/env bash
# The lab: local images (no registry is reachable here) and three containers that
# play an application host, a database host and a backup host.
#
#   tests/lab/lab.sh images   build what is missing: runbook-ops/bookworm:{base,systemd,app,db}
#   tests/lab/lab.sh up       images, then start (or reuse) the three lab hosts
#   tests/lab/lab.sh down     remove the lab hosts and their network
#   tests/lab/lab.sh status   one line per lab host
#
# The base image is a minimal Debian bookworm made by debootstrap from the apt mirror
# this machine already uses, then `docker import`ed; the others are `docker build`s
# FROM it. Every image carries a label with a hash of its inputs, so a second run
# that finds them current takes seconds, and a changed Dockerfile rebuilds.
#
# What these machines allow: --privileged fails, so systemd runs as PID 1 with
# CAP_SYS_ADMIN, tmpfs on /run and /run/lock and the host's cgroup v1 tree
# read-only. /proc/sys stays read-only inside (a role that tunes the kernel remounts
# it in its Molecule prepare). Docker sets the FORWARD policy to DROP, which only
# matters for traffic that is not between containers of one Docker network.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUTPUT=${RUNBOOK_OPS_TEST_OUTPUT:-$ROOT/tests/output}
REPO=${RUNBOOK_OPS_IMAGE_REPO:-runbook-ops/bookworm}
MIRROR=${RUNBOOK_OPS_DEBIAN_MIRROR:-}
NETWORK=runbook-lab
PREFIX=runbook-lab
LAB_PG_PASSWORD=lab-postgres
# The run options systemd needs here (the Molecule scenarios use the same).
SYSTEMD_RUN=(--cap-add SYS_ADMIN --tmpfs /run --tmpfs /run/lock
             -v /sys/fs/cgroup:/sys/fs/cgroup:ro --stop-signal SIGRTMIN+3)

say() { echo "lab: $*" >&2; }
die() { say "$*"; exit 1; }

label_of() {  # image -> its runbook.ops.inputs label, empty when there is no image
  docker image inspect -f '{{ index .Config.Labels "runbook.ops.inputs" }}' "$1" 2>/dev/null || true
}

mirror() {
  if [ -n "$MIRROR" ]; then echo "$MIRROR"; return; fi
  # The mirror apt already uses (deb822 or one-line sources), else Debian's CDN.
  local uri
  uri=$(grep -hoE '^URIs: *http[^ ]*/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 | sed 's/^URIs: *//') || true
  [ -n "$uri" ] || uri=$(grep -hoE '^deb +http[^ ]*/debian/? +bookworm ' /etc/apt/sources.list 2>/dev/null | head -n1 | awk '{print $2}') || true
  echo "${uri:-http://deb.debian.org/debian}"
}

BASE_PACKAGES=python3,python3-apt,sudo,procps,iproute2,ca-certificates,gzip,zstd,tar

build_base() {
  local image=$REPO:base want
  want=$(printf '%s\n' "bookworm minbase $BASE_PACKAGES $(mirror)" | sha256sum | cut -c1-16)
  if [ "$(label_of "$image")" = "$want" ]; then return; fi
  command -v debootstrap >/dev/null || {
    say "installing Debian's debootstrap"
    apt-get -o DPkg::Lock::Timeout=600 -y -q install debootstrap >>"$OUTPUT/apt.log" 2>&1 || {
      apt-get -o DPkg::Lock::Timeout=600 -q update >>"$OUTPUT/apt.log" 2>&1
      apt-get -o DPkg::Lock::Timeout=600 -y -q install debootstrap >>"$OUTPUT/apt.log" 2>&1; }
  }
  local rootfs
  rootfs=$(mktemp -d "$OUTPUT/lab-rootfs.XXXXXX")
  # shellcheck disable=SC2064  # expand now: the path is known now
  trap "rm -rf '$rootfs'" EXIT
  say "debootstrap bookworm from $(mirror) (log: $OUTPUT/debootstrap.log)"
  if ! debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$rootfs" "$(mirror)" \
      >"$OUTPUT/debootstrap.log" 2>&1; then
    tail -n 20 "$OUTPUT/debootstrap.log" >&2
    die "debootstrap failed"
  fi
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$(mirror)" "$(mirror)" \
    >"$rootfs/etc/apt/sources.list"
  # No recommends, no documentation: images stay small and builds quick.
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$rootfs/etc/apt/apt.conf.d/90runbook-lab"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  say "importing $image"
  tar -C "$rootfs" -c . | docker import \
    --change "LABEL runbook.ops.inputs=$want" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --message 'Debian bookworm minbase for runbook.ops (debootstrap)' - "$image" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
}

build_derived() {  # name base-image [extra files for the context...]
  local name=$1 base=$2; shift 2
  local image=$REPO:$name context want
  want=$( (cat "$HERE/images/$name"/*; for f in "$@"; do cat "$f"; done;
           docker image inspect -f '{{.Id}}' "$base") | sha256sum | cut -c1-16)
  if [ "$(label_of "$image")" = "$want" ]; then return; fi
  context=$(mktemp -d "$OUTPUT/lab-context.XXXXXX")
  cp "$HERE/images/$name"/* "$context/"
  for f in "$@"; do cp "$f" "$context/"; done
  say "building $image (log: $OUTPUT/docker-build-$name.log)"
  if ! docker build --build-arg "BASE=$base" --build-arg "PG_PASSWORD=$LAB_PG_PASSWORD" \
      --label "runbook.ops.inputs=$want" -t "$image" "$context" >"$OUTPUT/docker-build-$name.log" 2>&1; then
    rm -rf "$context"
    tail -n 30 "$OUTPUT/docker-build-$name.log" >&2
    die "docker build of $image failed"
  fi
  rm -rf "$context"
}

images() {
  mkdir -p "$OUTPUT"
  bash "$ROOT/tests/bin/ensure-docker.sh" || exit $?
  # One builder at a time (parallel test workers, make lab beside make test).
  exec 8>"$OUTPUT/.lab-images.lock"
  flock 8
  build_base
  build_derived systemd "$REPO:base"
  build_derived app "$REPO:systemd" "$ROOT/tools/health_service.py"
  build_derived db "$REPO:systemd"
  exec 8>&-
}

# ---- the lab hosts ------------------------------------------------------------------

HOSTS=(app:app db:db backup:systemd)

wait_booted() {  # container
  local state
  for _ in $(seq 1 60); do
    state=$(docker exec "$1" systemctl is-system-running 2>/dev/null || true)
    case "$state" in running|degraded) return 0 ;; esac
    sleep 1
  done
  docker exec "$1" systemctl --failed --no-pager >&2 || true
  die "$1 did not finish booting (systemctl is-system-running: ${state:-no answer})"
}

wait_ready() {  # role container
  case "$1" in
    app) check=(python3 -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:8080/health", timeout=2)') ;;
    db) check=(sh -c 'runuser -u postgres -- pg_isready -q && redis-cli ping | grep -q PONG') ;;
    *) return 0 ;;
  esac
  for _ in $(seq 1 60); do
    docker exec "$2" "${check[@]}" >/dev/null 2>&1 && return 0
    sleep 1
  done
  die "$2: its service did not answer (${check[*]})"
}

up() {
  images
  docker network inspect "$NETWORK" >/dev/null 2>&1 \
    || docker network create --label runbook.ops.lab=1 "$NETWORK" >/dev/null
  local entry role image name current
  for entry in "${HOSTS[@]}"; do
    role=${entry%%:*}; image=$REPO:${entry#*:}; name=$PREFIX-$role
    current=$(docker inspect -f '{{.State.Running}} {{.Image}}' "$name" 2>/dev/null || true)
    if [ "$current" = "true $(docker image inspect -f '{{.Id}}' "$image")" ]; then
      continue
    fi
    # Left over from an interrupted run, stopped, or built from an older image.
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker run -d --name "$name" --hostname "$name" --network "$NETWORK" \
      --label runbook.ops.lab=1 "${SYSTEMD_RUN[@]}" "$image" >/dev/null
  done
  for entry in "${HOSTS[@]}"; do
    role=${entry%%:*}; name=$PREFIX-$role
    wait_booted "$name"
    wait_ready "$role" "$name"
  done
  status
}

down() {
  local ids
  ids=$(docker ps -aq --filter label=runbook.ops.lab=1)
  # shellcheck disable=SC2086  # one id per word
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
  docker network rm "$NETWORK" >/dev/null 2>&1 || true
  say "lab removed"
}

status() {
  docker ps -a --filter label=runbook.ops.lab=1 --format '{{.Names}}\t{{.Status}}\t{{.Image}}'
}

case "${1:-}" in
  images) images ;;
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 images|up|down|status" >&2; exit 2 ;;
esac
