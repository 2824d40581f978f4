# check=error=true
FROM busybox AS Builder
CMD echo hi
