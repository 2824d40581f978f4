//! The content store: corrupt blobs, mismatched diff_ids, removal under running builds, permissions.
