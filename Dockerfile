# One image for every berth process; the command picks the role (deploy/entrypoint.sh):
#   docker run berth api
#   docker run berth worker --no-idc                      workflows and control activities
#   docker run berth worker --idc idc-b --no-main         one IDC's activities, run inside that IDC
# BERTH_CONFIG (default /etc/berth/berth.yaml) names the config; mount it and the secrets it references.
# The base: the official image by default; where none can be pulled, a local one (docs/operations.md, "The image
# without Docker Hub").
ARG NODE_IMAGE=node:20.18.1-bookworm-slim

# deps: production dependencies only. better-sqlite3 compiles from source when no prebuilt binary matches the
# platform, hence the toolchain (it stays in this stage).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# build: the workflow code bundled once, so that workers start without webpack and every worker of a release
# runs the same bytes (workers load it through BERTH_WORKFLOW_BUNDLE).
FROM deps AS build
COPY . .
RUN node --import tsx workers/bundle.ts dist/workflow-bundle.js

# runtime: berth runs its TypeScript sources with tsx, as everywhere; the files belong to root and are read-only
# for the unprivileged user the processes run as. /var/lib/berth holds an inventory kept in SQLite (inventory.sqliteFile).
FROM ${NODE_IMAGE} AS runtime
RUN groupadd --system --gid 10001 berth \
 && useradd --system --uid 10001 --gid berth --home-dir /var/lib/berth --shell /usr/sbin/nologin berth \
 && mkdir -p /var/lib/berth /etc/berth \
 && chown berth:berth /var/lib/berth
WORKDIR /app
COPY --from=build /app /app
ENV NODE_ENV=production \
    BERTH_CONFIG=/etc/berth/berth.yaml \
    BERTH_WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js \
    BERTH_LOG_LEVEL=INFO
USER berth
# 8080: the API; 9464: a worker's /metrics and /healthz (metrics.port in berth.yaml).
EXPOSE 8080 9464
ENTRYPOINT ["/bin/sh", "/app/deploy/entrypoint.sh"]
CMD ["worker"]
