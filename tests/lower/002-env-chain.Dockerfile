FROM busybox:local
ENV A=1 B="$A two"
ENV PATH=/opt:$PATH
RUN echo $A $B
