FROM busybox:local AS Builder
RUN echo x
FROM builder
RUN echo y
