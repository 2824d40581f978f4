# build-arg: APP_VERSION=2.4.1
# build-arg: NODE_MAJOR=18
ARG NODE_MAJOR=20
FROM node:${NODE_MAJOR}-alpine
ARG APP_VERSION=0.0.0-dev
ENV APP_VERSION=${APP_VERSION}
LABEL org.opencontainers.image.version=${APP_VERSION}
WORKDIR /app
COPY . .
CMD ["node", "main.js"]
