FROM busybox AS base
Run echo mixed
rUN echo odd
CMD true
