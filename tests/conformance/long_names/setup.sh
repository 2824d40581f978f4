n=$(printf 'c%.0s' $(seq 1 120))
mkdir -p ctx/$n/$n && echo ctx > ctx/$n/$n/$n && ln -s $n/$n/$n ctx/long-target
