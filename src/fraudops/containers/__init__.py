"""The compose stack: docker-compose.yaml's images built from one Debian base and run in containers.

``fraudops compose ...`` (and ``make compose-up`` / ``make compose-test``) drive it: a Docker engine (started
from Debian's packages when none answers), the base image (pulled, or built with debootstrap when no registry
answers), the extra CA bundle staged into the build context, then docker compose itself.
"""
