FROM busybox:local
ARG V
RUN echo $V
