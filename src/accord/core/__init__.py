"""The dependency-free core: errors, key grammar, value codec, masking and retry helpers."""
