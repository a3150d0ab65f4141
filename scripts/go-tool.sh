#!/usr/bin/env bash
# go-tool.sh <name> <package> <version>: a Go-built tool, built once per machine and version with `go install` into
# ~/.cache/berth/go/<name>-<version> and linked into .tools/bin/<name>. A lock makes parallel callers (test files,
# clones, CI jobs) wait for one build instead of starting their own. A package given as ./<dir> is a main module of
# this repository, built from its own go.mod (the version then names its sources).
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1 package=$2 version=$3
dir="${XDG_CACHE_HOME:-$HOME/.cache}/berth/go/$name-$version"
binary=$(basename "$package")
mkdir -p "$(dirname "$dir")" .tools/bin
if [ ! -x "$dir/$binary" ]; then
  exec 9>"$dir.lock"
  flock 9
  if [ ! -x "$dir/$binary" ]; then
    command -v go >/dev/null 2>&1 || { echo "setup: Go is needed to build $name ($package@$version)" >&2; exit 1; }
    if [[ $package == ./* ]]; then build=(go -C "$package" install .); else build=(go install "$package@$version"); fi
    echo "setup: ${build[*]} (first time only)" >&2
    GOBIN="$dir" "${build[@]}" || { rm -rf "$dir"; echo "setup: could not build $name" >&2; exit 1; }
  fi
fi
[ "$(readlink ".tools/bin/$name" 2>/dev/null)" = "$dir/$binary" ] || ln -sfn "$dir/$binary" ".tools/bin/$name"
