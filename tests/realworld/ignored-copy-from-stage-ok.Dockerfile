# dockerignore: dist
# dockerignore: *.env
FROM node:20 AS build
WORKDIR /app
COPY package.json ./
RUN npm install && npm run build

FROM nginx:alpine
# dist is ignored in the context, but this copy is from a stage.
COPY --from=build /app/dist /usr/share/nginx/html
