# syntax=docker/dockerfile:1.7-labs
# escape=\
# check=skip=JSONArgsRecommended;error=false
FROM busybox
CMD echo skipped check
