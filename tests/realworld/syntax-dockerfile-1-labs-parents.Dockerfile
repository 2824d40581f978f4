# syntax=docker/dockerfile:1-labs
FROM node:20-alpine AS deps
WORKDIR /repo
# Copy every workspace's manifest, keeping its directory.
COPY --parents packages/*/package.json package.json package-lock.json ./
RUN npm ci
COPY --parents ./packages/./*/src /repo/packages/
