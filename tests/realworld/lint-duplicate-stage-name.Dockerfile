FROM golang:1.22 AS build
RUN go build -o /app ./cmd/a

FROM golang:1.22 AS build
RUN go build -o /app ./cmd/b

FROM alpine:3.19
COPY --from=build /app /app
# expect-warning: DuplicateStageName
