"""What every part of the console shares, below both apps: the errors a person reads, the
shape of a state machine's guarded transition, the seam through which services schedule
work, the one CSV writer, and the confirmation pages of the admin.

Nothing here imports the apps: ``customers`` and ``migrations_jobs`` import from here.
"""
