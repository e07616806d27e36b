"""The stages of the flow, in order: land → register → parse → (check) → load → transform → publish
→ report. A stage imports only earlier stages (tests/test_architecture.py keeps it so)."""
