//! Control port (5342) commands and replies and the data port (5343) header.
