FROM busybox:local
ADD app.conf /etc/
ADD --chown=1000:1000 app.conf /home/user/
COPY app.* /copies/
RUN ls -ln /etc/app.conf /home/user/app.conf /copies
