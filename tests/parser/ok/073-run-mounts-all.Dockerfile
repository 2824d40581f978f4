FROM debian:bookworm
RUN --mount=type=secret,id=npmrc,target=/root/.npmrc,required \
    --mount=type=ssh,id=default \
    --mount=type=tmpfs,target=/tmp,size=64m \
    --mount=type=bind,from=tools,source=/bin/tool,target=/usr/local/bin/tool \
    --mount=type=cache,id=apt,target=/var/cache/apt,sharing=locked,mode=0755,uid=0,gid=0 \
    --network=none --security=sandbox \
    ./build.sh
RUN --network=host curl -fsS https://example.com
RUN --security=insecure mount -t tmpfs none /mnt
