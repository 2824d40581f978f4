FROM busybox:local
CMD ['a', 'b']
RUN ["echo",]
