FROM busybox
RUN --mnt=type=cache,target=/x true
