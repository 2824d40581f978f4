# escape=`
FROM alpine:3.19
# With the backtick as escape character, a backslash is an ordinary character
# and Windows-looking paths are kept as written.
RUN echo "C:\Program Files\Tool" > /path.txt
ENV TOOL_HOME=/opt/tool `
    TOOL_FLAGS="--quiet --no-color"
COPY . /opt/tool/
WORKDIR /opt/tool
ENTRYPOINT ["/opt/tool/bin/tool"]
