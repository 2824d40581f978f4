ARG BASE=alpine
ARG VERSION
FROM ${BASE}:${VERSION}
FROM ${UNDECLARED:-busybox}
FROM --platform=linux/amd64 busybox
FROM --platform=$TARGETPLATFORM busybox
FROM --platform=linux/arm64 busybox AS build-arm64
