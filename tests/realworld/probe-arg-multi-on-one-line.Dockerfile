ARG BASE=alpine TAG=3.19
FROM ${BASE}:${TAG}
ARG A=1 B="two words" C
ENV A=$A B="$B" C=${C:-none}
RUN echo "$A $B $C"
