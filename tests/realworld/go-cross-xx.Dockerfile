# syntax=docker/dockerfile:1.4

ARG GO_VERSION=1.21
ARG XX_VERSION=1.3.0

FROM --platform=$BUILDPLATFORM tonistiigi/xx:${XX_VERSION} AS xx

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-alpine AS base
COPY --from=xx / /
RUN apk add --no-cache clang lld file git
ENV CGO_ENABLED=0
WORKDIR /src

FROM base AS build
ARG TARGETPLATFORM
RUN --mount=type=bind,target=. \
    --mount=type=cache,target=/root/.cache \
    --mount=type=cache,target=/go/pkg/mod \
    xx-go build -o /out/tool ./cmd/tool && \
    xx-verify --static /out/tool

FROM scratch AS binary
COPY --from=build /out/tool /tool

FROM alpine:3.18
COPY --from=binary /tool /usr/local/bin/tool
ENTRYPOINT ["tool"]
