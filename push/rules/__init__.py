"""The push capability's decisions, as pure functions (no I/O).

`templates`: message fields and size. `segments`: the audience language. `scheduling`: when each member
gets a message (their zone, best hour, quiet hours, lateness). `caps`: how many a member may get.
`groups`: control groups and variants. `outcomes`: what an FCM answer means. `report`: rates and lift.
"""
