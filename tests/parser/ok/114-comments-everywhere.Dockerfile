# top comment
  # indented comment

FROM busybox

# between
RUN echo hi # trailing text is part of the command
	# tab-indented comment
CMD ["sh"]
