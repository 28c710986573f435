"""Gas of SubnetToken operations: deploy, mint, transfer, approve, permit."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.client import deploy_contract
from chain.token import ONE, SubnetTokenClient


def measure(w3: Web3, accounts: list[LocalAccount]) -> dict[str, int]:
    owner, alice, bob = accounts[0], accounts[1], accounts[2]
    contract, receipt = deploy_contract(
        w3, "SubnetToken", owner.address, owner.address, sender=owner
    )
    token = SubnetTokenClient(w3, contract.address)
    gas = {"deploy": int(receipt["gasUsed"])}
    gas["mint"] = int(token.mint(alice.address, 1_000 * ONE, sender=owner)["gasUsed"])
    gas["transfer"] = int(token.transfer(bob.address, ONE, sender=alice)["gasUsed"])
    gas["approve"] = int(token.approve(bob.address, ONE, sender=alice)["gasUsed"])
    permit = token.sign_permit(alice, bob.address, ONE, 2**48)
    gas["permit"] = int(token.permit(permit, sender=bob)["gasUsed"])
    return gas
