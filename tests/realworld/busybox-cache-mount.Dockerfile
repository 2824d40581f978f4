# syntax=docker/dockerfile:1
FROM busybox:local
RUN --mount=type=cache,target=/var/cache/build,id=bb-cache \
    echo "cached at $(date)" >> /var/cache/build/log && cp /var/cache/build/log /build-log
RUN --mount=type=bind,source=app.conf,target=/tmp/app.conf \
    cp /tmp/app.conf /etc/app.conf
RUN --mount=type=tmpfs,target=/scratch \
    dd if=/dev/zero of=/scratch/blob bs=1k count=16 2>/dev/null && ls -l /scratch
