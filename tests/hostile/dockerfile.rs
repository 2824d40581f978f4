//! Dockerfiles: deep nesting, exponential expansion, quadratic instruction counts, bad encodings.
