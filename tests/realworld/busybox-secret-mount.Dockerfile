# syntax=docker/dockerfile:1
FROM busybox:local
RUN --mount=type=secret,id=token \
    if [ -f /run/secrets/token ]; then echo "secret present"; else echo "no secret"; fi
