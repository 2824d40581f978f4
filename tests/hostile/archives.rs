//! Archives, layers, outputs and contexts: symlink, hardlink and whiteout escapes, sparse and special files.
