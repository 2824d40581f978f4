FROM busybox
# check=skip=JSONArgsRecommended
CMD echo this one is skipped
ENTRYPOINT echo this one is not
