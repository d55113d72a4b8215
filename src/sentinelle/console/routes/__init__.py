"""The review console's pages, one module per area (each exports ``router``).

* :mod:`.review` -- login/logout, queue, case, previews, reveals, decisions, second
  review, report drafts, reviewer settings, breaks, transparency metrics;
* :mod:`.admin` -- preservation holds, audit trail, user accounts;
* :mod:`.password` -- changing one's own password.
"""
