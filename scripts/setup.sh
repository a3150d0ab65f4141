#!/usr/bin/env bash
# Installs what berth needs, idempotently; `npm start`, `npm test` and `npm run bench` run it first.
#  - node_modules, with `npm ci`, when missing or installed from another package-lock.json (its hash is kept)
#  - Debian packages: docker-registry (registries), skopeo (tests, bench), apache2-utils (htpasswd), openssl,
#    nginx (the HA endpoint), docker.io (the docker provider's engine; dockerd is started when needed by
#    embedded/docker-engine.ts) and mmdebstrap (the host image's rootfs, built once by embedded/host-image.ts)
#  - the Temporal CLI (dev server): `temporal` on PATH, else built once with `go install` and linked into .tools/bin
#  - with `test` or `bench`: crane, regctl, regsync, Distribution v3's registry and the Temporal server, built once
#    with `go install` (scripts/go-tool.sh), the Temporal server's PostgreSQL schema (.tools/temporal-schema), and
#    Debian's postgresql (the harness runs its own cluster, never the system service)
#  - with `test` (npm test): moto_server (PyPI moto[server]: the EC2 API of the aws provider's tests), in a venv
#    linked into .tools/moto
set -euo pipefail
cd "$(dirname "$0")/.."

lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules ] || [ "$(cat node_modules/.berth-lock-sha256 2>/dev/null)" != "$lock_hash" ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.berth-lock-sha256
fi

missing=()
for pair in docker-registry:docker-registry skopeo:skopeo htpasswd:apache2-utils openssl:openssl nginx:nginx dockerd:docker.io mmdebstrap:mmdebstrap; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
# PostgreSQL (tests and benches of the production path run their own cluster): Debian keeps its server programs in
# /usr/lib/postgresql/<major>/bin, off PATH.
if [ "${1:-}" = test ] || [ "${1:-}" = bench ]; then
  compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || command -v postgres >/dev/null 2>&1 || missing+=(postgresql)
fi
# moto's venv (npm test only) needs ensurepip, which Debian ships apart from python3.
[ "${1:-}" != test ] || python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
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

[ "${1:-}" = test ] || [ "${1:-}" = bench ] || exit 0
# Go-built tools of the tests and benchmarks (scripts/go-tool.sh: built once per machine and version under
# ~/.cache/berth/go, linked into .tools/bin; a cold build of the Temporal server takes minutes):
#  - crane, regctl, regsync: peer copiers for the benchmarks and independent checks in the tests
#  - registry: CNCF Distribution v3, the second registry implementation the copier is held to
#  - ggcr-registry: go-containerregistry's registry with the Referrers API on (`crane registry serve` leaves it
#    off), from test/harness/ggcr-registry, rebuilt when its sources change
#  - temporal-server, temporal-sql-tool: the real Temporal server and its schema tool (the production-path tests)
bash scripts/go-tool.sh crane github.com/google/go-containerregistry/cmd/crane v0.22.1
bash scripts/go-tool.sh regctl github.com/regclient/regclient/cmd/regctl v0.11.7
bash scripts/go-tool.sh regsync github.com/regclient/regclient/cmd/regsync v0.11.7
bash scripts/go-tool.sh registry github.com/distribution/distribution/v3/cmd/registry v3.1.2
bash scripts/go-tool.sh ggcr-registry ./test/harness/ggcr-registry "src-$(cat test/harness/ggcr-registry/{go.mod,go.sum,main.go} | sha256sum | cut -c1-12)"
bash scripts/go-tool.sh temporal-server go.temporal.io/server/cmd/server v1.29.1
bash scripts/go-tool.sh temporal-sql-tool go.temporal.io/server/cmd/tools/sql v1.29.1
# The schema files the SQL tool applies come with the server's module (downloaded again if the cache was cleaned).
if command -v go >/dev/null 2>&1; then
  temporal_module="$(go env GOMODCACHE)/go.temporal.io/server@v1.29.1"
  [ -d "$temporal_module/schema" ] || go mod download go.temporal.io/server@v1.29.1
  [ "$(readlink .tools/temporal-schema 2>/dev/null)" = "$temporal_module/schema" ] || ln -sfn "$temporal_module/schema" .tools/temporal-schema
fi
[ "${1:-}" = test ] || exit 0

# A venv is tied to its path: build it once per machine and version under ~/.cache, as the CLI above, and link it.
moto_version=5.2.1
moto_venv="${XDG_CACHE_HOME:-$HOME/.cache}/berth/moto-$moto_version"
if [ ! -x "$moto_venv/bin/moto_server" ]; then
  echo "setup: pip install moto[server]==$moto_version into $moto_venv (first time only)" >&2
  rm -rf "$moto_venv"
  python3 -m venv "$moto_venv"
  "$moto_venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$moto_version" \
    || { rm -rf "$moto_venv"; echo "setup: could not install moto[server]" >&2; exit 1; }
fi
if [ "$(readlink .tools/moto 2>/dev/null)" != "$moto_venv" ]; then
  rm -rf .tools/moto
  mkdir -p .tools && ln -s "$moto_venv" .tools/moto
fi
