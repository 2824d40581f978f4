FROM busybox:local AS a
RUN echo same
FROM busybox:local AS b
RUN echo same
FROM scratch
COPY --from=a /x /a
COPY --from=b /x /b
