FROM busybox:local
COPY *.txt a? [ab]c /dst/
