"""The emulated HealthImaging service: its HTTP front end and its rules.

``wire`` turns requests into validated inputs (from botocore's model), ``handlers`` maps
each operation to the backend, and ``backend`` (with ``rules/``) holds the state and the
service's rules, persisted by ``store``; ``records`` are what an import hands the backend.
"""
