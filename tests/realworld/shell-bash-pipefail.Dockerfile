FROM ubuntu:22.04
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
    && apt-get install -y --no-install-recommends wget ca-certificates \
    && wget -qO- https://example.com/key.asc | tee /etc/apt/trusted.gpg.d/example.asc \
    && rm -rf /var/lib/apt/lists/*
SHELL ["/bin/sh", "-c"]
RUN echo back to sh
