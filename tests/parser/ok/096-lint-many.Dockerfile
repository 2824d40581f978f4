FROM busybox AS Builder
FROM busybox as second
MAINTAINER someone
ENV PASSWORD=hunter2
ARG API_TOKEN
ENV key value
WORKDIR relative/dir
CMD echo one
CMD echo two
EXPOSE 80/TCP 127.0.0.1:8080:80
FROM busybox AS second
