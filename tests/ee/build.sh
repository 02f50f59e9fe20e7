#!/usr/bin/env bash
# Build the runbook.ops execution environment (EE) with ansible-builder.
#
#   tests/ee/build.sh [debian]        the Debian EE that builds here: runbook-ops/ee:bookworm
#   tests/ee/build.sh debian --context  only `ansible-builder create` its build context (offline)
#   tests/ee/build.sh rpm             the production EE (execution-environment.yml); needs
#                                     quay.io/centos/centos:stream9, which cannot be pulled here
#   tests/ee/build.sh rpm --context   only `ansible-builder create` its build context (offline)
#   tests/ee/build.sh tarball         only the collection tarball tests/output/ee/runbook-ops.tar.gz
#
# The collection goes into the EE as the tarball `ansible-galaxy collection build` makes of
# the files git tracks or would track (no caches, no test output). Every image carries a
# label with a hash of its inputs (collection manifest, EE definition, base image), so a
# second run that finds the image current takes seconds. Prints the image name last.
# Exit 3: no container engine can run here (tests/bin/ensure-docker.sh).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# Fixed: both EE definitions name the tarball by this path.
OUTPUT=$ROOT/tests/output/ee
BIN=${RUNBOOK_OPS_BIN:-$ROOT/.venv/bin}
LAB_BASE=${RUNBOOK_OPS_IMAGE_REPO:-runbook-ops/bookworm}:base
EE_BASE=runbook-ops/ee-base:bookworm
EE_IMAGE=${RUNBOOK_OPS_EE_IMAGE:-runbook-ops/ee:bookworm}
TARBALL=$OUTPUT/runbook-ops.tar.gz

say() { echo "ee: $*" >&2; }
die() { say "$*"; exit 1; }

label_of() {  # image -> its runbook.ops.inputs label, empty when there is no image
  docker image inspect -f '{{ index .Config.Labels "runbook.ops.inputs" }}' "$1" 2>/dev/null || true
}

