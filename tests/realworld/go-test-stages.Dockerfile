# syntax=docker/dockerfile:1

FROM golang:1.22-alpine AS base
WORKDIR /src
ENV GOFLAGS=-mod=vendor
COPY . .

FROM base AS lint
RUN --mount=type=cache,target=/root/.cache \
    go vet ./...

FROM base AS unit-test
RUN --mount=type=cache,target=/root/.cache/go-build \
    go test -race -coverprofile=/tmp/coverage.txt ./...

FROM scratch AS test-coverage
COPY --from=unit-test /tmp/coverage.txt /coverage.txt

FROM base AS release
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -o /out/app .
