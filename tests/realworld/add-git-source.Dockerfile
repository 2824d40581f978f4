# syntax=docker/dockerfile:1
FROM golang:1.22 AS build
ADD https://github.com/example/project.git#v1.2.3 /src
ADD --keep-git-dir=true git@github.com:example/other.git#main:subdir /other
WORKDIR /src
RUN go build -o /out/project .
