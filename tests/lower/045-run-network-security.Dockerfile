FROM busybox:local
RUN --network=none true
RUN --network=host true
RUN --security=insecure true
