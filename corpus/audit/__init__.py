"""What auditors read: the run record (`manifest`: manifest.json, `verify`), extraction statistics (`stats`) and
the report (`report`: report.html)."""
