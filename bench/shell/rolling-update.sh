#!/usr/bin/env bash
# The rolling update `npm run bench -- deploy` measures berth against, done with the docker CLI over SSH: berth's
# deployService steps for maxUnavailable 1, maxSurge 0 (one machine per batch, one replica out of service at a
# time), one machine after another. On each machine: log in to the registry and pull the image by digest (berth
# pulls with the credentials in the request); then per replica: stop (10 s grace) and remove the old container,
# start the new one with its port published, and wait for GET /healthz (10 tries, 1 s timeout, 500 ms apart).
#
# usage: rolling-update.sh <key file> <registry host> <repository> <version> <digest> <user@address:port>...
# REGISTRY_USER and REGISTRY_PASSWORD name the registry's account; SSH_CONTROL is a directory for the SSH sockets.
set -euo pipefail
key=$1 registry=$2 repository=$3 version=$4 digest=$5
shift 5
replicas=2
ref="$registry/$repository@$digest"

for target in "$@"; do
  dest=${target%:*} port=${target##*:} address=${dest#*@}
  # One SSH connection per machine for all its commands, as berth keeps one session per machine engine.
  on() { ssh -i "$key" -p "$port" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -o ControlMaster=auto -o ControlPath="$SSH_CONTROL/%C" -o ControlPersist=60s "$dest" "$@"; }
  on docker login -u "$REGISTRY_USER" --password-stdin "$registry" <<<"$REGISTRY_PASSWORD" >/dev/null
  on docker pull -q "$ref" >/dev/null
  for ((r = 0; r < replicas; r++)); do
    name="bench-web-$r-$version"
    old=$(on docker ps -a --filter label=bench.service=web --filter "label=bench.replica=$r" --format '{{.Names}}' | grep -vx "$name" || true)
    for c in $old; do on "docker stop -t 10 $c >/dev/null && docker rm -f $c >/dev/null"; done
    if [ -z "$(on docker ps -q --filter "name=^$name\$")" ]; then
      on docker rm -f "$name" >/dev/null 2>&1 || true
      on docker run -d --name "$name" --label bench.service=web --label "bench.replica=$r" --label "bench.version=$version" -p 80 --restart unless-stopped "$ref" >/dev/null
    fi
    published=$(on docker port "$name" 80/tcp | head -1)
    healthy=
    for ((try = 0; try < 10; try++)); do
      if curl -fsS -o /dev/null --max-time 1 "http://$address:${published##*:}/healthz"; then healthy=1 && break; fi
      sleep 0.5
    done
    [ -n "$healthy" ] || { echo "$name on $address: /healthz did not answer 200" >&2; exit 1; }
  done
  on docker logout "$registry" >/dev/null
done
