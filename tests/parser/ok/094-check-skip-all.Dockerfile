# check=skip=all
FROM busybox AS Builder
MAINTAINER x
cmd echo hi
