# syntax=docker/dockerfile:1
FROM alpine:3.19
RUN --mount=type=bind,from=busybox:latest,source=/bin/busybox,target=/mnt/busybox \
    /mnt/busybox echo "ran a binary from another image"
RUN --mount=from=golang:1.22-alpine,source=/usr/local/go,target=/usr/local/go \
    /usr/local/go/bin/go version
