ARG REGISTRY=docker.io
ARG IMAGE=library/alpine
ARG TAG
FROM ${REGISTRY}/${IMAGE}:${TAG:-3.20}
ARG A B=2 C="three words"
ARG D=$B-suffix
ARG http_proxy
RUN echo "$A $B $C $D"
