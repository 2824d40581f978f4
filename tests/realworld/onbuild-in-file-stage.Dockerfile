FROM alpine:3.19 AS toolchain
RUN apk add --no-cache make gcc musl-dev
WORKDIR /src
ONBUILD COPY . /src
ONBUILD RUN make

FROM toolchain AS build
# The ONBUILD triggers of toolchain run here, before this stage's own instructions.
RUN ls -la /src

FROM alpine:3.19
COPY --from=build /src/out /usr/local/bin/
