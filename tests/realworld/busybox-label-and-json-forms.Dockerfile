FROM busybox:local
LABEL "com.example.vendor"="ACME Incorporated" \
      com.example.label-with-value="foo" \
      version="1.0" \
      description="This text illustrates \
that label-values can span multiple lines."
COPY ["app.conf", "/etc/app/app.conf"]
RUN ["/bin/sh", "-c", "echo json form run"]
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo default command"]
