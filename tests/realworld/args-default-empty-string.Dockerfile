FROM busybox:local
ARG EMPTY=""
ARG UNSET
ENV A=${EMPTY:-fallback} B=${UNSET:-fallback2} C=${EMPTY:+set}
RUN echo "$A $B $C"
