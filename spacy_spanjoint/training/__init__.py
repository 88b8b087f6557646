"""Training aids: optimizers, gradient clipping, parameter averaging and the span
model's learn-rate scale."""
