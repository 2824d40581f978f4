FROM busybox
ADD --link= a /b
