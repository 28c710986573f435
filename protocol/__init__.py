"""The wire protocol of the subnet: what miners, validators and renters must agree on.

One home for it (DESIGN.md, "Wire protocol"), imported by every role and importing none:

- :mod:`protocol.headers`: HTTP header names;
- :mod:`protocol.sampling`: sampling parameters and the sampling rule itself (the miner draws
  with it, the verifier replays it);
- :mod:`protocol.proof`: the proof-of-inference wire format, the shared forward pass and the
  verifier;
- :mod:`protocol.challenge`: the free validator lane's signed challenge headers;
- :mod:`protocol.openai`: OpenAI request schemas and the ``latent`` field of responses.

``protocol`` uses ``chain`` (receipts, vouchers) and nothing of ``miner``, ``validator`` or
``renter``.
"""
