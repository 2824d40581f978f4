FROM busybox:local
ENV D=/data
VOLUME $D
