FROM node:20-alpine
ENV APP_ROOT=/usr/src/app
# Quoted and variable paths are absolute once expanded: no warning.
WORKDIR "${APP_ROOT}"
WORKDIR "/usr/src/app/server"
CMD ["node", "index.js"]
