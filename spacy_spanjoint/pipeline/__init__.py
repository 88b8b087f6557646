"""The pipeline: the `spanjoint` component, its scorer, and `doc._.relations`."""
