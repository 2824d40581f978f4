# syntax=docker/dockerfile:1
FROM golang:1.22 AS build
WORKDIR /src
COPY --link go.mod go.sum ./
RUN go mod download
COPY --link . .
RUN CGO_ENABLED=0 go build -o /bin/app .

FROM gcr.io/distroless/static
COPY --link --from=build /bin/app /bin/app
COPY --link --chown=65532:65532 config/ /etc/app/
ADD --link https://raw.githubusercontent.com/example/project/main/LICENSE /licenses/LICENSE
USER 65532
ENTRYPOINT ["/bin/app"]
