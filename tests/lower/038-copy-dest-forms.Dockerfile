FROM busybox:local
WORKDIR /w
COPY a .
COPY b ./
COPY c d
COPY e /abs/
COPY f g/
