// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title TopStake
/// @notice Validator permit selection: the `k` uids with the largest positive stake, ties to the
/// lower uid (a size-`k` min-heap over keys `stake << 16 | (0xFFFF - uid)`, which are distinct and
/// order exactly as "more stake, then lower uid").
library TopStake {
    /// @notice Bitmap (bit `uid`) of the top `k` uids by positive stake.
    /// @param stakes stake per uid (index = uid, length <= 256, each < 2^240)
    /// @param k permits to hand out
    /// @return bitmap permitted uids
    /// @return count number of permits (<= k)
    function select(uint256[] memory stakes, uint256 k) internal pure returns (uint256 bitmap, uint256 count) {
        uint256 n = stakes.length;
        if (k > n) k = n;
        if (k == 0) return (0, 0);
        uint256[] memory heap = new uint256[](k);
        uint256 size;
        for (uint256 uid; uid < n; ++uid) {
            uint256 stake = stakes[uid];
            if (stake == 0) continue;
            uint256 key = (stake << 16) | (0xFFFF - uid);
            if (size < k) {
                heap[size] = key;
                _siftUp(heap, size);
                ++size;
            } else if (key > heap[0]) {
                heap[0] = key;
                _siftDown(heap, size);
            }
        }
        for (uint256 i; i < size; ++i) {
            bitmap |= 1 << (0xFFFF - (heap[i] & 0xFFFF));
        }
        count = size;
    }

    function _siftUp(uint256[] memory heap, uint256 i) private pure {
        uint256 key = heap[i];
        while (i != 0) {
            uint256 parent = (i - 1) >> 1;
            if (heap[parent] <= key) break;
            heap[i] = heap[parent];
            i = parent;
        }
        heap[i] = key;
    }

    function _siftDown(uint256[] memory heap, uint256 size) private pure {
        uint256 i;
        uint256 key = heap[0];
        while (true) {
            uint256 child = 2 * i + 1;
            if (child >= size) break;
            if (child + 1 < size && heap[child + 1] < heap[child]) ++child;
            if (heap[child] >= key) break;
            heap[i] = heap[child];
            i = child;
        }
        heap[i] = key;
    }
}
