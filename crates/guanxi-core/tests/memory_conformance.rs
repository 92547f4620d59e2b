//! The in-memory store passes the storage conformance suite.

guanxi_core::store_conformance_tests!(guanxi_core::MemoryStore::new());
