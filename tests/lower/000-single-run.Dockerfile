FROM busybox:local
RUN echo hi
