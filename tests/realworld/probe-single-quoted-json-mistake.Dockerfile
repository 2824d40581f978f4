FROM node:20-alpine
WORKDIR /app/
COPY . .
# Single quotes are not JSON: this is the shell form.
CMD ['node', 'server.js']
# expect-warning: JSONArgsRecommended
