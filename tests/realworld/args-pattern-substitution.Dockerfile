# syntax=docker/dockerfile:1
ARG VERSION=v1.8.3
FROM alpine:3.19
ARG VERSION
ENV VERSION_NUMBER=${VERSION#v}
ENV VERSION_MAJOR=${VERSION%%.*}
ENV RELEASE_URL=https://example.com/releases/${VERSION}/tool-${VERSION#v}.tar.gz
ADD ${RELEASE_URL} /tmp/
RUN tar -xzf /tmp/tool-*.tar.gz -C /usr/local/bin
