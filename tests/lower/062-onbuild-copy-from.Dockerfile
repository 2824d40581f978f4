FROM busybox:local AS src
RUN echo s > /s
FROM busybox:local AS base
ONBUILD COPY --from=src /s /s
FROM base
RUN cat /s
