# syntax=docker/dockerfile:1
#
# One image for every service: the argument picks which one runs (facade, logging, messages,
# config-server), exactly as `node dist/src/cli.js <service>` does locally. The services share
# all their code and dependencies, so one image is built, pushed and scanned once, every pod of
# a release runs the same bits, and the Helm chart only changes the argument. (Per-service
# targets would save nothing: each would hold the same node_modules.)
#
# Node 24 is the LTS line the project runs on (the test suite also runs on it, via the npm
# package node@24); Node 20 is past its end of life.

# --- builder: all dependencies, compile the TypeScript to dist/ ---------------------------
FROM node:24-slim AS builder
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
# tsc copies no other files: the live page's static files follow the same way as in npm run build.
RUN npx tsc -p tsconfig.json \
 && cp -R src/facade-service/dashboard/public dist/src/facade-service/dashboard/

# --- merge-policies: the Hazelcast members' own merge policies (src/member-plugins, Java) ---
# Compiled against the member jar of the very image the chart runs the members from, by the same
# script as locally. The chart's member pods copy the jar from this image (an init container) onto
# their classpath: the member image stays the official one.
FROM hazelcast/hazelcast:5.6.0 AS hazelcast
FROM node:24-slim AS merge-policies
# A JDK for this stage only (the runtime image has none). The man directory is missing in slim
# images, and the JDK's package fails to install without it.
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update \
 && apt-get install -y --no-install-recommends default-jdk-headless \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY --from=hazelcast /opt/hazelcast/lib/hazelcast-5.6.0.jar ./jars/
COPY scripts/build-merge-policies.sh ./scripts/
COPY src/member-plugins ./src/member-plugins
RUN HAZELCAST_JAR=/build/jars/hazelcast-5.6.0.jar HAZELCAST_JAR_DIR=/build/out bash scripts/build-merge-policies.sh

# --- prod-deps: production dependencies only (no TypeScript, no test tools) ----------------
FROM node:24-slim AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# --- runtime: node, the compiled code and production node_modules, nothing else -------------
FROM node:24-slim AS runtime
ENV NODE_ENV=production
# A container's interfaces are its own: listen on all of them (outside a container the default is loopback).
ENV HOST=0.0.0.0
WORKDIR /app
# Owned by root and only readable by the service user: the code cannot be changed at run time
# (the chart also mounts the root filesystem read-only).
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=builder /app/dist/src ./dist/src
# Not run here: the Hazelcast pods' init container copies it (helm/mqlab/templates/hazelcast-statefulset.yaml).
COPY --from=merge-policies /build/out/mqlab-merge-policies.jar ./hazelcast/
# A numeric, non-root user, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8080 8081 8082 8888
# Exec form: node is PID 1 and receives SIGTERM itself (no shell in between), so each
# service's graceful shutdown (unready, drain, leave Hazelcast) runs on `kubectl delete pod`.
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["facade"]
