ARG V=global
FROM busybox:local
RUN echo $V
