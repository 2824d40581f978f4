FROM busybox:local
ARG U=nobody
USER $U
