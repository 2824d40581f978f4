FROM busybox
COPY *.txt /texts/
COPY dir/[ab]*.conf /etc/
COPY file?.log /logs/
ADD *.tar.gz /unpacked/
