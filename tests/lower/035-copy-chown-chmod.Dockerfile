FROM busybox:local
COPY --chown=app:app --chmod=0640 a /a
COPY --chmod=u+x b /b
COPY --chown=1000 c /c/
