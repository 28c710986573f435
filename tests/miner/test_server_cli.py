"""``latent miner run``'s serving path end to end on anvil: real escrow, voucher book, keeper.

``serve_miner`` is what ``latent miner run`` calls after parsing flags; here it serves the
tiny model on a free port, a renter pays two requests with vouchers for a channel opened on
the deployed PaymentEscrow, and the settlement keeper settles the booked voucher on-chain.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from typer.testing import CliRunner
from web3 import Web3

from chain.client import deploy_contract
from chain.errors import LatentError
from chain.escrow import EscrowClient
from chain.metagraph import MetagraphClient
from chain.receipts import Receipt
from chain.token import SubnetTokenClient
from chain.vouchers import VoucherBook, encode_voucher_header, sign_voucher
from miner.cli import app, serve_miner
from miner.config import MinerConfig, PaymentConfig, PricingConfig, ServerConfig
from protocol.challenge import challenge_headers
from protocol.headers import VOUCHER_HEADER

ONE = 10**18


def test_serve_miner_takes_paid_requests_and_settles_them(
    w3: Web3,
    token: SubnetTokenClient,
    accounts: list[LocalAccount],
    fresh_chain: Web3,
    tiny_model_path: Path,
    tmp_path: Path,
) -> None:
    owner, renter, miner, coldkey, validator = (
        accounts[0],
        accounts[1],
        accounts[2],
        accounts[3],
        accounts[4],
    )
    escrow, _ = EscrowClient.deploy(w3, sender=owner, reward_pool=accounts[9].address)
    graph_contract, _ = deploy_contract(w3, "Metagraph", token.address, owner.address, sender=owner)
    graph = MetagraphClient(w3, graph_contract.address)
    token.mint(coldkey.address, 1000 * ONE, sender=owner)
    graph.register(coldkey, miner, "")
    graph.register(coldkey, validator, "")
    graph.add_stake(coldkey, validator.address, ONE)
    graph.update_permits(coldkey)
    token.mint(renter.address, 100 * ONE, sender=owner)
    token.approve(escrow.address, 100 * ONE, sender=renter)
    cid, _ = escrow.open(miner.address, token.address, b"\x05" * 32, 100 * ONE, sender=renter)
    chain_id = int(w3.eth.chain_id)
    book_path = tmp_path / "vouchers.json"
    config = MinerConfig(
        model_path=str(tiny_model_path),
        device="cpu",
        rpc_url=w3.provider.endpoint_uri,  # type: ignore[attr-defined]
        metagraph_address=graph.address,
        public_url="http://miner.example:8000",
        server=ServerConfig(port=0, model_id="tiny"),
        pricing=PricingConfig(per_prompt_token=10**15, per_completion_token=10**15),
        payment=PaymentConfig(
            escrow_address=escrow.address,
            token_address=token.address,
            chain_id=chain_id,
            voucher_book_path=str(book_path),
            settle_interval_s=0.2,
            min_settle_amount=1,
        ),
    )

    async def scenario() -> None:
        stop = asyncio.Event()
        ready: asyncio.Queue[str] = asyncio.Queue()
        serving = asyncio.create_task(
            serve_miner(config, miner, stop=stop, on_ready=ready.put_nowait)
        )
        try:
            waiting = asyncio.create_task(ready.get())
            await asyncio.wait({waiting, serving}, timeout=60, return_when="FIRST_COMPLETED")
            if serving.done():
                serving.result()  # startup failed: raise its error
            url = waiting.result()
            owed = 0
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                for prompt in ("first", "second"):
                    voucher = sign_voucher(
                        renter,
                        escrow=escrow.address,
                        chain_id=chain_id,
                        channel_id=cid,
                        cumulative_amount=owed,
                    )
                    response = await client.post(
                        "/v1/completions",
                        json={"model": "tiny", "prompt": prompt, "max_tokens": 6},
                        headers={VOUCHER_HEADER: encode_voucher_header(voucher)},
                    )
                    assert response.status_code == 200, response.text
                    receipt = Receipt.from_json(response.json()["latent"]["receipt"])
                    assert receipt.miner == miner.address
                    owed += receipt.price
                challenge = json.dumps({"model": "tiny", "prompt": "check", "max_tokens": 3})
                free = await client.post(
                    "/v1/completions",
                    content=challenge,
                    headers=challenge_headers(
                        validator, miner=miner.address, body=challenge.encode()
                    ),
                )
                assert free.status_code == 200, free.text
                assert free.json()["latent"]["access"] == "validator"
                no_permit = await client.post(
                    "/v1/completions",
                    content=challenge,
                    headers=challenge_headers(renter, miner=miner.address, body=challenge.encode()),
                )
                assert no_permit.status_code == 403
                unpaid = await client.post(
                    "/v1/completions", json={"model": "tiny", "prompt": "x", "max_tokens": 2}
                )
                assert unpaid.status_code == 402
                assert unpaid.json()["quote"]["escrow"] == escrow.address
            first_price = int(
                json.loads(book_path.read_text())["vouchers"]["0x" + cid.hex()]["cumulative_amount"]
            )
            assert 0 < first_price < owed
            # the keeper settles the booked voucher (the first response's price)
            for _ in range(100):
                channel = await asyncio.to_thread(escrow.channel, cid)
                if channel.settled == first_price:
                    break
                await asyncio.sleep(0.1)
            assert channel.settled == first_price
        finally:
            stop.set()
            await asyncio.wait_for(serving, timeout=30)

    asyncio.run(scenario())
    published = graph.snapshot().by_hotkey(miner.address)
    assert published is not None and published.endpoint == "http://miner.example:8000"
    book = VoucherBook(book_path)
    latest = book.latest(cid)
    assert latest is not None and latest.cumulative_amount > 0


def test_run_with_unreachable_rpc_fails_with_an_actionable_error(tiny_model_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["run", "--model", str(tiny_model_path), "--port", "0", "--rpc-url", "http://127.0.0.1:1"],
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, LatentError)  # the top-level wrapper prints one line
    assert "127.0.0.1:1" in str(result.exception)


@pytest.mark.parametrize("flag", ["--help"])
def test_run_help_lists_the_flags(flag: str) -> None:
    result = CliRunner().invoke(app, ["run", flag])
    assert result.exit_code == 0
    for option in ("--model", "--escrow", "--price-prompt", "--max-queue-depth", "--offline"):
        assert option in result.output


def test_price_flags_are_tokens_per_million_unless_base_units() -> None:
    from miner.cli import _base_amount, _price

    assert _price("1", False, "--price-prompt") == 10**12  # 1 LAT per 1M tokens
    assert _price("0.5", False, "--price-prompt") == 5 * 10**11
    assert _price("1000000000000", True, "--price-prompt") == 10**12
    assert _base_amount("0.01", False, "--min-settle") == 10**16
    assert _base_amount("7", True, "--min-settle") == 7
    with pytest.raises(LatentError, match="--price-prompt: price '-1' must be >= 0 tokens per 1M"):
        _price("-1", False, "--price-prompt")
    with pytest.raises(LatentError, match="whole number of base units"):
        _price("0.5", True, "--price-prompt")
