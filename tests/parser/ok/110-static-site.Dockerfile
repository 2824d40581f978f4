FROM node:20 AS build
WORKDIR /site
COPY . .
RUN npm ci && npm run build
FROM nginx:alpine
COPY --from=build /site/public /usr/share/nginx/html
COPY nginx.conf /etc/nginx/conf.d/default.conf
