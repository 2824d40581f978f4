FROM busybox:local AS base
ONBUILD RUN echo trig > /trig
RUN echo b
FROM base
RUN ls /trig
