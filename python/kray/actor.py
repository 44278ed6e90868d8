# SPDX-License-Identifier: Apache-2.0
"""``ray.actor``: the actor types, and exit_actor() for an actor to end itself."""
from ._remote import ActorClass, ActorHandle, ActorMethod, method  # noqa: F401 (Ray's names)


def exit_actor():
    """Ends the calling actor for good, as ``ray.actor.exit_actor()``: it is not
    restarted, the call that asked gets ActorDiedError, and later calls fail."""
    from . import _kray, _worker
    a = _worker.actor_id
    if a is None:
        raise TypeError("exit_actor API is called on a non-actor worker. Call this API "
                        "inside an actor method if you'd like to exit the actor "
                        "gracefully.")
    _kray.kill(_kray.Ref(*a), True)
    raise SystemExit(0)  # not reached once krayd has stopped this process
