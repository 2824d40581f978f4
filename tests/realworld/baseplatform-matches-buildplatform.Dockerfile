# syntax=docker/dockerfile:1
# platform: linux/arm64
# base-platform: golang:1.22=linux/amd64
# The builder stage asks for amd64 explicitly (named after it, so the constant is fine):
# its image matches what it asked for.
FROM --platform=linux/amd64 golang:1.22 AS build-amd64
ARG TARGETARCH
RUN GOARCH=$TARGETARCH go build -o /out/app .

FROM alpine:3.19
COPY --from=build-amd64 /out/app /app
