#!/usr/bin/env bash
# Make a Docker engine answer on this machine and build the local test image
# the docker_container tests use.  No registry is reachable here, so the image
# is imported from a tarball of Debian's busybox-static, not pulled.
#
#   tests/bin/ensure-docker.sh          # engine + image; a second run takes seconds
#
# Installs Debian's docker.io when there is no dockerd (a /usr/local/bin/docker
# client alone is not an engine), starts dockerd in the background when no engine
# answers (there is no systemd here), and waits until `docker info` answers.
# Exits 0 when the engine answers and the image exists; 1 with a reason otherwise;
# 3 when the engine cannot be started here at all (not root and no sudo).
set -euo pipefail

IMAGE=${RUNBOOK_OPS_TEST_IMAGE:-runbook-ops/busybox:test}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUTPUT=${RUNBOOK_OPS_TEST_OUTPUT:-$ROOT/tests/output}
LOG=${DOCKERD_LOG:-$OUTPUT/dockerd.log}
WAIT=${DOCKERD_WAIT_SECONDS:-90}
APT=(apt-get -o DPkg::Lock::Timeout=600 -y -q)

say() { echo "ensure-docker: $*" >&2; }

mkdir -p "$OUTPUT"
# Parallel test workers call this at the same time: one at a time.
exec 9>"$OUTPUT/.ensure-docker.lock"
flock 9

SUDO=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    NOT_ROOT=1
  fi
fi

engine_answers() { timeout 20 docker info >/dev/null 2>&1; }

apt_install() {
  if ! DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" "${APT[@]}" install "$@" >>"$OUTPUT/apt.log" 2>&1; then
    "${SUDO[@]}" "${APT[@]}" update >>"$OUTPUT/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" "${APT[@]}" install "$@" >>"$OUTPUT/apt.log" 2>&1
  fi
}

if ! command -v docker >/dev/null || ! engine_answers; then
  if [ -n "${NOT_ROOT:-}" ]; then
    say "no Docker engine answers and this user is neither root nor has password-less sudo"
    exit 3
  fi
  if ! command -v dockerd >/dev/null; then
    say "installing Debian's docker.io (log: $OUTPUT/apt.log)"
    apt_install docker.io
  fi
  if ! engine_answers; then
    say "starting dockerd (log: $LOG)"
    # setsid: dockerd outlives this script and the test run that called it
    "${SUDO[@]}" setsid nohup dockerd >>"$LOG" 2>&1 </dev/null 9>&- &
    pid=$!
    for _ in $(seq 1 "$WAIT"); do
      engine_answers && break
      if ! kill -0 "$pid" 2>/dev/null && ! pgrep -x dockerd >/dev/null; then
        say "dockerd exited; last lines of $LOG:"
        tail -n 20 "$LOG" >&2
        exit 1
      fi
      sleep 1
    done
    if ! engine_answers; then
      say "dockerd did not answer within ${WAIT}s; last lines of $LOG:"
      tail -n 20 "$LOG" >&2
      exit 1
    fi
  fi
fi

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  exit 0
fi

BUSYBOX=/bin/busybox
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed"; then
  say "installing Debian's busybox-static"
  apt_install busybox-static
fi
ldd "$BUSYBOX" >/dev/null 2>&1 && { say "$BUSYBOX is not static"; exit 1; }

ROOTFS=$(mktemp -d)
trap 'rm -rf "$ROOTFS"' EXIT
mkdir -p "$ROOTFS"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root}
chmod 1777 "$ROOTFS/tmp"
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ -e "$ROOTFS/bin/$applet" ] || ln -s busybox "$ROOTFS/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$ROOTFS/etc/passwd"
echo 'root:x:0:' >"$ROOTFS/etc/group"
say "importing $IMAGE"
tar -C "$ROOTFS" -c . | docker import \
  --change 'ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin' \
  --change 'CMD ["/bin/sh"]' \
  --message 'busybox-static for runbook.ops tests' - "$IMAGE" >/dev/null
docker run --rm "$IMAGE" true
say "built $IMAGE"
