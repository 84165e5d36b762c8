"""Model backends behind one protocol: `generate(requests)` and `score(requests)`."""
