FROM alpine:latest
RUN echo $FROM_IMAGE
ENV FROM_IMAGE=changed
