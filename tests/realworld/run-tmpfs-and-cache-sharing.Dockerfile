# syntax=docker/dockerfile:1
FROM debian:bookworm
RUN rm -f /etc/apt/apt.conf.d/docker-clean; echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/keep-cache
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    apt-get update && apt-get --no-install-recommends install -y gcc
RUN --mount=type=tmpfs,target=/tmp,size=64m \
    dd if=/dev/zero of=/tmp/scratch bs=1M count=8
RUN --mount=type=cache,target=/root/.cache,id=pip-cache,sharing=private,mode=0755 \
    echo private cache
