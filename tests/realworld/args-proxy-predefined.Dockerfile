# build-arg: HTTP_PROXY=http://proxy.internal:3128
# build-arg: no_proxy=localhost,127.0.0.1
FROM debian:bookworm-slim
# Proxy build arguments are predefined: no ARG needed for RUN to see them.
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
