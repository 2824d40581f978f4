# syntax=docker/dockerfile:1.7-labs
FROM node:20-alpine AS src
WORKDIR /app
COPY --exclude=node_modules --exclude=.git --exclude=*.md . .
ADD --exclude=*.map dist.tar.gz /app/dist/

FROM nginx:alpine
COPY --from=src --exclude=*.test.js /app/dist /usr/share/nginx/html
