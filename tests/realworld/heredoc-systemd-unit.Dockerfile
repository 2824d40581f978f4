# syntax=docker/dockerfile:1
FROM fedora:39
RUN dnf -y install systemd && dnf clean all
COPY <<-"UNIT" /etc/systemd/system/app.service
	[Unit]
	Description=App
	[Service]
	ExecStart=/usr/local/bin/app
	Restart=always
	[Install]
	WantedBy=multi-user.target
UNIT
RUN systemctl enable app.service
STOPSIGNAL SIGRTMIN+3
CMD ["/sbin/init"]
