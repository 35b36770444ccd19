"""Local servers on 127.0.0.1 (Label Studio, Redis) and the one-command quickstart built on them."""
