# syntax=docker.io/docker/dockerfile:1
FROM alpine:3.19
RUN apk add --no-cache bash
SHELL ["/bin/bash", "-eo", "pipefail", "-c"]
RUN curl -fsSL https://example.com/install.sh | bash
