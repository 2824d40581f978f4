chmod 700 sub/dir1
chmod 755 other/foo.go
