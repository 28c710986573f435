"""A miner box needs no Node.js and no compiler: the installed package carries the ABIs.

The project is installed (not editable: a wheel built by pip) into a fresh virtual
environment whose dependencies come from the development one (a plain path entry, so the
development tree's editable install is not seen). The installed ``latent`` then runs with a
``PATH`` holding nothing but that environment's ``bin``: no node, no npm, no solc. It serves a
paid request as ``latent miner run`` against contracts deployed on anvil, and
``latent miner settle`` settles the voucher on chain.
"""

from __future__ import annotations

import shutil
import signal
import site
import subprocess
import sys
import time
from pathlib import Path

import httpx
from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain.client import deploy_contract
from chain.escrow import EscrowClient
from chain.metagraph import MetagraphClient
from chain.node import free_port
from chain.paths import REPO_ROOT
from chain.receipts import Receipt
from chain.token import SubnetTokenClient
from chain.vouchers import encode_voucher_header, sign_voucher
from protocol.headers import VOUCHER_HEADER

ONE = 10**18


def _source_copy(dest: Path) -> Path:
    """The working tree's source files (tracked or not ignored), nothing built: a stale
    ``build/`` would otherwise slip old package data into the wheel."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def _install(venv: Path) -> Path:
    """A fresh venv with the project installed from a wheel; returns its ``bin``."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (purelib,) = venv.glob("lib/python*/site-packages")
    # the dependencies (torch, web3...) of the development venv, without its .pth files
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (purelib / "_latent_deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--quiet", "--no-deps", "--no-build-isolation", "--no-compile", str(_source_copy(venv.parent / "src"))],
        check=True, cwd=venv, capture_output=True,
    )  # fmt: skip
    return venv / "bin"


def test_installed_miner_serves_and_settles_without_node(
    w3: Web3,
    token: SubnetTokenClient,
    accounts: list[LocalAccount],
    fresh_chain: Web3,
    tiny_model_path: Path,
    tmp_path: Path,
) -> None:
    bindir = _install(tmp_path / "venv")
    env = {
        "PATH": str(bindir),  # nothing else: no node, npm or solc can be found
        "HOME": str(tmp_path / "home"),
        "LATENT_DEPLOYMENTS_DIR": str(tmp_path / "deployments"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    assert not any(shutil.which(tool, path=env["PATH"]) for tool in ("node", "npm", "solc"))
    where = subprocess.run(
        [str(bindir / "python"), "-c", "import chain, miner; print(chain.__file__, miner.__file__)"],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert str(tmp_path / "venv") in where.stdout, "the installed copy must be the one imported"

    owner, renter, miner, coldkey = accounts[0], accounts[1], accounts[2], accounts[3]
    escrow, _ = EscrowClient.deploy(w3, sender=owner, reward_pool=accounts[9].address)
    graph_contract, _ = deploy_contract(w3, "Metagraph", token.address, owner.address, sender=owner)
    graph = MetagraphClient(w3, graph_contract.address)
    token.mint(coldkey.address, 1000 * ONE, sender=owner)
    graph.register(coldkey, miner, "")
    token.mint(renter.address, 10 * ONE, sender=owner)
    token.approve(escrow.address, 10 * ONE, sender=renter)
    cid, _ = escrow.open(miner.address, token.address, b"\x07" * 32, 10 * ONE, sender=renter)
    rpc = w3.provider.endpoint_uri  # type: ignore[attr-defined]
    chain_flags = ["--rpc-url", rpc, "--escrow", escrow.address, "--dev-account", "2"]
    port = free_port()
    log = (tmp_path / "miner.log").open("w")
    server = subprocess.Popen(
        [str(bindir / "latent"), "miner", "run", "--model", str(tiny_model_path),
         "--model-id", "tiny", "--device", "cpu", "--port", str(port),
         "--metagraph", graph.address, "--token", token.address, *chain_flags],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "miner.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "miner did not start"
            time.sleep(0.3)

        def paid_completion(owed: int, prompt: str, max_tokens: int) -> int:
            """POST with a voucher for ``owed`` so far; the answer's price."""
            voucher = sign_voucher(
                renter,
                escrow=escrow.address,
                chain_id=int(w3.eth.chain_id),
                channel_id=cid,
                cumulative_amount=owed,
            )
            reply = httpx.post(
                f"{url}/v1/completions",
                json={"model": "tiny", "prompt": prompt, "max_tokens": max_tokens},
                headers={VOUCHER_HEADER: encode_voucher_header(voucher)},
                timeout=60,
            )
            assert reply.status_code == 200, reply.text
            return Receipt.from_json(reply.json()["latent"]["receipt"]).price

        price = paid_completion(0, "no node here", 5)
        # the next voucher pays for the delivered answer; the miner books it
        paid_completion(price, "again", 1)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
        log.close()
    settle = subprocess.run(
        [str(bindir / "latent"), "miner", "settle", *chain_flags, "--gas-price-gwei", "0",
         "--json"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert settle.returncode == 0, settle.stderr
    assert "Traceback" not in settle.stderr
    assert escrow.channel(cid).settled == price > 0
