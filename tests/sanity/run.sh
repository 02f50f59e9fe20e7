#!/usr/bin/env bash
# ansible-test sanity for runbook.ops, without Docker and without Galaxy.
#
# ansible-test wants the collection at .../ansible_collections/<namespace>/<name>/, so this
# copies the collection's files (tracked, plus untracked files that .gitignore does not
# exclude) into such a tree under tests/output/ and runs the sanity tests there with
# --venv: each test's requirements are pip-installed (from PyPI) into virtual environments
# kept, with pip's download cache, under tests/output/ as well. The first run takes a minute
# or two, later runs reuse them. `make clean` (rm -rf tests/output) starts over.
#
# The controller Python is the project's .venv (3.11). The multi-version tests (compile,
# import) also run on every other Python 3.8-3.13 found, because modules and module_utils
# run on the managed hosts' Python; versions not installed are skipped.
#
# Usage: tests/sanity/run.sh [ansible-test sanity arguments, e.g. --test pep8]
# Environment:
#   SANITY_PYTHON=3.11  run the multi-version tests on this version only (quicker)
#   SANITY_HOME=DIR     where the sanity venvs and pip cache live (tests/output/sanity-home)
# Exits non-zero when any test fails. Ignore files: tests/sanity/ignore-2.*.txt (kept empty).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"

venv_bin="$repo/.venv/bin"
if [ -x "$venv_bin/ansible-test" ]; then
  ansible_test="$venv_bin/ansible-test"
  ansible_test_python="$venv_bin/python"
  PATH="$venv_bin:$PATH"
else
  ansible_test=$(command -v ansible-test) || { echo "ansible-test not found: run 'make venv'" >&2; exit 2; }
  ansible_test_python=$(head -1 "$ansible_test" | sed 's/^#! *//')
fi

namespace=$(sed -n 's/^namespace: *//p' galaxy.yml | tr -d "\"' ")
name=$(sed -n 's/^name: *//p' galaxy.yml | tr -d "\"' ")
work="$repo/tests/output/sanity-tree"
dest="$work/ansible_collections/$namespace/$name"
home=${SANITY_HOME:-$repo/tests/output/sanity-home}
# Sanity venvs live at $home/.ansible/test/venv/<test>/<python>/<hash>/; pip-installed entry
# points fail when their shebang passes Linux's 127-character limit, so keep the path short.
if [ "${#home}" -gt 60 ]; then
  home=$HOME
fi
mkdir -p "$dest" "$home"
# pip in those venvs should see the same user configuration (mirrors, certificates) as yours.
for conf in .config/pip/pip.conf .pip/pip.conf; do
  if [ "$home" != "$HOME" ] && [ -f "$HOME/$conf" ] && ! cmp -s "$HOME/$conf" "$home/$conf"; then
    mkdir -p "$(dirname "$home/$conf")"
    cp "$HOME/$conf" "$home/$conf"
  fi
done

# ansible-test bootstraps pip in each venv with a get-pip.py from ci-files.testing.ansible.com,
# which is not reachable here; give it get_pip.py (ensurepip, then pip from PyPI) instead.
pip_version=$("$ansible_test_python" - <<'PY' 2>/dev/null || echo 24.2
from types import SimpleNamespace
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(SimpleNamespace(version='3.11'))['pip'])
PY
)
get_pip_cache="$home/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if ! cmp -s "$repo/tests/sanity/get_pip.py" "$get_pip_cache"; then
  mkdir -p "$(dirname "$get_pip_cache")"
  cp "$repo/tests/sanity/get_pip.py" "$get_pip_cache"
fi

# Refresh the copy: drop everything but ansible-test's own output (it keeps its delegation
# venv in tests/output/.tmp) and the throwaway .git, then copy the current files in.
find "$dest" -mindepth 1 -maxdepth 1 ! -name tests ! -name .git -exec rm -rf {} +
if [ -d "$dest/tests" ]; then
  find "$dest/tests" -mindepth 1 -maxdepth 1 ! -name output -exec rm -rf {} +
fi
git ls-files -co --exclude-standard -z \
  | grep -zvE '^(\.venv|\.state|\.collections|tests/output)(/|$)' \
  | while IFS= read -r -d '' f; do if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi; done \
  | tar --null --no-recursion -T - -cf - \
  | tar -xf - -C "$dest"
# ansible-test lists a collection's files with git when it finds a .git (here it would find
# this checkout's, which ignores tests/output); a throwaway repository of the copy's own,
# never committed to, makes it list exactly the copied files (untracked, not ignored).
if [ ! -d "$dest/.git" ]; then
  git -C "$dest" init -q
fi

args=(sanity --venv --color "${SANITY_COLOR:-auto}")
if [ -n "${SANITY_PYTHON:-}" ]; then
  args+=(--python "$SANITY_PYTHON")
elif command -v pyenv >/dev/null 2>&1; then
  # pyenv's shims answer only for the selected version (and ansible-test does not pass
  # PYENV_VERSION on): put every installed interpreter's own bin directory on PATH instead,
  # the current one first, so that python3.8 ... python3.13 all resolve.
  pyenv_root=$(pyenv root)
  for v in $(pyenv version-name) $(pyenv versions --bare); do
    case ":$PATH:" in
      *":$pyenv_root/versions/$v/bin:"*) ;;
      *) PATH="$PATH:$pyenv_root/versions/$v/bin" ;;
    esac
  done
  PATH="$venv_bin:$(printf '%s' "$PATH" | tr ':' '\n' | grep -vx "$pyenv_root/shims" | paste -sd: -)"
fi
export PATH

cd "$dest"
status=0
HOME="$home" "$ansible_test" "${args[@]}" "$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "ansible-test sanity failed (exit $status); the tree it tested is $dest" >&2
fi
exit "$status"
