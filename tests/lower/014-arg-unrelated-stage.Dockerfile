FROM busybox:local AS a
ARG V=1
FROM busybox:local
RUN echo $V
