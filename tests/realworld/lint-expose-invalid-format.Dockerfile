FROM nginx:alpine
EXPOSE 0.0.0.0:80:80
EXPOSE 8080:80/tcp
# expect-warning: ExposeInvalidFormat
# expect-warning: ExposeInvalidFormat
