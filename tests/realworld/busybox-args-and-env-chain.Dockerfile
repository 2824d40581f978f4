ARG GREETING=hello
ARG TARGET_USER=world
FROM busybox:local
ARG GREETING
ARG TARGET_USER
ENV MESSAGE="${GREETING}, ${TARGET_USER}!" \
    UPPER=${GREETING:+YES} \
    FALLBACK=${MISSING_VALUE:-default}
RUN echo "$MESSAGE $UPPER $FALLBACK" > /message.txt
LABEL com.example.greeting="${GREETING}"
CMD ["cat", "/message.txt"]
# MISSING_VALUE is never declared: BuildKit flags it even with a default.
# expect-warning: UndefinedVar
