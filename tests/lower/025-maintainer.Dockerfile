FROM busybox:local
MAINTAINER someone <x@y>
