"""Toledo continuous-output scale indicators (protocols.md §2.2)."""
