FROM busybox:local
RUN echo a \
    b
