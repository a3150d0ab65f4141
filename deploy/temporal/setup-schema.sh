#!/bin/sh
# The temporal-schema job: creates Temporal's two PostgreSQL databases and brings their schemas to the version of
# this admin-tools image, and creates berth's inventory database. Safe to run again (an upgrade of the images runs it again before the new server starts).
set -eu
SQL_PASSWORD="$(cat /run/secrets/postgres-password)"
export SQL_PASSWORD
sql() { temporal-sql-tool --plugin postgres12 --ep postgresql -p 5432 -u temporal "$@"; }
for db in temporal temporal_visibility; do
  schema=temporal
  [ "$db" = temporal_visibility ] && schema=visibility
  # `create` fails when the database exists already: that is the normal case after the first run.
  sql --db "$db" create || echo "database $db exists"
  sql --db "$db" setup-schema -v 0.0
  sql --db "$db" update-schema -d "/etc/temporal/schema/postgresql/v12/$schema/versioned"
done
# berth's inventory (deploy/berth.yaml's inventory.postgres): berth migrates its own tables when it starts.
sql --db berth create || echo "database berth exists"
