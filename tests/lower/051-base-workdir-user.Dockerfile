FROM nginx:latest
RUN pwd
WORKDIR rel
