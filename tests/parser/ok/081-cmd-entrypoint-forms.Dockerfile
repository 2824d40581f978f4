FROM busybox
CMD echo shell form
CMD ["echo", "exec", "form"]
CMD ['single', 'quotes', 'are', 'shell', 'form']
CMD ["trailing", "comma",]
ENTRYPOINT ["/bin/sh", "-c"]
ENTRYPOINT /bin/sh -c 'exec "$@"'
CMD []
