FROM busybox:local
WORKDIR app
WORKDIR sub
RUN pwd
