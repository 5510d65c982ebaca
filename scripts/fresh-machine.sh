#!/usr/bin/env bash
# Runs `npm test` as a newcomer's machine would: a clean copy of the tracked files, CI unset, and
# none of the system packages CI installs on the PATH (redis-server, chromium, sshd, sshfs,
# fusermount, faketime, clamd). It proves that `npm test` needs nothing but Node: every test that needs
# one of them, or root, skips and prints why (test/helpers/privileges.ts).
#
#   scripts/fresh-machine.sh [vitest args]            as a user that is not root (FRESH_USER, default nobody)
#   scripts/fresh-machine.sh --as-root [vitest args]  as root, as in a container or on a CI runner
#
# FRESH_NODE=<path of a node binary> makes it the `node` of that machine (npm runs on it too).
#
# Packages are hidden by the PATH, not removed: the tests look a command up on the PATH (and find
# libfaketime's package through its `faketime` command), so a PATH without them is a machine
# without them, and this one keeps them for the other CI steps. Run it as root (it drops to
# FRESH_USER unless --as-root); .ci/run runs both. Extra arguments go to vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
as_root=false
if [ "${1:-}" = --as-root ]; then as_root=true; shift; fi
user=${FRESH_USER:-nobody}
if $as_root; then user=root; fi
work=$(mktemp -d /tmp/tfm-fresh-XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"

# A PATH with every command of this one but those the system packages give.
hidden=(redis-server chromium sshd sshfs fusermount fusermount3 faketime clamd)
mkdir "$work/bin"
if [ -n "${FRESH_NODE:-}" ]; then ln -s "$FRESH_NODE" "$work/bin/node"; fi
IFS=: read -ra dirs <<< "$PATH"
for dir in "${dirs[@]}"; do
  [ -d "$dir" ] || continue
  for cmd in "$dir"/*; do
    name=$(basename "$cmd")
    case "$name" in redis-* | chromium* | google-chrome* | chrome | sshd | sshfs | fusermount* | faketime | clamd) continue ;; esac
    if [ -x "$cmd" ] && [ ! -e "$work/bin/$name" ]; then ln -s "$cmd" "$work/bin/$name"; fi
  done
done
for name in "${hidden[@]}"; do
  if PATH="$work/bin" command -v "$name" >/dev/null; then echo "fresh-machine: $name is still on the PATH" >&2; exit 1; fi
done

# The tracked files (no dist/), and the installed node_modules, owned by the user.
mkdir "$work/repo" "$work/home"
git ls-files -z | xargs -0 cp --parents -t "$work/repo" 2>/dev/null || true
cp -a node_modules "$work/repo/"
chown -R "$user:$(id -gn "$user")" "$work/repo" "$work/home"

echo "fresh-machine: npm test as $user on Node $("$work/bin/node" --version), CI unset, PATH without ${hidden[*]}"
cd "$work/repo"
env=(env -i PATH="$work/bin" HOME="$work/home" TMPDIR=/tmp LANG=C.UTF-8)
# The share of the long repeated tests' rounds (test/helpers/scale.ts), where CI asks for one.
if [ -n "${TEMPFILE_MANAGER_TEST_SCALE:-}" ]; then env+=(TEMPFILE_MANAGER_TEST_SCALE="$TEMPFILE_MANAGER_TEST_SCALE"); fi
if $as_root; then
  "${env[@]}" npm test --no-update-notifier -- "$@"
else
  setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups "${env[@]}" npm test --no-update-notifier -- "$@"
fi
