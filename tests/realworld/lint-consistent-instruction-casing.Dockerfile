FROM alpine:3.19
RUN apk add --no-cache curl
copy . /app
WORKDIR /app
Run ./build.sh
CMD ["/app/run"]
# expect-warning: ConsistentInstructionCasing
# expect-warning: ConsistentInstructionCasing
