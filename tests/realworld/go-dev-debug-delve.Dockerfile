# syntax=docker/dockerfile:1
FROM golang:1.22 AS dev
RUN --mount=type=cache,target=/go/pkg/mod \
    go install github.com/go-delve/delve/cmd/dlv@latest
WORKDIR /app
COPY . .
RUN go build -gcflags="all=-N -l" -o /app/server .
EXPOSE 8080 40000
CMD ["dlv", "--listen=:40000", "--headless=true", "--api-version=2", "--accept-multiclient", "exec", "/app/server"]
