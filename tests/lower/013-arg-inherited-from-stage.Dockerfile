FROM busybox:local AS base
ARG V=1
FROM base
RUN echo $V
