# check=skip=all
from alpine:3.19 as Builder
maintainer nobody
env FOO bar
workdir relative/dir
cmd echo $UNDEFINED_THING
