# build-arg: BASE_IMAGE=alpine:3.19
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN echo ok
# expect-warning: InvalidDefaultArgInFrom
