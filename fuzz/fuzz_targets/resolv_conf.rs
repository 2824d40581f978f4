//! The `resolv.conf` of a step on the default network, made from the host's: whatever the
//! host's file says, the step gets at least one nameserver, every nameserver an IPv4 address
//! it can reach (not loopback, not unspecified), and nothing that was not in the host's file
//! but slirp4netns's DNS forwarder.
#![no_main]

use std::collections::HashSet;
use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(host) = std::str::from_utf8(data) else {
        return;
    };
    let out = xbuild_runtime::resolv_conf(host);
    let from_host: HashSet<&str> = host.lines().map(|l| l.trim_end_matches('\r')).collect();
    let mut servers = 0;
    for line in out.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let addr: IpAddr = words
                .next()
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("unparsable nameserver line {line:?}"));
            assert!(
                addr.is_ipv4() && !addr.is_loopback() && !addr.is_unspecified(),
                "unreachable nameserver {addr} in {out:?}"
            );
            servers += 1;
        }
        assert!(
            from_host.contains(line) || line == "nameserver 10.0.2.3",
            "{line:?} is not from the host's file"
        );
    }
    assert!(servers >= 1, "no nameserver in {out:?}");
});
