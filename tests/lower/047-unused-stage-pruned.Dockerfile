FROM alpine:latest AS unused
RUN echo never
FROM busybox:local
RUN echo used
