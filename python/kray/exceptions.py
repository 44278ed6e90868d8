# SPDX-License-Identifier: Apache-2.0
"""kray's exceptions, under the names and hierarchy of Ray's ``ray.exceptions``.

Code that catches ``ray.exceptions.X`` works unchanged with ``import kray as ray``.  Each
class also has a kray-named alias (``KrayError``, ``KrayTaskError``, ...).

A task that raises stores a :class:`RayTaskError` as its result; ``kray.get`` raises it
as an instance of both ``RayTaskError`` and the original exception's class, carrying the
remote traceback, so ``except ValueError`` still catches a remote ``ValueError``.
"""


class RayError(Exception):
    """The base of every error kray raises for a remote failure."""


class RaySystemError(RayError):
    """kray itself failed (a malformed object, an internal error in krayd)."""


class CrossLanguageError(RayError):
    """A C remote function failed, or a call between languages could not be made."""


class RayTaskError(RayError):
    """A task or actor method raised.  ``cause`` is the original exception (None if it
    could not be pickled) and ``traceback_str`` the remote traceback."""

    def __init__(self, function_name="", traceback_str="", cause=None, proctitle="",
                 pid=None, ip="127.0.0.1", actor_repr=None, actor_id=None):
        self.function_name = function_name
        self.traceback_str = traceback_str
        self.cause = cause
        self.proctitle = proctitle
        self.pid = pid
        self.ip = ip
        self.actor_repr = actor_repr
        self.actor_id = actor_id
        super().__init__(self._message())

    def _message(self):
        where = f" (pid={self.pid}, ip={self.ip})" if self.pid else ""
        head = f"{type(self.cause).__name__ if self.cause is not None else 'RayTaskError'}"
        return (f"{self.function_name}(){where} failed with {head}:\n"
                f"{self.traceback_str.rstrip()}")

    def __reduce__(self):
        return (_rebuild_task_error, (type(self).__name__, self.function_name,
                                      self.traceback_str, self.cause, self.pid,
                                      self.actor_repr))

    def __str__(self):
        return self._message()

    def as_instanceof_cause(self):
        """This error as an instance of a class deriving from both RayTaskError and the
        cause's class (as Ray does), so handlers for the original type catch it."""
        cause_cls = type(self.cause) if self.cause is not None else None
        if cause_cls is None or issubclass(RayTaskError, cause_cls):
            return self
        try:
            cls = _dual_classes.get(cause_cls)
            if cls is None:
                name = f"RayTaskError({cause_cls.__name__})"
                cls = type(name, (RayTaskError, cause_cls), {
                    "__init__": _dual_init,
                    "__getattr__": _dual_getattr,
                    "__str__": RayTaskError.__str__,
                    "__reduce__": RayTaskError.__reduce__,
                    "__module__": cause_cls.__module__,
                })
                cls.__qualname__ = name
                _dual_classes[cause_cls] = cls
            return cls(self)
        except TypeError:  # a cause class that cannot be subclassed (final, layout)
            return self


_dual_classes = {}


def _dual_init(self, err):
    # Copy the fields without running the cause class's __init__ (its signature is
    # unknown); args stay the cause's, as the original exception had them.
    self.__dict__.update(err.__dict__)
    self.args = err.cause.args if err.cause is not None else ()


def _dual_getattr(self, name):
    cause = self.__dict__.get("cause")
    if cause is None or name.startswith("__"):
        raise AttributeError(name)
    return getattr(cause, name)


def _rebuild_task_error(_name, function_name, traceback_str, cause, pid, actor_repr):
    return RayTaskError(function_name, traceback_str, cause, pid=pid, actor_repr=actor_repr)


class TaskCancelledError(RayError):
    """The task was cancelled (kray.cancel) before it finished."""

    def __init__(self, task_id=None, message=None):
        self.task_id = task_id
        super().__init__(message or "This task or its dependency was cancelled")


class GetTimeoutError(RayError, TimeoutError):
    """kray.get's timeout passed before the objects were ready."""


