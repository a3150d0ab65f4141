#!/usr/bin/env bash
# Installs what berth needs, idempotently; `npm start`, `npm test` and `npm run bench` run it first.
#  - node_modules, with `npm ci`, when missing or older than package-lock.json
#  - Debian packages: docker-registry (registries), skopeo (tests, bench), apache2-utils (htpasswd), openssl,
#    nginx (the HA endpoint)
#  - the Temporal CLI (dev server): `temporal` on PATH, else built once with `go install` and linked into .tools/bin
set -euo pipefail
cd "$(dirname "$0")/.."

lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules ] || [ "$(cat node_modules/.berth-lock-sha256 2>/dev/null)" != "$lock_hash" ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.berth-lock-sha256
fi

missing=()
for pair in docker-registry:docker-registry skopeo:skopeo htpasswd:apache2-utils openssl:openssl nginx:nginx; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: apt-get install ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: berth needs these Debian packages: ${missing[*]}" >&2
    echo "       install them as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

# The CLI build takes minutes the first time: keep one copy per machine under ~/.cache so that fresh clones (CI)
# link it instead of building again.
cli_version=v1.5.1
cache="${XDG_CACHE_HOME:-$HOME/.cache}/berth/temporal-cli"
if ! command -v temporal >/dev/null 2>&1 && [ ! -x .tools/bin/temporal ]; then
  mkdir -p .tools/bin
  if [ ! -x "$cache/temporal" ]; then
    if ! command -v go >/dev/null 2>&1; then
      echo "setup: the Temporal CLI is missing and Go is not installed to build it;" >&2
      echo "       install Go, or put a 'temporal' binary (CLI $cli_version) on PATH" >&2
      exit 1
    fi
    mkdir -p "$cache"
    # Later CLI tags carry a replace directive in go.mod and cannot be `go install`ed; v1.4.1 is the fallback.
    for version in $cli_version v1.4.1; do
      echo "setup: go install github.com/temporalio/cli/cmd/temporal@$version (first time only)" >&2
      if GOBIN="$cache" go install "github.com/temporalio/cli/cmd/temporal@$version"; then break; fi
    done
    [ -x "$cache/temporal" ] || { echo "setup: could not build the Temporal CLI" >&2; exit 1; }
  fi
  ln -sf "$cache/temporal" .tools/bin/temporal
fi
