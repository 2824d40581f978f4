FROM busybox
RUN --mount=type=bind,\"src\"x,target=/a true
