FROM busybox
ENV A=1 B="two words" C=three\ words D='single $quoted'
ENV LEGACY value with spaces
ENV PATH=/opt/bin:$PATH \
    EMPTY= \
    QUOTED="a \"q\" b"
LABEL a=b "c d"=e
LABEL multi.line="first" \
      multi.line2="second"
LABEL legacy label value
