FROM busybox:local
CMD echo hi
