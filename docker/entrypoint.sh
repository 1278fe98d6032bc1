#!/bin/sh
# Every NetForge container starts through this. A worker's distributed ranks advertise
# NETFORGE_DISTRIBUTED_HOST to the other ranks; unset, it is this container's own address (not the
# loopback), so replicas of a scaled worker service reach each other on the compose network. On
# several machines, set it to an address the other machines reach (see docs/operations.md).
set -e
# hostname -I lists the non-loopback addresses; hostname -i resolves the host name, which an
# /etc/hosts of the host's network (or a set hostname) can map to 127.0.0.1.
if [ -z "${NETFORGE_DISTRIBUTED_HOST:-}" ]; then
    NETFORGE_DISTRIBUTED_HOST="$(hostname -I 2>/dev/null | cut -d' ' -f1)"
    if [ -z "$NETFORGE_DISTRIBUTED_HOST" ]; then
        NETFORGE_DISTRIBUTED_HOST="$(hostname -i 2>/dev/null | cut -d' ' -f1)"
    fi
    export NETFORGE_DISTRIBUTED_HOST
fi
exec "$@"
