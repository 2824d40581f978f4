# syntax=docker/dockerfile:1
FROM node:20-bookworm-slim AS builder
WORKDIR /app
RUN corepack enable
COPY package.json yarn.lock .yarnrc.yml ./
COPY .yarn ./.yarn
RUN --mount=type=cache,target=/root/.yarn/berry/cache \
    yarn install --immutable
COPY . .
RUN yarn build && yarn workspaces focus --production

FROM node:20-bookworm-slim
ENV NODE_ENV production
WORKDIR /app
COPY --from=builder --chown=node:node /app /app
USER node
CMD ["node", "./build/server.js"]
# expect-warning: LegacyKeyValueFormat
