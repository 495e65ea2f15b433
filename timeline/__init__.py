"""Customer-time timeline: every interaction recorded, member traits and health score."""
