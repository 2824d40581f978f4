FROM golang:1.22-alpine3.19 AS builder
RUN apk add --no-cache gcc musl-dev sqlite-dev
WORKDIR /build
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
RUN CGO_ENABLED=1 go build -tags "sqlite_omit_load_extension" \
      -ldflags '-linkmode external -extldflags "-static"' -o /build/db-tool .

FROM alpine:3.19
RUN apk add --no-cache ca-certificates
COPY --from=builder /build/db-tool /usr/local/bin/
VOLUME ["/data"]
WORKDIR /data
ENTRYPOINT ["db-tool"]
CMD ["--help"]
