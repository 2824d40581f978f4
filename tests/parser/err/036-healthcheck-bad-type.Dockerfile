FROM busybox
HEALTHCHECK PING localhost
