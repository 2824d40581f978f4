# syntax=docker/dockerfile:1

ARG BASE_IMAGE=alpine:3.19
ARG JS_IMAGE=node:20-alpine
ARG JS_PLATFORM=linux/amd64
ARG GO_IMAGE=golang:1.22-alpine

ARG GO_SRC=go-builder
ARG JS_SRC=js-builder

FROM --platform=${JS_PLATFORM} ${JS_IMAGE} AS js-builder
ENV NODE_OPTIONS=--max_old_space_size=8000
WORKDIR /tmp/app
COPY package.json yarn.lock .yarnrc.yml ./
COPY .yarn .yarn
COPY packages packages
RUN yarn install --immutable
COPY tsconfig.json .eslintrc .editorconfig .browserslistrc .prettierrc.js ./
COPY public public
COPY scripts scripts
ENV NODE_ENV=production
RUN yarn build

FROM ${GO_IMAGE} AS go-builder
ARG COMMIT_SHA=""
ARG BUILD_BRANCH=""
ARG GO_BUILD_TAGS="oss"
ARG WIRE_TAGS="oss"
ARG BINGO="true"
RUN if grep -i -q alpine /etc/issue; then \
      apk add --no-cache gcc g++ make git; \
    fi
WORKDIR /tmp/app
COPY go.* ./
COPY .bingo .bingo
RUN go mod download
RUN if [[ "$BINGO" = "true" ]]; then \
      go install github.com/bwplotka/bingo@latest && \
      bingo get -v; \
    fi
COPY embed.go Makefile build.go package.json ./
COPY cue.mod cue.mod
COPY kinds kinds
COPY local local
COPY packages/app-schema packages/app-schema
COPY public/app/plugins public/app/plugins
COPY pkg pkg
COPY scripts scripts
COPY conf conf
COPY .github .github
ENV COMMIT_SHA=${COMMIT_SHA}
ENV BUILD_BRANCH=${BUILD_BRANCH}
RUN make build-go GO_BUILD_TAGS=${GO_BUILD_TAGS} WIRE_TAGS=${WIRE_TAGS}

FROM ${BASE_IMAGE} AS tgz-builder
WORKDIR /tmp/app
ARG APP_TGZ="/tmp/app.tar.gz"
COPY ${APP_TGZ} /tmp/app.tar.gz
RUN tar x -z -f /tmp/app.tar.gz --strip-components=1

FROM ${GO_SRC} AS go-src
FROM ${JS_SRC} AS js-src

FROM ${BASE_IMAGE}
LABEL maintainer="Example Labs <hello@example.com>"
ARG APP_UID="472"
ARG APP_GID="0"
ENV PATH="/usr/share/app/bin:$PATH" \
    APP_PATHS_CONFIG="/etc/app/app.ini" \
    APP_PATHS_DATA="/var/lib/app" \
    APP_PATHS_HOME="/usr/share/app"
WORKDIR $APP_PATHS_HOME
COPY --from=go-src /tmp/app/bin/app* ./bin/
COPY --from=js-src /tmp/app/public ./public
EXPOSE 3000
USER "$APP_UID"
ENTRYPOINT [ "/run.sh" ]
