"""Device tokens, campaigns, audiences, scheduling and dispatch through FCM."""
