# check=skip=A;nope=1
FROM busybox
