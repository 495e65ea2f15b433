"""HTTP surface: translates requests to service calls; holds no business rule."""
