FROM alpine:latest
RUN echo x > /x
FROM busybox:local
COPY --from=0 /x /x
