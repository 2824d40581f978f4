# syntax=docker/dockerfile:1

ARG GO_VERSION="1.21"
ARG ALPINE_VERSION="3.18"
ARG GOLANGCI_LINT_VERSION="v1.55"

FROM golangci/golangci-lint:${GOLANGCI_LINT_VERSION}-alpine AS golangci-lint
FROM golang:${GO_VERSION}-alpine${ALPINE_VERSION} AS golang

FROM golang AS lint
ENV GOFLAGS="-buildvcs=false"
ARG BUILDTAGS
COPY --link --from=golangci-lint /usr/bin/golangci-lint /usr/bin/golangci-lint
WORKDIR /go/src/github.com/acme/project
RUN --mount=target=/go/src/github.com/acme/project \
    --mount=target=/root/.cache,type=cache,id=lint-cache \
    golangci-lint run --build-tags "$BUILDTAGS" ./...

FROM golang AS vendor-validate
RUN apk add --no-cache git rsync
WORKDIR /src
RUN --mount=type=bind,target=.,rw <<EOT
  set -e
  rsync -a /src/ /tmp/src-copy
  cd /tmp/src-copy && go mod tidy && go mod vendor
  diff=$(git status --porcelain -- go.mod go.sum vendor)
  if [ -n "$diff" ]; then
    echo >&2 'ERROR: Vendor result differs. Please vendor your package with "make vendor"'
    exit 1
  fi
EOT
