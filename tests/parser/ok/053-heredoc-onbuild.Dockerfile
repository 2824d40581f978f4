FROM alpine:3.20 AS base
ONBUILD RUN <<EOF
echo building on top of base
EOF
ONBUILD COPY . /app
