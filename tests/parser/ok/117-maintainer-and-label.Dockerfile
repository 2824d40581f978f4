FROM busybox
MAINTAINER "Quoted Name" <q@example.com>
LABEL maintainer="Quoted Name <q@example.com>"
