# syntax=docker/dockerfile:1

ARG GO_VERSION=1.22.1

FROM golang:${GO_VERSION}-alpine AS gobase
RUN apk add --no-cache git make
WORKDIR /go/src/github.com/example/cli

FROM gobase AS build
ARG VERSION=dev
ARG GIT_COMMIT=unknown
ARG BUILDTIME
RUN --mount=type=bind,target=.,rw \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -o /out/cli \
      -ldflags "-X main.Version=${VERSION} -X main.GitCommit=${GIT_COMMIT} -X main.BuildTime=${BUILDTIME}" \
      ./cmd/cli

FROM scratch
COPY --from=build /out/cli /cli
ENTRYPOINT ["/cli"]