class TaskTimeoutError(RayError, TimeoutError):
    """The task ran past its ``timeout_s`` option (a kray extension: Ray has none); its
    worker was killed and replaced, and the task was not retried."""


class RayActorError(RayError):
    """An actor could not run the call: it died, or could not be created."""

    def __init__(self, message="The actor died unexpectedly before finishing this task.",
                 actor_id=None):
        self.actor_id = actor_id
        super().__init__(message)


class ActorDiedError(RayActorError):
    """The actor is dead: killed, crashed past max_restarts, its constructor failed, or
    its creator exited."""


class ActorUnavailableError(RayActorError):
    """The actor is restarting."""


class WorkerCrashedError(RayError):
    """The worker running the task died (max_retries + 1 times)."""

    def __init__(self, message="The worker died unexpectedly while executing this task."):
        super().__init__(message)


class ObjectLostError(RayError):
    """The object does not exist any more (freed, or this process never held it)."""

    def __init__(self, message="The object was lost.", object_ref_hex=None):
        self.object_ref_hex = object_ref_hex
        super().__init__(message)


class OwnerDiedError(ObjectLostError):
    """The owner of the object died.  kray keeps objects in krayd, so a process's death
    does not lose them; a borrower on another node gets this when the owner's node died
    and the object cannot be fetched or rebuilt."""


class ObjectStoreFullError(RayError):
    """The object store is full and nothing more could be spilled."""


class ObjectFetchTimedOutError(ObjectLostError):
    """An object could not be fetched in time (a cluster error; not raised on one node)."""


class OutOfMemoryError(RayError):
    """A worker was killed for using too much memory."""


class RuntimeEnvSetupError(RayError):
    """Not raised by kray (a runtime_env it cannot set up fails the task or the actor's
    creation with the cause); defined for compatibility."""


class TaskUnschedulableError(RayError):
    """The task's scheduling strategy cannot be met: NodeAffinitySchedulingStrategy with
    soft=False names a node that is dead, unknown, or lacks the task's resources."""


class ActorUnschedulableError(RayError):
    """The actor's scheduling strategy cannot be met (as TaskUnschedulableError)."""


class ObjectFreedError(ObjectLostError):
    """The object was freed explicitly (Ray's internal free()); defined for
    compatibility."""


class ReferenceCountingAssertionError(ObjectLostError, AssertionError):
    """The object was deleted while a reference to it was still held (a reference
    counting bug): as Ray's, for compatibility."""


class ObjectReconstructionFailedError(ObjectLostError):
    """The object was lost and rebuilding it from its lineage failed."""


class ObjectReconstructionFailedMaxAttemptsExceededError(ObjectLostError):
    """The object was lost and its task is out of retries (max_retries) to rebuild it."""


class ObjectReconstructionFailedLineageEvictedError(ObjectLostError):
    """The object was lost and its lineage is no longer kept, so it cannot be rebuilt."""


class NodeDiedError(RayError):
    """The node a task, an actor or an object was on died."""


class LocalRayletDiedError(RayError):
    """This node's daemon (krayd, Ray's raylet) died."""


class OutOfDiskError(RayError):
    """The object store could not spill: the disk is full."""


class PendingCallsLimitExceeded(RayError):
    """An actor handle has more calls pending than its max_pending_calls."""


class AsyncioActorExit(RayError):
    """Raised by exit_actor() in an async actor to end it (as Ray's)."""


class RayChannelError(RaySystemError):
    """A compiled-graph channel failed (Ray's accelerated DAGs; kray has none)."""


class UnserializableException(RayError):
    """An exception a task raised that could not be serialized: its text stands in for
    it."""

    def __init__(self, original_stack_trace=""):
        self.original_stack_trace = original_stack_trace
        super().__init__(original_stack_trace)


# kray-named equivalents.
KrayError = RayError
KraySystemError = RaySystemError
KrayTaskError = RayTaskError
KrayActorError = RayActorError

__all__ = [n for n, v in list(globals().items())
           if isinstance(v, type) and issubclass(v, RayError)]