# The collection as ansible-galaxy builds it from the files git knows (tracked, or new and
# not ignored), so that caches and test output never reach the image; tests, Molecule
# scenarios and benchmarks stay out too (the EE runs playbooks, not tests), so that
# editing a test does not rebuild the EE.
tarball() {
  local src
  mkdir -p "$OUTPUT"
  src=$(mktemp -d "$OUTPUT/src.XXXXXX")
  # shellcheck disable=SC2064  # expand now: the path is known now
  trap "rm -rf '$src' '$src.dist'" EXIT
  local file
  while IFS= read -r -d '' file; do
    case "$file" in tests/*|molecule/*|bench/*|.ci/*) continue ;; esac
    [ -e "$ROOT/$file" ] && printf '%s\0' "$file"
  done < <(git -C "$ROOT" ls-files -co --exclude-standard -z) \
    | tar -C "$ROOT" --null -T - -cf - | tar -C "$src" -xf -
  "$BIN/ansible-galaxy" collection build --force --output-path "$src.dist" "$src" >"$OUTPUT/collection-build.log" 2>&1 \
    || { cat "$OUTPUT/collection-build.log" >&2; die "ansible-galaxy collection build failed"; }
  mv "$src".dist/runbook-ops-*.tar.gz "$TARBALL.new"
  mv "$TARBALL.new" "$TARBALL"
  rm -rf "$src" "$src.dist"
  trap - EXIT
}

# Hash of what the collection holds: MANIFEST.json carries the checksum of FILES.json,
# which carries every file's checksum (the tarball itself has build-time mtimes).
collection_hash() {
  tar -xzOf "$TARBALL" MANIFEST.json | sha256sum | cut -c1-16
}

engine() {
  local rc=0
  bash "$ROOT/tests/bin/ensure-docker.sh" || rc=$?
  [ "$rc" = 0 ] || exit "$rc"
}

build_ee_base() {
  local want context
  if ! docker image inspect "$LAB_BASE" >/dev/null 2>&1; then
    say "building the lab's debootstrap base image first (tests/lab/lab.sh images)"
    bash "$ROOT/tests/lab/lab.sh" images
  fi
  want=$( (cat "$HERE/base/Dockerfile" "$HERE/base/apt-dnf" "$ROOT/requirements.txt";
           cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true
           docker image inspect -f '{{.Id}}' "$LAB_BASE") | sha256sum | cut -c1-16)
  if [ "$(label_of "$EE_BASE")" = "$want" ]; then return; fi
  context=$(mktemp -d "$OUTPUT/base-context.XXXXXX")
  cp "$HERE/base/Dockerfile" "$HERE/base/apt-dnf" "$ROOT/requirements.txt" "$context/"
  # The machine's local CAs (a TLS-inspecting proxy's, say): pip in the image needs them.
  mkdir -p "$context/local-ca"
  cp /usr/local/share/ca-certificates/*.crt "$context/local-ca/" 2>/dev/null || true
  say "building $EE_BASE (log: $OUTPUT/docker-build-ee-base.log)"
  if ! docker build --build-arg "BASE=$LAB_BASE" --label "runbook.ops.inputs=$want" \
      -t "$EE_BASE" "$context" >"$OUTPUT/docker-build-ee-base.log" 2>&1; then
    rm -rf "$context"
    tail -n 30 "$OUTPUT/docker-build-ee-base.log" >&2
    die "docker build of $EE_BASE failed"
  fi
  rm -rf "$context"
}

# One builder at a time (parallel test workers, make ee beside make test): every mode
# writes the same tarball.
lock() {
  mkdir -p "$OUTPUT"
  exec 7>"$OUTPUT/.ee.lock"
  flock 7
}

build_debian() {
  local want context=$OUTPUT/context-debian
  if [ "${1:-}" = --context ]; then
    # Its own directory: a build running beside it keeps its context.
    context=$OUTPUT/context-debian-create
    lock
    tarball
    rm -rf "$context"
    (cd "$HERE" && "$BIN/ansible-builder" create -f execution-environment.yml -c "$context" -v 1) >&2
    echo "$context"
    return
  fi
  engine
  lock
  build_ee_base
  tarball
  want=$( (collection_hash; cat "$HERE/execution-environment.yml";
           docker image inspect -f '{{.Id}}' "$EE_BASE") | sha256sum | cut -c1-16)
  if [ "$(label_of "$EE_IMAGE")" != "$want" ]; then
    say "ansible-builder build of $EE_IMAGE (log: $OUTPUT/ansible-builder-debian.log)"
    rm -rf "$context"
    if ! (cd "$HERE" && "$BIN/ansible-builder" build -f execution-environment.yml -c "$context" \
          --container-runtime docker -t "$EE_IMAGE" -v 3 \
          --extra-build-cli-args "--label runbook.ops.inputs=$want") \
          >"$OUTPUT/ansible-builder-debian.log" 2>&1; then
      tail -n 40 "$OUTPUT/ansible-builder-debian.log" >&2
      die "ansible-builder build of $EE_IMAGE failed"
    fi
  fi
  exec 7>&-
  echo "$EE_IMAGE"
}

build_rpm() {
  local context=$OUTPUT/context-rpm
  lock
  tarball
  rm -rf "$context"
  if [ "${1:-}" = --context ]; then
    (cd "$ROOT" && "$BIN/ansible-builder" create -f execution-environment.yml -c "$context" -v 1) >&2
    echo "$context"
    return
  fi
  engine
  (cd "$ROOT" && "$BIN/ansible-builder" build -f execution-environment.yml -c "$context" \
     --container-runtime docker -v 3)
}

case "${1:-debian}" in
  debian) build_debian "${2:-}" ;;
  rpm) build_rpm "${2:-}" ;;
  tarball) lock; tarball; echo "$TARBALL" ;;
  *) echo "usage: $0 [debian [--context]|rpm [--context]|tarball]" >&2; exit 2 ;;
esac
