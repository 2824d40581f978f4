# syntax=docker/dockerfile:1
# escape=`
FROM alpine:3.19
RUN echo "first line" && `
    echo "second line"
ENV WINPATH=C:\tools\bin
