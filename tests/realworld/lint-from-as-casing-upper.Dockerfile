from node:20-alpine AS build
run npm ci
from nginx:alpine
copy --from=build /app/dist /usr/share/nginx/html
# expect-warning: FromAsCasing
