FROM busybox:local
ARG V=1
RUN echo $V
