FROM node:${NODE_VERSON:-20}-alpine
ARG NODE_VERSION=20
RUN node --version
# expect-warning: UndefinedArgInFrom
