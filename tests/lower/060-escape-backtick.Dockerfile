# escape=`
FROM busybox:local
RUN echo a `
    b
COPY a\b /c
