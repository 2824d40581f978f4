FROM busybox
RUN ["echo", "unicode ♥ ☃", "escapes \" \\ \/ \t"]
RUN [ "spaced" ,  "array" ]
RUN ["a", "b"] trailing text makes it shell form
RUN [not json at all]
CMD [""]
