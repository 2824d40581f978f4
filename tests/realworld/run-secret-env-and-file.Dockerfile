# syntax=docker/dockerfile:1
FROM alpine:3.19
RUN --mount=type=secret,id=api_token,env=API_TOKEN \
    test -n "$API_TOKEN" && echo token present
RUN --mount=type=secret,id=aws,target=/root/.aws/credentials,required=true \
    ls -l /root/.aws/credentials
RUN --mount=type=secret,id=gh,uid=1000,gid=1000,mode=0400 \
    cat /run/secrets/gh > /dev/null
