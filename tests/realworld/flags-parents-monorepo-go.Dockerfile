# syntax=docker/dockerfile:1-labs
FROM golang:1.22 AS build
WORKDIR /src
COPY --parents go.work go.work.sum ./
COPY --parents ./services/*/go.mod ./services/*/go.sum ./
RUN go work sync && go mod download
COPY . .
RUN go build -o /out/ ./services/...
