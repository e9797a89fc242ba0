#!/usr/bin/env bash
# Typechecks the committed HEAD in a temporary worktree (catches commits that depend on
# uncommitted files). Usage: scripts/check-head.sh
set -euo pipefail
top=$(git rev-parse --show-toplevel)
wt=$(mktemp -d)
git -C "$top" worktree add -q --detach "$wt" HEAD
ln -s "$top/node_modules" "$wt/node_modules"
trap 'git -C "$top" worktree remove --force "$wt"' EXIT
(cd "$wt" && npx tsc --noEmit && echo "HEAD typechecks")
