FROM busybox
HEALTHCHECK --timeout=1us CMD true
