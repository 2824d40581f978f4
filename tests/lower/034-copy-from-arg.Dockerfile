ARG SRC=first
FROM busybox:local AS first
RUN echo one > /f
FROM busybox:local
ARG SRC
COPY --from=${SRC} /f /g
