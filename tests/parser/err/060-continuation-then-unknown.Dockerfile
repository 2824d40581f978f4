FROM busybox
RUN echo a \
  b
FROOM c
