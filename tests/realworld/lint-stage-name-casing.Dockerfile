FROM golang:1.22 AS BuildStage
RUN go version

FROM alpine:3.19 AS Final
COPY --from=BuildStage /usr/local/go/VERSION /go-version
# expect-warning: StageNameCasing
# expect-warning: StageNameCasing
