//! Remote workers: hostile manifests and requests from an authenticated client, listener policy.
