FROM alpine:3.19
RUN echo "last line ends with a continuation" \
