ARG IMG=busybox:local
FROM $IMG
RUN true
