"""AWS IoT Core: mutual TLS, client id = thing name, QoS ≤ 1, 128 KB (protocols.md §6.3).

AWS takes storegw's contract as it is (free-form topics, retained messages, last will), so
the profile is the generic one; what differs is checked in config (client certificate,
topic depth, payload size) and the TLS context (ALPN `x-amzn-mqtt-ca` on port 443).
"""

from __future__ import annotations

from gateway.clouds.base import Profile

ALPN = "x-amzn-mqtt-ca"  # MQTT with X.509 on port 443 (AWS "Protocols, port mappings")
MAX_TOPIC_SLASHES = 7  # AWS quota: at most 7 forward slashes in a topic


class AwsProfile(Profile):
    """`aws-iot`: the generic topics and presence; QoS 1; the thing name as client id."""

    name = "aws-iot"
