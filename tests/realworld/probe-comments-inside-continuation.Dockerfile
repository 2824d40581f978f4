FROM debian:bookworm-slim
RUN set -eux; \
# a comment line inside the continuation is dropped, not an empty line
    apt-get update; \
    # an indented comment too
    apt-get install -y --no-install-recommends ca-certificates; \
    rm -rf /var/lib/apt/lists/*
