"""Signing and verification formats: keys, DSSE/Sigstore bundles, cosign signatures, OpenSSF model signing."""
