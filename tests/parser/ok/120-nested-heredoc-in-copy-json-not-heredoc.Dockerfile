FROM busybox
COPY ["<<EOF", "/dest"]
RUN echo "<<NOT" && echo done
