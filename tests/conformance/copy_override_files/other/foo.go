other-contents
