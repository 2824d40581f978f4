from busybox as base
run echo lower
env a=1
copy . /src
workdir /src
cmd ["true"]
