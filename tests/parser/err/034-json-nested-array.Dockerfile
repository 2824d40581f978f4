FROM busybox
RUN [["nested"]]
