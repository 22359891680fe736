"""Readable names for flow runs ("brisk-heron"), so people can tell runs apart at a glance."""

from __future__ import annotations

import random

ADJECTIVES = (
    "amber brave brisk calm clever cosmic crimson daring eager fancy gentle golden hasty "
    "humble jolly keen lively lucky mellow merry nimble noble olive plucky proud quick quiet "
    "rapid rosy rustic scarlet shiny silent sleek snowy solar spry steady stellar sunny swift "
    "tidal vivid warm wild witty zesty"
).split()
NOUNS = (
    "albatross badger beacon bison cargo comet cormorant crane dolphin falcon ferry gannet "
    "harbor heron jetty kestrel lantern lighthouse marlin narwhal orca osprey otter pelican "
    "petrel puffin quay raven schooner seal skiff sloop sparrow swan tern tug walrus whale "
    "wharf"
).split()


def run_name() -> str:
    return f"{random.choice(ADJECTIVES)}-{random.choice(NOUNS)}"
