FROM busybox:local
ARG A=1
ARG A=2
RUN echo $A
