FROM busybox # comments are not allowed here
RUN true
