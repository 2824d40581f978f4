FROM busybox
RUN cat <<A > /a && cat <<B > /b
alpha
A
bravo
B
RUN <<X <<Y cat /dev/stdin
Y
X
X
Y
