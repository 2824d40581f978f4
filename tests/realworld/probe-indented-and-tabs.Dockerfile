FROM alpine:3.19
	RUN echo "indented with a tab"
    ENV A=1 \
	    B=2
  # an indented comment
  COPY . /src
	CMD ["sh"]
