# syntax=docker/dockerfile:1
# check=skip=LegacyKeyValueFormat,MaintainerDeprecated
FROM debian:bookworm-slim
MAINTAINER Someone <someone@example.com>
ENV DEBIAN_FRONTEND noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends make && rm -rf /var/lib/apt/lists/*
