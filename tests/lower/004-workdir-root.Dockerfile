FROM busybox:local
WORKDIR /
RUN pwd
