FROM busybox:local
CMD ["x"]
ENTRYPOINT ["/bin/echo"]
