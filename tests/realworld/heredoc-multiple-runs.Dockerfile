# syntax=docker/dockerfile:1
FROM alpine:3.19
RUN <<FILE1 cat > /file1 && <<FILE2 cat > /file2
I am
first
FILE1
I am
second
FILE2
RUN cat /file1 /file2
ARG GREETING=hello
RUN <<EOF
echo "${GREETING} world" > /greeting
EOF
RUN <<'EOF'
echo "literal ${GREETING} not expanded by the frontend"
EOF
