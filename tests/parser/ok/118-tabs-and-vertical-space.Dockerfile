FROM	busybox
RUN	echo	tabs
ENV	A=1
