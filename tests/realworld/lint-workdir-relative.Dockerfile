FROM node:20-alpine
WORKDIR app
COPY . .
WORKDIR src
CMD ["node", "index.js"]
# expect-warning: WorkdirRelativePath
