FROM alpine:3.19
ENV PRICE="\$5" \
    QUOTED="say \"hi\"" \
    SINGLE='no $expansion here' \
    MIXED=a\ b\ c
LABEL description="It's \"quoted\"; cost: \$5"
RUN echo "$PRICE $QUOTED $SINGLE $MIXED"
