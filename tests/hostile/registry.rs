//! Registries: oversized and endless responses from a fake registry on 127.0.0.1.
