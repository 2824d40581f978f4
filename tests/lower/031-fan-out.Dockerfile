FROM alpine:latest AS builder
RUN echo base > /base
FROM builder AS build1
RUN echo one > /one
FROM builder AS build2
RUN echo two > /two
FROM scratch
COPY --from=build1 /one /
COPY --from=build2 /two /
