ARG IMG=busybox
ARG TAG=latest
FROM $IMG:$TAG
ARG IMG
RUN echo $IMG
