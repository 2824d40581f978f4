FROM busybox
ADD
