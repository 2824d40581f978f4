FROM onbuild-base:1 AS child
RUN echo child
FROM child
RUN echo grandchild
