#!/bin/sh
# The berth image's entrypoint: the first argument is the role, the rest goes to it.
#   api                                         the HTTP API (api/main.ts)
#   worker [--idc a,b] [--endpoint g] [--no-main] [--no-idc]   a worker process (workers/main.ts)
# Either role with --check: validate berth.yaml and the flags, say what would run, start nothing.
set -eu
cd "$(dirname "$0")/.."
role="${1:-}"
[ $# -gt 0 ] && shift
case "$role" in
  api) exec node --import tsx api/main.ts "$@" ;;
  worker) exec node --import tsx workers/main.ts "$@" ;;
  *)
    echo "usage: berth api | berth worker [--idc a,b] [--endpoint group] [--no-main] [--no-idc] (either with --check)" >&2
    exit 64
    ;;
esac
