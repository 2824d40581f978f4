FROM golang:1.22
RUN mkdir -p /usr/src/app
WORKDIR /usr/src/app
ONBUILD COPY . /go/src/app
ONBUILD RUN go get -d -v ./...
ONBUILD RUN go install -v ./...
CMD ["sh", "-c", "echo override me"]
