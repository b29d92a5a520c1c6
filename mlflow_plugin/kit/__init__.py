"""The ModelKit format: Kitfile (yaml.v3 semantics, Go JSON), walking and ignoring, the kit-identical
tar writer, manifests, composition of layers, the file index, the safe-path rule, bounded
decompression and safe unpacking. Imports only storage's descriptors below it."""
