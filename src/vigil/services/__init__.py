"""The service layer: every use case of Vigil, each owning its permission check, its
transaction and its audit entry, in one place.

The front ends (``vigil.cli``, ``vigil.api``, ``vigil.web``) translate arguments and results
and call these functions; they open no database session, write no audit entry and check no
permission themselves. Below this layer sit the runtime (``vigil.live``), persistence
(``vigil.store``), the models (``vigil.engine``), search (``vigil.index``) and the
accountability mechanics (``vigil.governance``: the permission table and the audit chain).

Every service function takes the application context (:class:`Vigil`) and the acting
user (:class:`Actor`) first. Inside, :func:`use_case` checks the permission, opens the
transaction and hands out a :class:`Unit` whose ``audit`` writes the entry in that same
transaction, so an action and its audit entry commit together or not at all.
"""

from vigil.governance.permissions import SYSTEM, Actor
from vigil.services.context import Vigil, forget_contexts, get_vigil
from vigil.services.unit import Unit, refuse, use_case

__all__ = ["Actor", "SYSTEM", "Unit", "Vigil", "forget_contexts", "get_vigil", "refuse", "use_case"]
