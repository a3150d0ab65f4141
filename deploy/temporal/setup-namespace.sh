#!/bin/sh
# The temporal-setup job: once the server answers, the namespace berth uses and berth's search attributes
# (contracts/search-attributes.ts; test/deployment.test.ts keeps the two lists equal). Safe to run again.
set -eu
ns="${TEMPORAL_NAMESPACE:-default}"
until temporal operator cluster health >/dev/null 2>&1; do
  echo "waiting for Temporal at $TEMPORAL_ADDRESS"
  sleep 2
done
temporal operator namespace describe --namespace "$ns" >/dev/null 2>&1 ||
  temporal operator namespace create --namespace "$ns" --retention "${TEMPORAL_RETENTION:-30d}"
for attr in BerthKind=Keyword BerthProject=Keyword BerthCluster=Keyword BerthIdc=KeywordList BerthImage=Keyword; do
  name="${attr%%=*}"
  temporal operator search-attribute list --namespace "$ns" --output json | grep -q "\"$name\"" ||
    temporal operator search-attribute create --namespace "$ns" --name "$name" --type "${attr#*=}"
done
echo "namespace $ns ready"
