"""One module per schema revision, hand-reviewed."""
