FROM --platform=$BUILDPLATFORM tonistiigi/xx AS xx
FROM --platform=$BUILDPLATFORM golang:1.22-alpine AS build
COPY --from=xx / /
ARG TARGETPLATFORM
RUN xx-apk add --no-cache gcc musl-dev
ENV CGO_ENABLED=1
WORKDIR /src
COPY . .
RUN xx-go build -o /out/app . && xx-verify /out/app

FROM --platform=linux/arm64 alpine:3.20 AS final-arm64
COPY --from=build /out/app /usr/bin/app
ENTRYPOINT ["app"]
