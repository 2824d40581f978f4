FROM alpine:3.19 AS context
RUN echo hi > /hi

FROM alpine:3.19
COPY --from=context /hi /hi
# expect-warning: ReservedStageName
