"""Bittensor bridge: score real subnets and post weights to a subtensor node.

Pure core, I/O at the edges. Everything that can be a pure function over plain data is one:

- :mod:`chain.bittensor.ss58`: SS58 addresses and the EVM H160 -> SS58 mirror
  (``blake2_256(b"evm:" + h160)``, prefix 42).
- :mod:`chain.bittensor.scale`: the SCALE reader the decoders use.
- :mod:`chain.bittensor.metagraph`: ``NeuronInfoLite`` / weight-row / hyperparameter decoding
  into frozen dataclasses keyed by hotkey.
- :mod:`chain.bittensor.weights`: scores -> u16 max-upscaled weights exactly as the SDK
  quantises them, conformed to ``max_weight_limit`` / ``min_allowed_weights``.
- :mod:`chain.bittensor.timelock`: the drand quicknet reveal round from the subnet's epoch
  schedule and the ``WeightsTlockPayload`` plaintext (``bittensor-drand`` encrypts it).
- :mod:`chain.bittensor.errors`: every refusal subtensor gives, as a typed
  :class:`chain.errors.LatentError` whose message says what to do.

I/O lives in :mod:`chain.bittensor.client` (a ``substrate-interface`` ``SubstrateInterface``
passed in), :mod:`chain.bittensor.keyfile` (Bittensor wallet hotkey files),
:mod:`chain.bittensor.evm` (web3 reads of the EVM precompiles) and
:mod:`chain.bittensor.target` (what a validator loop calls).
"""
