FROM alpine:3.19
# Written on Windows: CRLF line endings.
RUN apk add --no-cache \
      curl \
      jq
ENV APP_HOME=/app
WORKDIR $APP_HOME
COPY . .
CMD ["sh"]
