FROM nginx:alpine
EXPOSE 80/TCP 443/Tcp
EXPOSE 53/UDP
# expect-warning: ExposeProtoCasing
# expect-warning: ExposeProtoCasing
# expect-warning: ExposeProtoCasing
