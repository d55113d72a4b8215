"""Review console service layer: accounts, roles, cases, decisions, exposure.

Modules (each documents its API; the console UI and the HTTP routes call them):

* :mod:`.intake` -- ``record_signal``: detections become case items
* :mod:`.media` -- ``attach_media`` / ``preserve_media``: encrypted media on items
* :mod:`.accounts` -- users, argon2 passwords, TOTP, lockout, sessions
* :mod:`.roles` -- roles and the permission matrix
* :mod:`.cases` -- queues, assignment, passing a case, the case view
* :mod:`.decisions` -- confirm / reject, second review, webhooks, report drafts,
  false-positive statistics
* :mod:`.exposure` -- per-user settings, daily exposure counter, break reminders
* :mod:`.config` -- console-wide settings (second review, caps)
"""
