from busybox
foo bar
