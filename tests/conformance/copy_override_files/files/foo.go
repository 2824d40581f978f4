foo.go-contents
