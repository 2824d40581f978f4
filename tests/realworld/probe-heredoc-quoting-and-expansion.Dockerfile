# syntax=docker/dockerfile:1
FROM alpine:3.19
ARG NAME=world
COPY <<EOF /expanded.txt
hello ${NAME}
EOF
COPY <<"EOF" /literal.txt
hello ${NAME}
EOF
RUN python3 <<EOF
print("hello")
EOF
RUN <<EOF sh -x
echo "${NAME}"
EOF
