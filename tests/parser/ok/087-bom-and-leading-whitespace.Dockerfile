FROM busybox
   RUN echo indented
		COPY a /b
