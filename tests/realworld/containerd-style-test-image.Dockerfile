# syntax=docker/dockerfile:1
ARG GOLANG_VERSION=1.21.7
ARG GOLANG_IMAGE=golang

FROM ${GOLANG_IMAGE}:${GOLANG_VERSION} AS golang

# Install runc
FROM golang AS runc
RUN apt-get update && apt-get install -y --no-install-recommends \
    libseccomp-dev \
    && rm -rf /var/lib/apt/lists/*

COPY script/setup/runc-version script/setup/install-runc ./
# Allow overriding the version of runc to install through build-args
ARG RUNC_VERSION
ARG GOPROXY=direct
ARG DESTDIR=/build
RUN ./install-runc

FROM golang AS build-env
RUN apt-get update && apt-get install -y --no-install-recommends \
    libbtrfs-dev \
    btrfs-progs \
    libseccomp-dev \
    xfsprogs \
    && rm -rf /var/lib/apt/lists/*
RUN mkdir -p /go/src/github.com/containerd/containerd
WORKDIR /go/src/github.com/containerd/containerd

FROM golang AS cni
ENV DESTDIR=/build
COPY script/setup/install-cni go.mod /
RUN DESTDIR=/build /install-cni

FROM build-env AS containerd
ARG DESTDIR=/build
COPY . .
RUN make binaries install

FROM build-env AS dev
COPY --from=runc /build/ /
COPY --from=cni /build/ /
COPY --from=containerd /build/ /
VOLUME /var/lib/containerd
ENTRYPOINT ["/usr/local/bin/containerd"]
