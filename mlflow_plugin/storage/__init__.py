"""OCI building blocks: references, descriptors, the image-layout store and the registry client."""
