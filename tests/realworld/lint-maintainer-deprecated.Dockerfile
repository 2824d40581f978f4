FROM ubuntu:20.04
MAINTAINER Jane Doe <jane@example.com>
RUN apt-get update && apt-get install -y --no-install-recommends vim && rm -rf /var/lib/apt/lists/*
# expect-warning: MaintainerDeprecated
