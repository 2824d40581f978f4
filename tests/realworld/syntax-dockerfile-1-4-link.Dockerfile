# syntax=docker/dockerfile:1.4
FROM alpine:3.19 AS certs
RUN apk add --no-cache ca-certificates

FROM scratch
COPY --link --from=certs /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --link --chmod=0555 ./bin/app /app
ENTRYPOINT ["/app"]
