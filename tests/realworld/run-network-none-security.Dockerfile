# syntax=docker/dockerfile:1-labs
FROM alpine:3.19
RUN --network=host apk add --no-cache fuse
RUN --network=none ls /
RUN --network=default true
RUN --security=insecure mount -t tmpfs none /mnt && umount /mnt
RUN --security=sandbox echo sandboxed
