FROM busybox:local AS a
RUN echo a
FROM a AS b
RUN echo b
FROM b AS c
RUN echo c
