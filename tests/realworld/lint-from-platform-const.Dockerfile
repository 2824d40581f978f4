FROM --platform=linux/amd64 node:20 AS build
RUN npm --version

# A stage named after the platform is fine.
FROM --platform=linux/amd64 debian:bookworm AS deb-amd64
RUN true
# expect-warning: FromPlatformFlagConstDisallowed
