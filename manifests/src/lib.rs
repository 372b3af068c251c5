//! llama-manifests: checksum manifests, verification, download.
