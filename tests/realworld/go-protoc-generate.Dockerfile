# syntax=docker/dockerfile:1
ARG PROTOC_VERSION=25.1
ARG PROTOC_GEN_GO_VERSION=v1.31.0

FROM golang:1.22-bookworm AS protoc
ARG PROTOC_VERSION
ARG TARGETARCH
RUN apt-get update && apt-get install -y --no-install-recommends unzip && rm -rf /var/lib/apt/lists/*
RUN set -eux; \
    case "${TARGETARCH}" in \
      amd64) arch=x86_64 ;; \
      arm64) arch=aarch_64 ;; \
      *) echo "unsupported ${TARGETARCH}"; exit 1 ;; \
    esac; \
    curl -fsSL -o /tmp/protoc.zip "https://github.com/protocolbuffers/protobuf/releases/download/v${PROTOC_VERSION}/protoc-${PROTOC_VERSION}-linux-${arch}.zip"; \
    unzip /tmp/protoc.zip -d /usr/local; \
    rm /tmp/protoc.zip
ARG PROTOC_GEN_GO_VERSION
RUN --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=cache,target=/go/pkg/mod \
    go install google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}

FROM protoc AS generate
WORKDIR /src
RUN --mount=type=bind,source=api,target=api \
    mkdir -p /out && protoc -I api --go_out=/out api/*.proto

FROM scratch AS update
COPY --from=generate /out /
