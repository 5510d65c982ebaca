#!/usr/bin/env bash
# Runs `npm test` as a newcomer's machine would: a clean copy of the tracked files, a user that
# is not root, CI unset, no redis-server and no chromium on the PATH. It proves that `npm test`
# needs nothing but Node. Run it as root (it drops to FRESH_USER, default nobody); .ci/run does.
# Extra arguments go to vitest (a subset of test files, say).
set -euo pipefail
cd "$(dirname "$0")/.."
user=${FRESH_USER:-nobody}
work=$(mktemp -d /tmp/tfm-fresh-XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"

# A PATH with every command of this one but redis-* and chromium*.
mkdir "$work/bin"
IFS=: read -ra dirs <<< "$PATH"
for dir in "${dirs[@]}"; do
  [ -d "$dir" ] || continue
  for cmd in "$dir"/*; do
    name=$(basename "$cmd")
    case "$name" in redis-* | chromium* | google-chrome* | chrome) continue ;; esac
    if [ -x "$cmd" ] && [ ! -e "$work/bin/$name" ]; then ln -s "$cmd" "$work/bin/$name"; fi
  done
done
for hidden in redis-server chromium; do
  if PATH="$work/bin" command -v "$hidden" >/dev/null; then echo "fresh-machine: $hidden is still on the PATH" >&2; exit 1; fi
done

# The tracked files (no dist/), and the installed node_modules, owned by the user.
mkdir "$work/repo" "$work/home"
git ls-files -z | xargs -0 cp --parents -t "$work/repo" 2>/dev/null || true
cp -a node_modules "$work/repo/"
chown -R "$user:$(id -gn "$user")" "$work/repo" "$work/home"

echo "fresh-machine: npm test as $user, CI unset, PATH without redis-server and chromium"
cd "$work/repo"
setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups \
  env -i PATH="$work/bin" HOME="$work/home" TMPDIR=/tmp LANG=C.UTF-8 \
  npm test --no-update-notifier -- "$@"
