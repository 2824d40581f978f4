# dockerignore: *.md
# dockerignore: .git
# dockerignore: node_modules
FROM node:20-alpine
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY README.md /app/
COPY . .
# expect-warning: CopyIgnoredFile
