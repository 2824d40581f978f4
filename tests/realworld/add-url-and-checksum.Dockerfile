# syntax=docker/dockerfile:1
FROM alpine:3.19
ADD https://github.com/krallin/tini/releases/download/v0.19.0/tini-static /tini
ADD --checksum=sha256:c5b0ed1a7c6f9e9a9d1c4c0c3e2d1f8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e \
    https://example.com/releases/tool-1.2.3.tar.gz /tmp/tool.tar.gz
ADD --chmod=755 https://raw.githubusercontent.com/example/scripts/main/wait-for-it.sh /usr/local/bin/wait-for-it
RUN chmod +x /tini
ENTRYPOINT ["/tini", "--"]
