# syntax=docker/dockerfile:1.4
ARG NODE_IMAGE=node:20-alpine

FROM ${NODE_IMAGE} AS pruner
WORKDIR /repo
RUN npm install -g turbo@1
COPY . .
ARG APP=web
RUN turbo prune --scope=${APP} --docker

FROM ${NODE_IMAGE} AS installer
WORKDIR /repo
COPY --from=pruner /repo/out/json/ .
COPY --from=pruner /repo/out/package-lock.json ./package-lock.json
RUN --mount=type=cache,target=/root/.npm npm ci
COPY --from=pruner /repo/out/full/ .
ARG APP
RUN npx turbo run build --filter=${APP}...

FROM ${NODE_IMAGE} AS runner
WORKDIR /repo
COPY --from=installer /repo .
ARG APP
ENV APP=${APP}
CMD ["sh", "-c", "node apps/$APP/dist/main.js"]
