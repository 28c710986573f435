"""Gas of PaymentEscrow operations, from real receipts on anvil.

Reported cases (each the steady-state cost a miner or renter pays over and over):

- ``settle``: a *repeat* settle on a channel (slot 0 of the channel already non-zero, so the
  write is non-zero -> non-zero). ``settle_first`` is the first settle on a fresh channel;
  it costs the same because the deposit already lives in that slot.
- ``settleMany_10``: ten repeat vouchers on ten channels in one transaction
  (``settleMany_10_per_voucher`` = that / 10).
- ``claim`` / ``claim_10``: paying out settled earnings of 1 / 10 channels in one transfer,
  to a miner that already holds tokens, with fees already accrued (steady state).
- ``close`` = ``requestClose``; ``withdraw`` after the grace period; ``cooperativeClose``
  with a final voucher.

Amortised gas per paid request (signing a voucher per request is off-chain and free):

- ``amortised_per_request_at_100 = ceil(settle / 100)``: one settle per 100 requests.
- ``amortised_per_request_at_100_with_claim = ceil((settle + claim) / 100)``: the worst
  case, a claim after every settle. A claim pays out any number of settles and channels at
  once, so a miner claiming every k settles pays ``claim / (100 k)`` per request on top.
"""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.client import deploy_contract
from chain.escrow import EscrowClient
from chain.node import increase_time
from chain.token import ONE, SubnetTokenClient
from chain.vouchers import Voucher, sign_voucher


def _salt(n: int) -> bytes:
    return n.to_bytes(32, "big")


def measure(w3: Web3, accounts: list[LocalAccount]) -> dict[str, int]:
    """operation -> gas used (see the module docs for which case each figure is)."""
    owner, renter, miner, renter2, pool = (
        accounts[0],
        accounts[1],
        accounts[2],
        accounts[3],
        accounts[9],
    )
    contract, _ = deploy_contract(w3, "SubnetToken", owner.address, owner.address, sender=owner)
    token = SubnetTokenClient(w3, contract.address)
    escrow, deploy_receipt = EscrowClient.deploy(w3, sender=owner, reward_pool=pool.address)
    for who in (renter, renter2, miner):
        token.mint(who.address, 1_000 * ONE, sender=owner)
    token.approve(escrow.address, 2**256 - 1, sender=renter)
    chain_id = int(w3.eth.chain_id)

    def voucher(cid: bytes, amount: int) -> Voucher:
        return sign_voucher(
            renter,
            escrow=escrow.address,
            chain_id=chain_id,
            channel_id=cid,
            cumulative_amount=amount,
        )

    gas: dict[str, int] = {"deploy": int(deploy_receipt["gasUsed"])}
    cid, receipt = escrow.open(miner.address, token.address, _salt(0), 10 * ONE, sender=renter)
    gas["open"] = int(receipt["gasUsed"])

    permit = token.sign_permit(renter2, escrow.address, 10 * ONE, 2**40)
    _, receipt = escrow.open_with_permit(
        miner.address, token.address, _salt(0), permit, sender=renter2
    )
    gas["openWithPermit"] = int(receipt["gasUsed"])

    gas["topUp"] = int(escrow.top_up(cid, ONE, sender=renter)["gasUsed"])
    gas["settle_first"] = int(escrow.settle(voucher(cid, 10**15), sender=miner)["gasUsed"])
    gas["settle"] = int(escrow.settle(voucher(cid, 2 * 10**15), sender=miner)["gasUsed"])
    escrow.claim_earnings([cid], sender=miner)  # first claim: fee slot and balances become non-zero
    escrow.settle(voucher(cid, 3 * 10**15), sender=miner)
    gas["claim"] = int(escrow.claim_earnings([cid], sender=miner)["gasUsed"])

    cids = [
        escrow.open(miner.address, token.address, _salt(n), ONE, sender=renter)[0]
        for n in range(1, 11)
    ]
    escrow.settle_many([voucher(c, 10**15) for c in cids], sender=miner)
    escrow.claim_earnings(cids, sender=miner)
    receipt = escrow.settle_many([voucher(c, 2 * 10**15) for c in cids], sender=miner)
    gas["settleMany_10"] = int(receipt["gasUsed"])
    gas["settleMany_10_per_voucher"] = -(-gas["settleMany_10"] // 10)
    gas["claim_10"] = int(escrow.claim_earnings(cids, sender=miner)["gasUsed"])
    gas["sweepFees"] = int(escrow.sweep_fees(token.address, sender=miner)["gasUsed"])

    escrow.settle(voucher(cids[0], 3 * 10**15), sender=miner)
    gas["cooperativeClose"] = int(
        escrow.cooperative_close(cids[0], voucher(cids[0], 4 * 10**15), sender=miner)["gasUsed"]
    )

    gas["close"] = int(escrow.request_close(cid, sender=renter)["gasUsed"])
    increase_time(w3, escrow.grace_period())
    gas["withdraw"] = int(escrow.withdraw(cid, sender=renter)["gasUsed"])

    gas["amortised_per_request_at_100"] = -(-gas["settle"] // 100)
    gas["amortised_per_request_at_100_with_claim"] = -(-(gas["settle"] + gas["claim"]) // 100)
    return gas
