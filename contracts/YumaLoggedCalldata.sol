// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IYumaConsensus} from "./interfaces/IYumaConsensus.sol";

/// @title YumaLoggedCalldata
/// @notice What `YumaConsensus` keeps in logs instead of storage, and takes back as calldata:
/// the bond words of the last epoch (`BondWords`, one hash per packed word of 16 uids) and the
/// validator rows' running sums of the running epoch (`RowSums`, one hash). A caller of
/// `runEpoch` passes them back; each is checked against its hash before it is used. The
/// consensus vector, the third calldata input, is not logged: the column pass checks it.
/// @dev `EpochClient.old_bond_words` / `row_sums` (`chain/epoch.py`) read the logs and check
/// them against `bondHashes()` / `rowSumsHash()` before sending them.
abstract contract YumaLoggedCalldata is IYumaConsensus {
    /// @dev Where the call's consensus vector and old bond words lie in calldata.
    struct Inputs {
        uint256 consensusLength;
        uint256 consensus;
        uint256 bondsLength;
        uint256 bonds;
    }

    /// @dev A column call's walk through the old bond words it was given: groups come in
    /// order, each takes `words` words when its old hash is non-zero, none otherwise.
    struct OldBonds {
        uint256 offset; // calldata offset of group `group`'s old bond words
        uint256 end; // end of the call's bond words
        uint256 group; // the group `offset` and `hash` belong to
        bytes32 hash; // that group's old bond hash (0: every old word is zero, none passed)
        uint256 words; // rows of the epoch that wrote the old words: words per group
        bool verified; // the group's words were checked against `hash` in this call
    }

    /// @dev keccak256 of the running epoch's row sums as the last column call left them (one
    /// word per row: trust, low 64 bits | rank-weighted bond sum, high 192 bits).
    bytes32 private _rowSumsHash;
    /// @dev Per packed word of 16 uid columns: keccak256 of the bond words the last epoch
    /// wrote, one per row of that epoch (ascending uid), 0 when all were zero.
    bytes32[16] private _bondHash;

    function _inputs(bytes calldata consensus, bytes calldata bonds) internal pure returns (Inputs memory) {
        return Inputs(consensus.length, _offset(consensus), bonds.length, _offset(bonds));
    }

    function _offset(bytes calldata data) private pure returns (uint256 off) {
        assembly {
            off := data.offset
        }
    }

    // ------------------------------------------------------------ consensus vector

    /// @dev Calldata offset of the consensus vector, 0 when the call brought none (a real
    /// offset is past the selector); reverts unless it holds 8 bytes for each of `n` uids.
    function _hint(Inputs memory inputs, uint256 n) internal pure returns (uint256) {
        if (inputs.consensusLength == 0) return 0;
        if (inputs.consensusLength != 8 * n) revert YumaConsensusBadConsensusLength(8 * n, inputs.consensusLength);
        return inputs.consensus;
    }

    /// @dev The consensus the caller gives for uid `j` (u64 at byte `8j` of the vector at
    /// calldata offset `hint`).
    function _hintOf(uint256 hint, uint256 j) internal pure returns (uint256 cons) {
        uint256 off = hint + 8 * j;
        // The vector's length is 8n (checked in `_hint`) and j < n.
        assembly {
            cons := shr(192, calldataload(off))
        }
    }

    // ------------------------------------------------------------ bond words

    /// @dev The walk through the old bond words from group `group` on, `words` words a group.
    function _oldBonds(Inputs memory inputs, uint256 group, uint256 words) internal view returns (OldBonds memory b) {
        b.offset = inputs.bonds;
        b.end = inputs.bonds + inputs.bondsLength;
        b.group = group;
        if (group < 16) b.hash = _bondHash[group];
        b.words = words;
    }

    /// @dev Points `b.offset` at group `g`'s old bond words and checks them against the hash
    /// once per call. False when the call did not bring them.
    function _seekBonds(OldBonds memory b, uint256 g) internal view returns (bool) {
        uint256 size = 32 * b.words;
        while (b.group < g) {
            if (b.hash != 0) b.offset += size;
            b.group += 1;
            b.hash = _bondHash[b.group];
            b.verified = false;
        }
        if (b.hash == 0 || b.verified) return true;
        if (b.offset + size > b.end) return false;
        uint256 off = b.offset;
        bytes32 got;
        // Hashes the words in free memory without allocating.
        assembly ("memory-safe") {
            let m := mload(0x40)
            calldatacopy(m, off, size)
            got := keccak256(m, size)
        }
        if (got != b.hash) revert YumaConsensusWrongBonds(g);
        b.verified = true;
        return true;
    }

    /// @dev Group `g`'s new bond words, one per row: their hash (0 when all are zero; `old` is
    /// the hash they replace) and a log of them for the next epoch's caller.
    function _commitBonds(uint64 epochBlock, uint256 g, uint256[] memory words, bool any, bytes32 old) internal {
        bytes32 h = any ? keccak256(abi.encodePacked(words)) : bytes32(0);
        if (h != old) _bondHash[g] = h;
        if (any) emit BondWords(epochBlock, g, words);
    }

    // ------------------------------------------------------------ row sums

    /// @dev The row sums the caller passed (32 bytes per row), checked against the last
    /// column call's; false when it passed none.
    function _readSums(bytes calldata data, uint256 rows) internal view returns (bool, uint256[] memory sums) {
        if (data.length == 0 && rows != 0) return (false, sums);
        if (data.length != 32 * rows) revert YumaConsensusWrongRowSums();
        sums = new uint256[](rows);
        bytes32 h;
        // sums holds exactly data.length bytes.
        assembly ("memory-safe") {
            calldatacopy(add(sums, 0x20), data.offset, data.length)
            h := keccak256(add(sums, 0x20), data.length)
        }
        if (h != _rowSumsHash) revert YumaConsensusWrongRowSums();
        return (true, sums);
    }

    /// @dev A column call's row sums: their hash, and a log of them for the next call.
    function _commitRowSums(uint64 epochBlock, uint256 cursor, uint256[] memory sums) internal {
        _rowSumsHash = keccak256(abi.encodePacked(sums));
        emit RowSums(epochBlock, cursor, sums);
    }

    // ------------------------------------------------------------ views

    /// @inheritdoc IYumaConsensus
    function bondHashes() external view returns (bytes32[16] memory) {
        return _bondHash;
    }

    /// @inheritdoc IYumaConsensus
    function rowSumsHash() external view returns (bytes32) {
        return _rowSumsHash;
    }
}
