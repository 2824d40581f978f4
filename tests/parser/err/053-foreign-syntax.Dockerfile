# syntax=example.com/my/frontend:2
FROM busybox
