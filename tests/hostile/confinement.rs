//! RUN confinement: seccomp, capability sets, the isolated default network and its entitlement.
