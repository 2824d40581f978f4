FROM alpine:3.19
CMD ["echo", "first"]
HEALTHCHECK CMD true
HEALTHCHECK CMD false
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo", "second"]
# expect-warning: MultipleInstructionsDisallowed
# expect-warning: MultipleInstructionsDisallowed
