# syntax=docker/dockerfile:1
FROM golang:1.22-alpine AS build
RUN apk add --no-cache git openssh-client
RUN mkdir -p -m 0700 ~/.ssh && ssh-keyscan github.com >> ~/.ssh/known_hosts
RUN git config --global url."git@github.com:".insteadOf "https://github.com/"
ENV GOPRIVATE=github.com/acme/*
WORKDIR /app
COPY go.mod go.sum ./
RUN --mount=type=ssh go mod download
COPY . .
RUN go build -o /app/bin/svc ./cmd/svc

FROM alpine:3.19
COPY --from=build /app/bin/svc /usr/bin/svc
ENTRYPOINT ["/usr/bin/svc"]
