"""thinc architectures and layers: the registered model builders and the glue between
the transformer listener and the torch span model."""
