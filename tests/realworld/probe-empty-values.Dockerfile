FROM alpine:3.19
ARG OPTIONAL=
ENV EMPTY= OTHER=""
LABEL org.example.empty="" org.example.eq="a=b=c"
EXPOSE 80/sctp 8080/tcp 8080/udp
USER 1000
STOPSIGNAL 15
VOLUME ["/data", "/logs"]
RUN ["sh", "-c", "echo $HOME"]
CMD []
